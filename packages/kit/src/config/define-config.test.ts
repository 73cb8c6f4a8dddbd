import { describe, expect, it } from "vitest";
import { ConfigError } from "../errors.js";
import { definePlugin, type Isol8Plugin } from "../plugin.js";
import { defineConfig, validateConfig } from "./define-config.js";

/** Calls fn and returns what it threw (fails the test when it does not throw). */
function thrown(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    return error as ConfigError;
  }
  throw new Error("expected a throw");
}

const plugin = (name: string, extra: Partial<Isol8Plugin> = {}): Isol8Plugin => ({ name, apply: () => {}, ...extra });
const factory = definePlugin({ name: "isol8:runtime-test", setup: () => () => {} });

describe("defineConfig", () => {
  it("returns the config it is given", () => {
    const config = { defaults: { timeoutMs: 5000 } };
    expect(defineConfig(config)).toBe(config);
  });
});

describe("validateConfig", () => {
  it("accepts an empty config: no plugins, no defaults, no file", () => {
    expect(validateConfig({})).toMatchObject({ plugins: [], defaults: {}, filepath: undefined });
  });

  it("treats undefined and null as an empty config", () => {
    expect(validateConfig(undefined)).toMatchObject({ plugins: [], defaults: {} });
    expect(validateConfig(null)).toMatchObject({ plugins: [], defaults: {} });
  });

  it("returns the defaults as written (validated, not filled in)", () => {
    expect(validateConfig({ defaults: { timeoutMs: 5000, memoryLimit: "1g" } }).defaults).toEqual({ timeoutMs: 5000, memoryLimit: "1g" });
  });

  it("returns the resolved plugins: flattened, falsy entries dropped, ordered by enforce", () => {
    const config = defineConfig({
      plugins: [plugin("post", { enforce: "post" }), [factory(), false], null, plugin("pre", { enforce: "pre" })],
    });
    expect(validateConfig(config).plugins.map((p) => p.name)).toEqual(["pre", "isol8:runtime-test", "post"]);
  });

  it("returns the file path it was given", () => {
    expect(validateConfig({}, "/project/isol8.config.ts").filepath).toBe("/project/isol8.config.ts");
  });

  it("rejects an unknown top-level key with a ConfigError naming the key", () => {
    const error = thrown(() => validateConfig({ plugins: [], default: {} }));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.code).toBe("ISOL8_ERR_CONFIG_INVALID");
    expect(error.message).toContain('"default"');
  });

  it("names the file in the error when it has one", () => {
    const error = thrown(() => validateConfig({ extra: 1 }, "/project/isol8.config.ts"));
    expect(error.message).toMatch(/^Invalid isol8 config in \/project\/isol8\.config\.ts: /);
    expect(error.filepath).toBe("/project/isol8.config.ts");
  });

  it("rejects a bad defaults.memoryLimit, naming defaults.memoryLimit", () => {
    const error = thrown(() => validateConfig({ defaults: { memoryLimit: "lots" } }));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toBe('Invalid isol8 config: defaults.memoryLimit: expected a positive size such as "512m", "1g" or a byte count, got "lots"');
  });

  it("rejects a bad defaults.timeoutMs, naming defaults.timeoutMs", () => {
    expect(thrown(() => validateConfig({ defaults: { timeoutMs: 0 } })).message).toContain("defaults.timeoutMs: ");
  });

  it("rejects an unknown key inside defaults, naming it", () => {
    const error = thrown(() => validateConfig({ defaults: { memory: "1g" } }));
    expect(error.message).toMatch(/defaults: .*"memory"/);
  });

  it("rejects defaults that are not an object", () => {
    expect(thrown(() => validateConfig({ defaults: "fast" })).message).toContain("defaults: expected an object of engine options");
  });

  it("rejects plugins that are not an array", () => {
    expect(thrown(() => validateConfig({ plugins: factory() })).message).toContain("plugins: expected an array of plugins");
  });

  it("rejects a plugins entry that is a factory that was not called, naming its position", () => {
    const error = thrown(() => validateConfig({ plugins: [plugin("a"), factory] }));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain("plugins[1]");
  });

  // custom "did you forget to call the plugin factory?" message never reaches the user.
  it("says the factory was not called when a plugins entry is a function", () => {
    const error = thrown(() => validateConfig({ plugins: [factory] }));
    expect(error.message).toContain("did you forget to call the plugin factory?");
  });

  it("names the nested position of a plugins entry that is not a plugin", () => {
    expect(thrown(() => validateConfig({ plugins: [[plugin("a"), "isol8:runtime-python"]] })).message).toContain("plugins[0][1]");
  });

  it("rejects the same plugin listed twice as a ConfigError", () => {
    const error = thrown(() => validateConfig({ plugins: [plugin("a"), plugin("a")] }, "/p/isol8.config.ts"));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.code).toBe("ISOL8_ERR_CONFIG_INVALID");
    expect(error.message).toBe("Invalid isol8 config in /p/isol8.config.ts: Plugin a is listed twice.");
    expect((error.cause as { code?: string }).code).toBe("ISOL8_ERR_DUPLICATE_NAME");
  });

  it("rejects a plugin whose dependency is missing as a ConfigError", () => {
    const error = thrown(() => validateConfig({ plugins: [plugin("top", { dependencies: ["base"] })] }));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain("Plugin top needs plugin base");
  });

  it("rejects a config that is not an object", () => {
    expect(() => validateConfig("isol8")).toThrow(ConfigError);
    expect(() => validateConfig([])).toThrow(ConfigError);
  });
});
