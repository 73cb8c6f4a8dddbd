import { describe, expect, it, vi } from "vitest";
import * as z from "zod";
import { InvalidOptionsError, Isol8Error, PluginError } from "./errors.js";
import { Kit } from "./kit.js";
import { silentLogger } from "./logger.js";
import { applyPlugins, definePlugin, isIsol8Plugin, resolvePlugins, type Isol8Plugin, type PluginOption } from "./plugin.js";

/** Calls fn and returns what it threw (fails the test when it does not throw). */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a throw");
}

/** A plain plugin object; `apply` does nothing unless given. */
function plugin(name: string, extra: Partial<Isol8Plugin> = {}): Isol8Plugin {
  return { name, apply: () => {}, ...extra };
}

const names = (plugins: readonly Isol8Plugin[]) => plugins.map((p) => p.name);

describe("definePlugin's api", () => {
  const counterPlugin = definePlugin({
    name: "vendor:counter",
    setup: () => {
      const state = { applied: 0 };
      return { apply: () => void state.applied++, api: state };
    },
  });

  it("carries the api setup returned, one per plugin instance", () => {
    const one = counterPlugin();
    const two = counterPlugin();
    applyPlugins(new Kit(silentLogger), [one]);
    expect(one.api).toEqual({ applied: 1 });
    expect(two.api).toEqual({ applied: 0 });
  });

  it("has no api when setup returns the apply function alone (control)", () => {
    const plain = definePlugin({ name: "vendor:plain", setup: () => () => undefined })();
    expect(plain.api).toBeUndefined();
    expect("api" in plain).toBe(false);
  });
});

describe("definePlugin", () => {
  const levelPlugin = definePlugin({
    name: "test:level",
    options: z.strictObject({ level: z.number().int().min(1).default(3) }),
    setup: (options) => (kit) => {
      kit.log.info(`level ${options.level}`);
    },
  });

  it("returns a factory whose plugin carries the definition's name, enforce and dependencies", () => {
    const factory = definePlugin({ name: "test:a", enforce: "pre", dependencies: ["test:b"], setup: () => () => {} });
    const made = factory();
    expect(made.name).toBe("test:a");
    expect(made.enforce).toBe("pre");
    expect(made.dependencies).toEqual(["test:b"]);
    expect(typeof made.apply).toBe("function");
  });

  it("makes frozen plugins that isIsol8Plugin recognizes", () => {
    const made = levelPlugin();
    expect(isIsol8Plugin(made)).toBe(true);
    expect(Object.isFrozen(made)).toBe(true);
  });

  it("passes the options parsed by the schema (with its defaults) to setup", () => {
    const setup = vi.fn((_options: { level: number }) => () => {});
    const factory = definePlugin({ name: "test:opts", options: z.object({ level: z.number().default(3) }), setup });
    factory();
    factory({ level: 7 });
    expect(setup.mock.calls.map(([options]) => options)).toEqual([{ level: 3 }, { level: 7 }]);
  });

  it("passes the raw options to setup when the plugin has no schema", () => {
    const setup = vi.fn((_options: unknown) => () => {});
    const factory = definePlugin<z.ZodType<unknown>>({ name: "test:raw", setup });
    factory({ anything: true });
    factory();
    expect(setup.mock.calls.map(([options]) => options)).toEqual([{ anything: true }, undefined]);
  });

  it("runs setup when the factory is called, and the returned function on apply", () => {
    const apply = vi.fn();
    const setup = vi.fn(() => apply);
    const made = definePlugin({ name: "test:timing", setup })();
    expect(setup).toHaveBeenCalledTimes(1);
    expect(apply).not.toHaveBeenCalled();
    const kit = new Kit(silentLogger);
    made.apply(kit);
    expect(apply).toHaveBeenCalledWith(kit);
  });

  it("validates options when the factory is called, before any apply", () => {
    expect(() => levelPlugin({ level: 0 })).toThrow(InvalidOptionsError);
  });

  it("reports bad options as an InvalidOptionsError naming the plugin and the option", () => {
    const error = thrown(() => levelPlugin({ level: 0 })) as InvalidOptionsError;
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect(error.code).toBe("ISOL8_ERR_INVALID_OPTIONS");
    expect(error.plugin).toBe("test:level");
    expect(error.message).toMatch(/^Invalid options for plugin test:level: options\.level: /);
  });

  it("reports an unknown option key, naming it", () => {
    const error = thrown(() => levelPlugin({ lvl: 2 } as never));
    expect(error.message).toContain("test:level");
    expect(error.message).toContain('"lvl"');
  });

  it("reports options that are not an object at the options root", () => {
    const error = thrown(() => levelPlugin("high" as never));
    expect(error.message).toMatch(/^Invalid options for plugin test:level: options: /);
  });

  it("does not run setup when the options are invalid", () => {
    const setup = vi.fn(() => () => {});
    const factory = definePlugin({ name: "test:x", options: z.object({ n: z.number() }), setup });
    expect(() => factory({ n: "one" } as never)).toThrow(InvalidOptionsError);
    expect(setup).not.toHaveBeenCalled();
  });
});

describe("isIsol8Plugin", () => {
  it("accepts a plain object with a string name and an apply function", () => {
    expect(isIsol8Plugin({ name: "x", apply() {} })).toBe(true);
  });

  it("rejects a plugin factory, null, primitives and incomplete objects", () => {
    expect(isIsol8Plugin(definePlugin({ name: "x", setup: () => () => {} }))).toBe(false);
    expect(isIsol8Plugin(null)).toBe(false);
    expect(isIsol8Plugin("x")).toBe(false);
    expect(isIsol8Plugin({ name: "x" })).toBe(false);
    expect(isIsol8Plugin({ apply() {} })).toBe(false);
    expect(isIsol8Plugin({ name: 1, apply() {} })).toBe(false);
  });

  it("accepts an object branded as a plugin by another copy of the core", () => {
    expect(isIsol8Plugin({ [Symbol.for("isol8.plugin")]: true })).toBe(true);
  });
});

describe("resolvePlugins", () => {
  it("returns an empty list for an empty list", () => {
    expect(resolvePlugins([])).toEqual([]);
  });

  it("keeps the listed order of plugins without enforce", () => {
    expect(names(resolvePlugins([plugin("a"), plugin("b"), plugin("c")]))).toEqual(["a", "b", "c"]);
  });

  it("flattens nested arrays in order", () => {
    const list: PluginOption[] = [plugin("a"), [plugin("b"), [plugin("c"), [plugin("d")]]], plugin("e")];
    expect(names(resolvePlugins(list))).toEqual(["a", "b", "c", "d", "e"]);
  });

  it("drops false, null and undefined entries, at any depth", () => {
    const list: PluginOption[] = [false, plugin("a"), null, [undefined, plugin("b"), [false]], undefined];
    expect(names(resolvePlugins(list))).toEqual(["a", "b"]);
  });

  it("lets `condition && plugin()` switch a plugin off", () => {
    const enabled = false as boolean;
    expect(names(resolvePlugins([enabled && plugin("x"), plugin("y")]))).toEqual(["y"]);
  });

  it("rejects a plugin factory that was not called, hinting at the fix", () => {
    const factory = definePlugin({ name: "test:f", setup: () => () => {} });
    const error = thrown(() => resolvePlugins([plugin("a"), factory as unknown as PluginOption]));
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect(error.message).toContain("plugins[1]");
    expect(error.message).toContain("did you forget to call the plugin factory?");
  });

  it("names the nested position of a non-plugin", () => {
    const error = thrown(() => resolvePlugins([plugin("a"), [plugin("b"), { name: "no-apply" } as unknown as PluginOption]]));
    expect(error.message).toMatch(/^plugins\[1\]\[1\]: /);
  });

  it("rejects non-plugin values such as strings and numbers", () => {
    expect(() => resolvePlugins(["isol8:runtime-python" as unknown as PluginOption])).toThrow(/did you forget to call the plugin factory\?/);
    expect(() => resolvePlugins([42 as unknown as PluginOption])).toThrow(InvalidOptionsError);
  });

  it("rejects a plugin listed twice, naming it", () => {
    const error = thrown(() => resolvePlugins([plugin("dup"), plugin("other"), [plugin("dup")]])) as Isol8Error;
    expect(error.code).toBe("ISOL8_ERR_DUPLICATE_NAME");
    expect(error.plugin).toBe("dup");
    expect(error.message).toBe("Plugin dup is listed twice.");
  });

  it("rejects the same plugin object listed twice", () => {
    const one = plugin("same");
    expect(() => resolvePlugins([one, one])).toThrow(/listed twice/);
  });

  it("rejects a plugin whose dependency is missing, naming both", () => {
    const error = thrown(() => resolvePlugins([plugin("needs", { dependencies: ["isol8:base"] })])) as Isol8Error;
    expect(error.code).toBe("ISOL8_ERR_PLUGIN");
    expect(error.plugin).toBe("needs");
    expect(error.message).toContain("needs");
    expect(error.message).toContain("isol8:base");
    expect(error.message).toContain("add it to the plugins list");
  });

  it("accepts a dependency that is listed before the plugin", () => {
    expect(names(resolvePlugins([plugin("base"), plugin("top", { dependencies: ["base"] })]))).toEqual(["base", "top"]);
  });

  it("does not count a switched-off plugin as a present dependency", () => {
    const enabled = false as boolean; // as a config's `condition && plugin()` reads
    expect(() => resolvePlugins([enabled && plugin("base"), plugin("top", { dependencies: ["base"] })])).toThrow(/needs plugin base/);
  });

  // order is only enforce tier + list position.
  it("orders a dependency before the plugin that needs it, even when listed after it", () => {
    expect(names(resolvePlugins([plugin("top", { dependencies: ["base"] }), plugin("base")]))).toEqual(["base", "top"]);
  });

  it("orders pre plugins first and post plugins last", () => {
    const list = [plugin("post", { enforce: "post" }), plugin("normal"), plugin("pre", { enforce: "pre" })];
    expect(names(resolvePlugins(list))).toEqual(["pre", "normal", "post"]);
  });

  it("keeps the listed order within each enforce tier (stable)", () => {
    const list = [
      plugin("post1", { enforce: "post" }),
      plugin("n1"),
      plugin("pre1", { enforce: "pre" }),
      plugin("post2", { enforce: "post" }),
      plugin("n2"),
      plugin("pre2", { enforce: "pre" }),
      [plugin("n3"), plugin("pre3", { enforce: "pre" })],
    ];
    expect(names(resolvePlugins(list))).toEqual(["pre1", "pre2", "pre3", "n1", "n2", "n3", "post1", "post2"]);
  });

  it("returns the plugin objects themselves", () => {
    const a = plugin("a");
    expect(resolvePlugins([a])[0]).toBe(a);
  });
});

describe("applyPlugins", () => {
  it("applies every plugin in the given order, each to the kit's view for it (same hooks, its own name)", () => {
    const kit = new Kit(silentLogger);
    const calls: string[] = [];
    const plugins = ["a", "b", "c"].map((name) => plugin(name, { apply: (k) => calls.push(`${name}:${k.plugin}:${k.hooks === kit.hooks}`) }));
    applyPlugins(kit, plugins);
    expect(calls).toEqual(["a:a:true", "b:b:true", "c:c:true"]);
  });

  it("turns a throwing apply into a PluginError naming the plugin", () => {
    const cause = new Error("boom");
    const error = thrown(() =>
      applyPlugins(new Kit(silentLogger), [
        plugin("ok"),
        plugin("vendor:bad", {
          apply: () => {
            throw cause;
          },
        }),
      ]),
    ) as PluginError;
    expect(error).toBeInstanceOf(PluginError);
    expect(error.code).toBe("ISOL8_ERR_PLUGIN");
    expect(error.plugin).toBe("vendor:bad");
    expect(error.message).toBe("Plugin vendor:bad failed in apply: boom");
    expect(error.cause).toBe(cause);
  });

  it("wraps a thrown non-Error value too", () => {
    const error = thrown(() =>
      applyPlugins(new Kit(silentLogger), [
        plugin("p", {
          apply: () => {
            throw "just a string";
          },
        }),
      ]),
    );
    expect(error).toBeInstanceOf(PluginError);
    expect(error.message).toBe("Plugin p failed in apply: just a string");
  });

  it("passes an Isol8Error thrown by apply through unchanged", () => {
    const kit = new Kit(silentLogger);
    const registerNone = plugin("vendor:net", { apply: (k) => k.networkModes.register("none", { shapeSpec: (s) => s }, "vendor:net") });
    const error = thrown(() => applyPlugins(kit, [registerNone])) as Isol8Error;
    expect(error).not.toBeInstanceOf(PluginError);
    expect(error.code).toBe("ISOL8_ERR_DUPLICATE_NAME");
  });

  it("stops at the first plugin that throws", () => {
    const later = vi.fn();
    expect(() =>
      applyPlugins(new Kit(silentLogger), [
        plugin("bad", {
          apply: () => {
            throw new Error("x");
          },
        }),
        plugin("later", { apply: later }),
      ]),
    ).toThrow(PluginError);
    expect(later).not.toHaveBeenCalled();
  });
});
