import { describe, expect, test } from "vitest";
import { EngineStoppedError, FileOperationError, InvalidRequestError, Isol8Error, SandboxGoneError, UnknownRuntimeError } from "@isol8/kit";
import { errorFromResponse, RemoteError } from "./errors.js";

describe("errorFromResponse", () => {
  test("re-creates the isol8 error class of the code, with the server's message, status and field", () => {
    const error = errorFromResponse(
      400,
      { error: "Invalid execution request: request.code: expected non-empty code", code: "ISOL8_ERR_INVALID_REQUEST", field: "request.code", requestId: "r1" },
      "x",
    );
    expect(error).toBeInstanceOf(InvalidRequestError);
    expect(error.message).toBe("Invalid execution request: request.code: expected non-empty code");
    expect(error).toMatchObject({ code: "ISOL8_ERR_INVALID_REQUEST", status: 400, field: "request.code", requestId: "r1" });
  });

  test("an unknown runtime keeps the runtime and the registered names", () => {
    const message =
      'Unknown runtime "ruby". Registered runtimes: python, bash. To add it, register a runtime plugin (e.g. @isol8/plugin-runtime-ruby) in isol8.config.ts.';
    const error = errorFromResponse(
      400,
      { error: message, code: "ISOL8_ERR_UNKNOWN_RUNTIME", details: { runtime: "ruby", registered: ["python", "bash"] } },
      "x",
    ) as unknown as UnknownRuntimeError;
    expect(error).toBeInstanceOf(UnknownRuntimeError);
    expect(error.message).toBe(message);
    expect(error.runtime).toBe("ruby");
    expect(error.registered).toEqual(["python", "bash"]);
  });

  test("a message the class would word differently is the server's", () => {
    const error = errorFromResponse(422, { error: "getFile: no such file", code: "ISOL8_ERR_FILE" }, "x");
    expect(error).toBeInstanceOf(FileOperationError);
    expect(error.message).toBe("getFile: no such file");
  });

  test("HTTP-only failures are RemoteErrors (still Isol8Errors) with the code, status and Retry-After", () => {
    const error = errorFromResponse(429, { error: "busy", code: "ISOL8_ERR_OVERLOADED" }, "x", 3);
    expect(error).toBeInstanceOf(RemoteError);
    expect(Isol8Error.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ code: "ISOL8_ERR_OVERLOADED", status: 429, retryAfter: 3, message: "busy" });
    const bare = errorFromResponse(502, undefined, "POST /execute failed with HTTP 502");
    expect(bare).toMatchObject({ code: "ISOL8_ERR_INTERNAL", status: 502, message: "POST /execute failed with HTTP 502" });
  });

  test("a stopped engine and a dead session container come back as their own classes, with the server's message", () => {
    const stopped = errorFromResponse(503, { error: "The engine was stopped (server shutting down); nothing was run.", code: "ISOL8_ERR_ENGINE_STOPPED" }, "x");
    expect(stopped).toBeInstanceOf(EngineStoppedError);
    expect(stopped).toMatchObject({
      code: "ISOL8_ERR_ENGINE_STOPPED",
      status: 503,
      message: "The engine was stopped (server shutting down); nothing was run.",
    });
    const gone = errorFromResponse(
      410,
      { error: "The session's container abc is gone", code: "ISOL8_ERR_SANDBOX_GONE", details: { containerId: "abc123" } },
      "x",
    );
    expect(gone).toBeInstanceOf(SandboxGoneError);
    expect((gone as unknown as SandboxGoneError).containerId).toBe("abc123");
    expect(gone).toMatchObject({ code: "ISOL8_ERR_SANDBOX_GONE", status: 410, message: "The session's container abc is gone" });
  });
});
