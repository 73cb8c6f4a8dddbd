import { describe, expect, test } from "vitest";
import { DockerUnavailableError, EngineStoppedError, InvalidRequestError, SandboxGoneError } from "@isol8/kit";
import { HttpError, statusOfCode, toHttpError } from "./errors.js";

describe("toHttpError", () => {
  test("an engine error keeps its code and gets the status of its kind", () => {
    expect(toHttpError(new InvalidRequestError("request.code: empty"))).toMatchObject({
      status: 400,
      code: "ISOL8_ERR_INVALID_REQUEST",
      message: "request.code: empty",
    });
    expect(toHttpError(new DockerUnavailableError("no socket"))).toMatchObject({ status: 503, code: "ISOL8_ERR_DOCKER_UNAVAILABLE" });
    expect(toHttpError(new EngineStoppedError())).toMatchObject({ status: 503, code: "ISOL8_ERR_ENGINE_STOPPED" });
  });

  test("a dead session container is 410 Gone and carries its container id for the client", () => {
    const error = toHttpError(new SandboxGoneError("0123456789abcdef", "killed"));
    expect(error.status).toBe(410);
    expect(error.body()).toMatchObject({ code: "ISOL8_ERR_SANDBOX_GONE", details: { containerId: "0123456789abcdef" } });
  });

  test("anything else is a 500 that reveals nothing", () => {
    const error = toHttpError(new Error("secret internals"));
    expect(error).toBeInstanceOf(HttpError);
    expect(error.body()).toEqual({ error: "Internal server error", code: "ISOL8_ERR_INTERNAL" });
    expect(statusOfCode(undefined)).toBe(500);
  });
});
