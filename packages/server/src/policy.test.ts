import { describe, expect, test } from "vitest";
import { ConfigError, engineOptionsSchema, validateConfig } from "@isol8/kit";
import { parseServerConfig } from "./config.js";
import { PolicyError } from "./errors.js";
import { applyPolicy, resolvePolicy } from "./policy.js";
import { executeBodySchema } from "./schemas.js";

const defaults = engineOptionsSchema.parse({});
const policy = resolvePolicy(
  parseServerConfig({
    policy: {
      maxMemory: "1g",
      maxCpu: 2,
      maxPids: 128,
      maxTimeoutMs: 60_000,
      maxOutputSize: "2m",
      networks: ["none"],
      seccompModes: ["strict"],
      runtimes: ["python"],
    },
  }).policy,
  defaults,
  "strict",
);
const context = { defaultSeccomp: "strict", isRegisteredRuntime: (name: string) => ["python", "bash"].includes(name) };
const body = (input: unknown) => executeBodySchema.parse(input);
const refuse = (input: unknown) => {
  try {
    applyPolicy(body(input), policy, defaults, context);
  } catch (error) {
    expect(error).toBeInstanceOf(PolicyError);
    return (error as PolicyError).field;
  }
  throw new Error("not refused");
};

describe("policy ceilings", () => {
  const req = { runtime: "python", code: "print(1)" };
  test("over a ceiling is refused naming the field; never clamped", () => {
    expect(refuse({ request: req, options: { memoryLimit: "2g" } })).toBe("options.memoryLimit");
    expect(refuse({ request: req, options: { cpuLimit: 4 } })).toBe("options.cpuLimit");
    expect(refuse({ request: req, options: { pidsLimit: 1000 } })).toBe("options.pidsLimit");
    expect(refuse({ request: req, options: { timeoutMs: 120_000 } })).toBe("options.timeoutMs");
    expect(refuse({ request: { ...req, timeoutMs: 120_000 } })).toBe("request.timeoutMs");
    expect(refuse({ request: req, options: { maxOutputSize: "3m" } })).toBe("options.maxOutputSize");
    expect(refuse({ request: req, options: { sandboxSize: "1g" } })).toBe("options.sandboxSize");
    expect(refuse({ request: req, options: { network: "host" } })).toBe("options.network");
    expect(refuse({ request: req, options: { security: { seccomp: "unconfined" } } })).toBe("options.security.seccomp");
    expect(refuse({ request: { runtime: "bash", code: "echo" } })).toBe("request.runtime");
  });

  test("less is allowed; defaults repeated share the main engine; the timeout goes onto the request", () => {
    const lower = applyPolicy(body({ request: req, options: { memoryLimit: "128m", timeoutMs: 5_000 } }), policy, defaults, context);
    expect(lower.overrides).toEqual({ memoryLimit: 128 * 1024 ** 2 });
    expect(lower.request.timeoutMs).toBe(5_000);
    expect(lower.profile).not.toBe("");
    const same = applyPolicy(
      body({ request: req, options: { memoryLimit: "512m", network: "none", security: { seccomp: "strict" }, secrets: {} } }),
      policy,
      defaults,
      context,
    );
    expect(same.profile).toBe("");
    expect(same.overrides).toEqual({});
    // An unregistered runtime is left to the engine (which names the registered ones).
    expect(applyPolicy(body({ request: { runtime: "cobol", code: "x" } }), policy, defaults, context).request.runtime).toBe("cobol");
  });

  test("equal options give the same profile, secrets enter it hashed; binary files are decoded", () => {
    const a = applyPolicy(body({ request: req, options: { secrets: { K: "v1" }, cpuLimit: 0.5 } }), policy, defaults, context);
    const b = applyPolicy(body({ request: req, options: { cpuLimit: 0.5, secrets: { K: "v1" } } }), policy, defaults, context);
    expect(a.profile).toBe(b.profile);
    expect(a.profile).not.toContain("v1");
    const files = applyPolicy(body({ request: { ...req, files: { "a.txt": "text", "b.bin": { base64: "AAEC" } } } }), policy, defaults, context).request.files!;
    expect(files["a.txt"]).toBe("text");
    expect(Buffer.from(files["b.bin"] as Uint8Array)).toEqual(Buffer.from([0, 1, 2]));
  });

  test("unset ceilings are the engine defaults; a default above its ceiling is a config error", () => {
    const strict = resolvePolicy(parseServerConfig({}).policy, defaults, "strict");
    expect(strict).toMatchObject({ maxMemory: defaults.memoryLimit, maxTimeoutMs: defaults.timeoutMs, networks: ["none"], seccompModes: ["strict"] });
    expect(() => resolvePolicy(parseServerConfig({ policy: { maxMemory: "256m" } }).policy, defaults, "strict")).toThrow(
      /server\.policy\.maxMemory.*below defaults\.memoryLimit/,
    );
  });
});

describe("server config", () => {
  test("a bad or unknown key is named with its path", () => {
    expect(() => parseServerConfig({ limits: { maxQueue: -1 } })).toThrow(ConfigError);
    expect(() => parseServerConfig({ limits: { maxQueue: -1 } })).toThrow(/server\.limits\.maxQueue/);
    expect(() => parseServerConfig({ polcy: {} })).toThrow(/server\.polcy: unknown key/);
    expect(() => parseServerConfig({ keys: [{ key: "short", tenant: "a" }] })).toThrow(/server\.keys\[0\]\.key/);
    expect(() => parseServerConfig({ keys: [{ key: "long-enough-key", tenant: "bad tenant" }] })).toThrow(/server\.keys\[0\]\.tenant/);
    expect(() => parseServerConfig({ keys: [{ tenant: "a" }] })).toThrow(/exactly one of key and sha256/);
    expect(() =>
      parseServerConfig({
        keys: [
          { key: "long-enough-key", tenant: "a" },
          { key: "long-enough-key", tenant: "b" },
        ],
      }),
    ).toThrow(/listed twice/);
  });

  test("the isol8 config carries a `server` section through to the server, which validates it", () => {
    const resolved = validateConfig({ server: { keys: [{ key: "long-enough-key", tenant: "a" }], limits: { maxQueue: 3 } } });
    expect(parseServerConfig(resolved.server).limits.maxQueue).toBe(3);
    expect(validateConfig({}).server).toBeUndefined();
    expect(() => validateConfig({ server: 5 })).toThrow(/server: expected an object of server settings/);
  });

  test("defaults fill in", () => {
    const config = parseServerConfig(undefined);
    expect(config.limits).toMatchObject({ maxConcurrent: 4, maxQueue: 32, bodyLimit: 16 * 1024 ** 2 });
    expect(config.keys).toEqual([]);
  });
});

describe("a request's networkFilter narrows the operator's", () => {
  const req = { runtime: "python", code: "print(1)" };
  const operator = engineOptionsSchema.parse({ network: "filtered", networkFilter: { whitelist: ["^allowed\\.test$"], blacklist: ["^blocked\\.test$"] } });
  const filtered = resolvePolicy(parseServerConfig({ policy: { networks: ["filtered"] } }).policy, operator, "strict");
  const apply = (networkFilter: unknown) => applyPolicy(body({ request: req, options: { networkFilter } }), filtered, operator, context);

  test("the operator's filter becomes the request's bound: .* does not widen it, and its blacklist stays", () => {
    expect(apply({ whitelist: [".*"], blacklist: [] }).overrides).toEqual({
      networkFilter: { whitelist: [".*"], blacklist: [], bounds: [{ whitelist: ["^allowed\\.test$"], blacklist: ["^blocked\\.test$"] }] },
    });
  });

  test("a request without rules keeps the operator's filter (and its engine)", () => {
    const same = apply({ whitelist: [] });
    expect(same.overrides).toEqual({});
    expect(same.profile).toBe("");
  });

  test("bounds are the operator's: a request sending them is refused naming the field", () => {
    let error: unknown;
    try {
      apply({ whitelist: [".*"], bounds: [{ whitelist: [".*"] }] });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PolicyError);
    expect((error as PolicyError).field).toBe("options.networkFilter.bounds");
  });
});
