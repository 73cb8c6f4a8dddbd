import { describe, expect, it } from "vitest";
import { Isol8Error, UnknownNameError } from "./errors.js";
import { NamedRegistry } from "./registry.js";

/** Calls fn and returns what it threw (fails the test when it does not throw). */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a throw");
}

function registry() {
  return new NamedRegistry<string>("pool strategy", (name) => `Add @isol8/plugin-pool-${name} to isol8.config.ts.`);
}

describe("NamedRegistry", () => {
  it("returns what was registered under a name", () => {
    const r = registry();
    r.register("fast", "value", "isol8:pool-fast");
    expect(r.get("fast")).toBe("value");
    expect(r.has("fast")).toBe(true);
    expect(r.has("slow")).toBe(false);
  });

  it("remembers which plugin registered a name", () => {
    const r = registry();
    r.register("fast", "v", "isol8:pool-fast");
    expect(r.owner("fast")).toBe("isol8:pool-fast");
    expect(r.owner("missing")).toBeUndefined();
  });

  it("attributes a registration without a plugin to (user)", () => {
    const r = registry();
    r.register("mine", "v");
    expect(r.owner("mine")).toBe("(user)");
  });

  it("lists names and values in registration order", () => {
    const r = registry();
    r.register("b", "2");
    r.register("a", "1");
    expect(r.names()).toEqual(["b", "a"]);
    expect(r.values()).toEqual(["2", "1"]);
  });

  it("refuses a duplicate registration, naming the kind, the name and both plugins", () => {
    const r = registry();
    r.register("fast", "first", "vendor:one");
    const error = thrown(() => r.register("fast", "second", "vendor:two")) as Isol8Error;
    expect(error.code).toBe("ISOL8_ERR_DUPLICATE_NAME");
    expect(error.plugin).toBe("vendor:two");
    expect(error.message).toBe('pool strategy "fast" is registered twice: by vendor:one and by vendor:two. Remove one of the plugins.');
  });

  it("keeps the first value after a refused duplicate", () => {
    const r = registry();
    r.register("fast", "first", "vendor:one");
    expect(() => r.register("fast", "second", "vendor:two")).toThrow();
    expect(r.get("fast")).toBe("first");
    expect(r.owner("fast")).toBe("vendor:one");
  });

  it("throws an UnknownNameError on a miss, listing the registered names and the hint", () => {
    const r = registry();
    r.register("fast", "v");
    r.register("secure", "v");
    const error = thrown(() => r.get("warm")) as Isol8Error;
    expect(error).toBeInstanceOf(UnknownNameError);
    expect(error.code).toBe("ISOL8_ERR_UNKNOWN_NAME");
    expect(error.message).toBe('Unknown pool strategy "warm". Registered: fast, secure. Add @isol8/plugin-pool-warm to isol8.config.ts.');
  });

  it("says (none) on a miss when nothing is registered", () => {
    expect(() => registry().get("x")).toThrow('Unknown pool strategy "x". Registered: (none).');
  });

  it("throws the registry's own error on a miss when it has one", () => {
    class CustomMiss extends Error {}
    const r = new NamedRegistry<number>(
      "runtime",
      () => "hint",
      (name, registered) => new CustomMiss(`${name} not in ${registered.join("|")}`),
    );
    r.register("python", 1);
    r.register("node", 2);
    const error = thrown(() => r.get("ruby"));
    expect(error).toBeInstanceOf(CustomMiss);
    expect(error.message).toBe("ruby not in python|node");
  });

  it("refuses registrations once sealed, naming the plugin", () => {
    const r = registry();
    r.seal();
    const error = thrown(() => r.register("late", "v", "vendor:late")) as Isol8Error;
    expect(error.code).toBe("ISOL8_ERR_PLUGIN");
    expect(error.plugin).toBe("vendor:late");
    expect(error.message).toContain('pool strategy "late"');
    expect(error.message).toContain("vendor:late");
    expect(r.has("late")).toBe(false);
  });

  it("still looks names up once sealed", () => {
    const r = registry();
    r.register("fast", "v");
    r.seal();
    expect(r.get("fast")).toBe("v");
    expect(r.names()).toEqual(["fast"]);
  });
});
