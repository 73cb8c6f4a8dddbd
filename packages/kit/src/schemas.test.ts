import { describe, expect, it } from "vitest";
import * as z from "zod";
import { engineOptionsSchema, executionRequestSchema, formatZodError, sizeSchema } from "./schemas.js";

/** The formatted error of a failed parse (fails the test when the parse succeeds). */
function errorOf(schema: z.ZodType, value: unknown, prefix?: string): string {
  const result = schema.safeParse(value);
  if (result.success) throw new Error(`expected ${JSON.stringify(value)} to be rejected`);
  return formatZodError(result.error, prefix);
}

const request = { code: "print(1)", runtime: "python" };

describe("executionRequestSchema", () => {
  it("accepts the minimal request: code and runtime", () => {
    expect(executionRequestSchema.parse(request)).toEqual(request);
  });

  it("accepts every optional field", () => {
    const full = {
      ...request,
      timeoutMs: 5000,
      env: { FOO: "1", _BAR2: "x" },
      fileExtension: ".py",
      stdin: "input",
      files: { "data.txt": "text", "/tmp/b.bin": new Uint8Array([1, 2]), "c.bin": Buffer.from("c") },
      outputPaths: ["out.txt"],
      installPackages: ["numpy"],
      metadata: { user: "u1" },
    };
    expect(executionRequestSchema.safeParse(full).success).toBe(true);
  });

  it("adds no defaults to the request", () => {
    expect(Object.keys(executionRequestSchema.parse(request)).sort()).toEqual(["code", "runtime"]);
  });

  it("rejects empty code", () => {
    expect(errorOf(executionRequestSchema, { ...request, code: "" })).toBe("code: expected non-empty code");
  });

  it("rejects code that is only whitespace", () => {
    expect(errorOf(executionRequestSchema, { ...request, code: " \n\t " })).toBe("code: expected non-empty code");
  });

  it("rejects a missing code", () => {
    expect(errorOf(executionRequestSchema, { runtime: "python" })).toBe("code: expected exactly one of code, cmd or codeUrl: none was given");
  });

  it("accepts cmd instead of code, with setupScript and workdir", () => {
    const parsed = executionRequestSchema.parse({ runtime: "python", cmd: "python3 -V", setupScript: "echo hi", workdir: "work" });
    expect(parsed).toEqual({ runtime: "python", cmd: "python3 -V", setupScript: "echo hi", workdir: "work" });
  });

  it("rejects code and cmd together, naming both fields", () => {
    expect(errorOf(executionRequestSchema, { ...request, cmd: "ls" })).toBe("cmd: expected exactly one of code, cmd or codeUrl: got code and cmd");
  });

  it("rejects an empty cmd", () => {
    expect(errorOf(executionRequestSchema, { runtime: "python", cmd: " " })).toBe("cmd: expected a non-empty shell command");
  });

  it("rejects an empty setupScript", () => {
    expect(errorOf(executionRequestSchema, { ...request, setupScript: "" })).toBe("setupScript: expected a non-empty bash script");
  });

  it("rejects an empty workdir", () => {
    expect(errorOf(executionRequestSchema, { ...request, workdir: "" })).toBe("workdir: expected a directory path inside /sandbox or /tmp");
  });

  it("accepts codeUrl with its codeHash", () => {
    expect(executionRequestSchema.safeParse({ runtime: "python", codeUrl: "http://127.0.0.1:8080/main.py", codeHash: "a".repeat(64) }).success).toBe(true);
  });

  it("rejects codeUrl without codeHash, and codeHash without codeUrl", () => {
    expect(errorOf(executionRequestSchema, { runtime: "python", codeUrl: "http://127.0.0.1/x.py" })).toBe(
      "codeHash: expected the SHA-256 of the code at codeUrl (64 hex digits): codeUrl requires codeHash",
    );
    expect(errorOf(executionRequestSchema, { ...request, codeHash: "a".repeat(64) })).toBe(
      "codeHash: codeHash is the hash of the code at codeUrl: expected codeUrl with it",
    );
  });

  it("rejects a codeHash that is not 64 hex digits and a codeUrl that is not http(s)", () => {
    expect(errorOf(executionRequestSchema, { runtime: "python", codeUrl: "http://127.0.0.1/x.py", codeHash: "abc" })).toBe(
      "codeHash: expected a SHA-256 as 64 hex digits",
    );
    expect(errorOf(executionRequestSchema, { runtime: "python", codeUrl: "file:///etc/passwd", codeHash: "a".repeat(64) })).toBe(
      "codeUrl: expected an http(s) URL",
    );
  });

  it("rejects an empty or missing runtime", () => {
    expect(errorOf(executionRequestSchema, { ...request, runtime: "" })).toMatch(/^runtime: expected a runtime name/);
    expect(errorOf(executionRequestSchema, { code: "x" })).toMatch(/^runtime: expected a runtime name/);
  });

  it("rejects a zero timeout", () => {
    expect(errorOf(executionRequestSchema, { ...request, timeoutMs: 0 })).toBe("timeoutMs: expected a positive number of milliseconds");
  });

  it("rejects a negative timeout", () => {
    expect(errorOf(executionRequestSchema, { ...request, timeoutMs: -1 })).toBe("timeoutMs: expected a positive number of milliseconds");
  });

  it("rejects a fractional timeout", () => {
    expect(errorOf(executionRequestSchema, { ...request, timeoutMs: 1.5 })).toBe("timeoutMs: expected a whole number of milliseconds");
  });

  it("rejects a timeout given as a string", () => {
    expect(errorOf(executionRequestSchema, { ...request, timeoutMs: "abc" })).toBe("timeoutMs: expected a number of milliseconds");
    expect(errorOf(executionRequestSchema, { ...request, timeoutMs: "5000" })).toBe("timeoutMs: expected a number of milliseconds");
  });

  it("rejects an unknown key, naming it", () => {
    expect(errorOf(executionRequestSchema, { ...request, timeout: 5 })).toContain('"timeout"');
  });

  it("rejects an env name that is not a variable name", () => {
    expect(executionRequestSchema.safeParse({ ...request, env: { "1BAD": "x" } }).success).toBe(false);
    expect(executionRequestSchema.safeParse({ ...request, env: { "A-B": "x" } }).success).toBe(false);
  });

  // schema's own message in issue.issues, which formatZodError does not read.
  it("says what an env name must look like when it is not a variable name", () => {
    expect(errorOf(executionRequestSchema, { ...request, env: { "1BAD": "x" } })).toBe(
      "env.1BAD: expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*)",
    );
  });

  it("rejects an env value that is not a string", () => {
    expect(errorOf(executionRequestSchema, { ...request, env: { A: 1 } })).toBe("env.A: expected a string value");
  });

  it("rejects a file extension without a dot or too long", () => {
    expect(executionRequestSchema.safeParse({ ...request, fileExtension: "py" }).success).toBe(false);
    expect(executionRequestSchema.safeParse({ ...request, fileExtension: ".abcdefghijk" }).success).toBe(false);
    expect(executionRequestSchema.safeParse({ ...request, fileExtension: ".p/y" }).success).toBe(false);
  });

  it("rejects file content that is neither a string nor bytes", () => {
    expect(errorOf(executionRequestSchema, { ...request, files: { "a.txt": 42 } })).toBe("files.a.txt: expected a string or a Buffer/Uint8Array");
  });

  it("rejects a request that is not an object", () => {
    expect(errorOf(executionRequestSchema, "print(1)")).toMatch(/^\(root\): /);
  });
});

describe("engineOptionsSchema", () => {
  const defaults = engineOptionsSchema.parse({});

  it("defaults mode to ephemeral", () => {
    expect(defaults.mode).toBe("ephemeral");
  });

  it("defaults network to none", () => {
    expect(defaults.network).toBe("none");
  });

  it("defaults memoryLimit to 512 MiB in bytes", () => {
    expect(defaults.memoryLimit).toBe(512 * 1024 * 1024);
  });

  it("defaults cpuLimit to 1", () => {
    expect(defaults.cpuLimit).toBe(1);
  });

  it("defaults pidsLimit to 64", () => {
    expect(defaults.pidsLimit).toBe(64);
  });

  it("defaults readonlyRootFs to true", () => {
    expect(defaults.readonlyRootFs).toBe(true);
  });

  it("defaults maxOutputSize to 1 MiB in bytes", () => {
    expect(defaults.maxOutputSize).toBe(1024 * 1024);
  });

  it("defaults timeoutMs to 30000", () => {
    expect(defaults.timeoutMs).toBe(30_000);
  });

  it("defaults the remaining options", () => {
    expect(defaults).toMatchObject({
      secrets: {},
      sandboxSize: 512 * 1024 ** 2,
      tmpSize: 256 * 1024 ** 2,
      debug: false,
      persist: false,
      logNetwork: false,
      security: {},
    });
    expect(defaults.image).toBeUndefined();
    expect(defaults.poolStrategy).toBeUndefined();
  });

  it("turns human sizes into bytes", () => {
    const parsed = engineOptionsSchema.parse({ memoryLimit: "1g", maxOutputSize: "64k", sandboxSize: 1024, tmpSize: "1.5m" });
    expect(parsed).toMatchObject({ memoryLimit: 1024 ** 3, maxOutputSize: 64 * 1024, sandboxSize: 1024, tmpSize: 1.5 * 1024 ** 2 });
  });

  it("keeps values that are given", () => {
    const parsed = engineOptionsSchema.parse({ mode: "persistent", network: "host", cpuLimit: 0.5, pidsLimit: 10, readonlyRootFs: false, timeoutMs: 1000 });
    expect(parsed).toMatchObject({ mode: "persistent", network: "host", cpuLimit: 0.5, pidsLimit: 10, readonlyRootFs: false, timeoutMs: 1000 });
  });

  it("fills the defaults of nested option objects", () => {
    const parsed = engineOptionsSchema.parse({ networkFilter: {}, audit: {} });
    expect(parsed.networkFilter).toEqual({ whitelist: [], blacklist: [] });
    expect(parsed.audit).toEqual({ sinks: [], includeCode: false, includeOutput: false });
  });

  it("accepts a pool size as a number or as clean and dirty counts", () => {
    expect(engineOptionsSchema.parse({ poolSize: 2 }).poolSize).toBe(2);
    expect(engineOptionsSchema.parse({ poolSize: { clean: 1, dirty: 3 } }).poolSize).toEqual({ clean: 1, dirty: 3 });
    expect(engineOptionsSchema.safeParse({ poolSize: -1 }).success).toBe(false);
  });

  it("rejects a memoryLimit that is not a size, naming the key and the value", () => {
    expect(errorOf(engineOptionsSchema, { memoryLimit: "lots" })).toBe(
      'memoryLimit: expected a positive size such as "512m", "1g" or a byte count, got "lots"',
    );
  });

  it("rejects a zero or negative memoryLimit", () => {
    expect(errorOf(engineOptionsSchema, { memoryLimit: 0 })).toMatch(/^memoryLimit: /);
    expect(errorOf(engineOptionsSchema, { memoryLimit: -1 })).toMatch(/^memoryLimit: /);
  });

  it("rejects a zero, negative or non-numeric timeoutMs", () => {
    expect(errorOf(engineOptionsSchema, { timeoutMs: 0 })).toBe("timeoutMs: expected a positive number of milliseconds");
    expect(errorOf(engineOptionsSchema, { timeoutMs: -1 })).toBe("timeoutMs: expected a positive number of milliseconds");
    expect(errorOf(engineOptionsSchema, { timeoutMs: "abc" })).toBe("timeoutMs: expected a number of milliseconds");
  });

  it("rejects a non-positive cpuLimit", () => {
    expect(errorOf(engineOptionsSchema, { cpuLimit: 0 })).toBe("cpuLimit: expected a positive number of CPUs");
    expect(errorOf(engineOptionsSchema, { cpuLimit: "2" })).toBe("cpuLimit: expected a number of CPUs");
  });

  it("rejects a non-positive pidsLimit", () => {
    expect(errorOf(engineOptionsSchema, { pidsLimit: 0 })).toBe("pidsLimit: expected a positive number of processes");
  });

  it("rejects an unknown mode", () => {
    expect(errorOf(engineOptionsSchema, { mode: "forever" })).toMatch(/^mode: /);
  });

  it("rejects an empty network name", () => {
    expect(errorOf(engineOptionsSchema, { network: "" })).toMatch(/^network: /);
  });

  it("rejects an unknown key, naming it", () => {
    expect(errorOf(engineOptionsSchema, { memory: "1g" })).toContain('"memory"');
  });

  it("rejects an unknown key inside a nested option object", () => {
    expect(errorOf(engineOptionsSchema, { security: { seccomp: "strict", extra: 1 } })).toMatch(/^security: .*"extra"/);
  });

  it("rejects secrets whose names are not variable names", () => {
    expect(engineOptionsSchema.safeParse({ secrets: { "my-token": "x" } }).success).toBe(false);
    expect(engineOptionsSchema.parse({ secrets: { MY_TOKEN: "x" } }).secrets).toEqual({ MY_TOKEN: "x" });
  });
});

describe("sizeSchema", () => {
  it("outputs bytes for a size string or a byte count", () => {
    expect(sizeSchema.parse("512m")).toBe(512 * 1024 ** 2);
    expect(sizeSchema.parse(4096)).toBe(4096);
  });

  it("rejects values that are neither a string nor a number", () => {
    expect(sizeSchema.safeParse(true).success).toBe(false);
    expect(sizeSchema.safeParse(null).success).toBe(false);
  });
});

describe("formatZodError", () => {
  it("names the path of the failing key after the prefix", () => {
    expect(errorOf(executionRequestSchema, { ...request, timeoutMs: 0 }, "request")).toBe("request.timeoutMs: expected a positive number of milliseconds");
  });

  it("names the key without a prefix", () => {
    expect(errorOf(engineOptionsSchema, { memoryLimit: "lots" })).toMatch(/^memoryLimit: /);
  });

  it("writes array indexes in brackets", () => {
    expect(errorOf(executionRequestSchema, { ...request, outputPaths: ["ok", 1] }, "request")).toMatch(/^request\.outputPaths\[1\]: /);
    expect(errorOf(executionRequestSchema, { ...request, outputPaths: ["ok", 1] })).toMatch(/^outputPaths\[1\]: /);
  });

  it("writes an index at the root in brackets after the prefix", () => {
    expect(errorOf(z.array(z.string()), [1], "plugins")).toMatch(/^plugins\[0\]: /);
    expect(errorOf(z.array(z.array(z.string())), [["a", 1]], "plugins")).toMatch(/^plugins\[0\]\[1\]: /);
  });

  it("writes (root) for an issue at the root without a prefix", () => {
    expect(errorOf(z.string(), 1)).toMatch(/^\(root\): /);
  });

  it("writes the prefix alone for an issue at the root", () => {
    expect(errorOf(z.string({ error: "expected text" }), 1, "options")).toBe("options: expected text");
  });

  it("joins several issues with semicolons, in order", () => {
    expect(errorOf(engineOptionsSchema, { timeoutMs: 0, cpuLimit: 0 })).toBe(
      "cpuLimit: expected a positive number of CPUs; timeoutMs: expected a positive number of milliseconds",
    );
  });
});
