import { describe, expect, it } from "vitest";
import { Isol8Error, UnknownNameError, UnknownRuntimeError } from "./errors.js";
import type { SpecContext } from "./hooks.js";
import { Kit } from "./kit.js";
import { silentLogger } from "./logger.js";
import type { RuntimeDefinition } from "./runtime.js";
import type { SandboxSpec } from "./sandbox.js";
import { engineOptionsSchema } from "./schemas.js";

/** Calls fn and returns what it threw (fails the test when it does not throw). */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a throw");
}

const runtime = (name: string): RuntimeDefinition => ({
  name,
  extensions: [".x"],
  command: (file) => [name, file],
  image: { dockerfile: "", version: "1" },
});

const specContext: SpecContext = { runtime: "python", image: "isol8:python", engineId: "e1", options: engineOptionsSchema.parse({}) };

describe("Kit", () => {
  it("registers the none and host network modes, owned by the core", () => {
    const kit = new Kit(silentLogger);
    expect(kit.networkModes.names()).toEqual(["none", "host"]);
    expect(kit.networkModes.owner("none")).toBe("isol8:core");
    expect(kit.networkModes.owner("host")).toBe("isol8:core");
  });

  it("shapes the spec of the none mode to no network, keeping every other field", async () => {
    const kit = new Kit(silentLogger);
    const base = { image: "img", memoryBytes: 5, network: { kind: "host" } } as unknown as SandboxSpec;
    const spec = await kit.networkModes.get("none").shapeSpec(base, specContext);
    expect(spec).toEqual({ image: "img", memoryBytes: 5, network: { kind: "none" } });
  });

  it("shapes the spec of the host mode to the host's network", async () => {
    const kit = new Kit(silentLogger);
    const base = { image: "img", network: { kind: "none" } } as unknown as SandboxSpec;
    const spec = await kit.networkModes.get("host").shapeSpec(base, specContext);
    expect(spec).toEqual({ image: "img", network: { kind: "host" } });
  });

  it("refuses a plugin that registers the none network mode again, naming the core", () => {
    const kit = new Kit(silentLogger);
    expect(() => kit.networkModes.register("none", { shapeSpec: (s) => s }, "vendor:net")).toThrow(/by isol8:core and by vendor:net/);
  });

  it("starts with no runtimes, pool strategies, seccomp modes or audit sinks", () => {
    const kit = new Kit(silentLogger);
    expect(kit.runtimes.names()).toEqual([]);
    expect(kit.poolStrategies.names()).toEqual([]);
    expect(kit.seccompModes.names()).toEqual([]);
    expect(kit.auditSinks.names()).toEqual([]);
  });

  it("throws an UnknownRuntimeError listing the registered runtimes on a runtime miss", () => {
    const kit = new Kit(silentLogger);
    kit.runtimes.register("python", runtime("python"), "isol8:runtime-python");
    kit.runtimes.register("node", runtime("node"), "isol8:runtime-node");
    const error = thrown(() => kit.runtimes.get("ruby")) as UnknownRuntimeError;
    expect(error).toBeInstanceOf(UnknownRuntimeError);
    expect(error.code).toBe("ISOL8_ERR_UNKNOWN_RUNTIME");
    expect(error.runtime).toBe("ruby");
    expect(error.registered).toEqual(["python", "node"]);
    expect(error.message).toContain("Registered runtimes: python, node.");
  });

  it("throws an UnknownNameError with the network-filter hint for the filtered network mode", () => {
    const error = thrown(() => new Kit(silentLogger).networkModes.get("filtered"));
    expect(error).toBeInstanceOf(UnknownNameError);
    expect(error.message).toBe('Unknown network mode "filtered". Registered: none, host. Add @isol8/plugin-network-filter to isol8.config.ts.');
  });

  it("names the mode in the hint for any other unknown network mode", () => {
    expect(() => new Kit(silentLogger).networkModes.get("vpn")).toThrow('Add a plugin that registers network mode "vpn".');
  });

  it("hints at the plugin package on pool strategy, seccomp and audit sink misses", () => {
    const kit = new Kit(silentLogger);
    expect(() => kit.poolStrategies.get("fast")).toThrow("Add @isol8/plugin-pool-fast to isol8.config.ts.");
    expect(() => kit.seccompModes.get("strict")).toThrow("Add @isol8/plugin-seccomp to isol8.config.ts.");
    expect(() => kit.auditSinks.get("file")).toThrow("Add @isol8/plugin-audit-file to isol8.config.ts.");
  });

  it("hints at the Kubernetes plugin on a driver miss, and names the driver otherwise", () => {
    const kit = new Kit(silentLogger);
    expect(() => kit.drivers.get("kubernetes")).toThrow(
      /Unknown driver "kubernetes"\. Registered: \(none\)\. Add kubernetesDriver\(\{\.\.\.\}\) of @isol8\/plugin-driver-kubernetes/,
    );
    expect(() => kit.drivers.get("nomad")).toThrow('Add a plugin that registers driver "nomad".');
  });

  it("gives a driver factory to the engine by name, owned by the plugin that registered it", () => {
    const kit = new Kit(silentLogger);
    const driver = { kind: "fake" } as never;
    kit.forPlugin("isol8:driver-fake").drivers.register("fake", () => driver);
    expect(kit.drivers.owner("fake")).toBe("isol8:driver-fake");
    expect(kit.drivers.get("fake")({ engineId: "e1", options: engineOptionsSchema.parse({ driver: "fake" }), log: silentLogger })).toBe(driver);
  });

  it("seals every registry", () => {
    const kit = new Kit(silentLogger);
    kit.seal();
    const attempts = [
      () => kit.runtimes.register("python", runtime("python")),
      () => kit.poolStrategies.register("p", () => ({}) as never),
      () => kit.networkModes.register("n", { shapeSpec: (s) => s }),
      () => kit.seccompModes.register("s", { shapeSpec: (s) => s }),
      () => kit.auditSinks.register("a", { write: async () => {} }),
      () => kit.drivers.register("d", () => ({}) as never),
    ];
    expect(attempts).toHaveLength(6);
    for (const attempt of attempts) {
      const error = thrown(attempt);
      expect(Isol8Error.isInstance(error)).toBe(true);
      expect((error as Isol8Error).code).toBe("ISOL8_ERR_PLUGIN");
    }
  });

  it("keeps the logger it was given", () => {
    expect(new Kit(silentLogger).log).toBe(silentLogger);
  });

  it("gives each kit its own hooks and registries", () => {
    const a = new Kit(silentLogger);
    const b = new Kit(silentLogger);
    a.runtimes.register("python", runtime("python"));
    expect(b.runtimes.has("python")).toBe(false);
    expect(a.hooks).not.toBe(b.hooks);
  });
});

describe("Kit.forPlugin", () => {
  it("makes what a plugin registers its own without naming it, and tells the plugin its name", () => {
    const kit = new Kit(silentLogger);
    const view = kit.forPlugin("vendor:ruby");
    view.runtimes.register("ruby", runtime("ruby"));
    expect(kit.runtimes.owner("ruby")).toBe("vendor:ruby");
    expect(view.plugin).toBe("vendor:ruby");
    expect(kit.plugin).toBeUndefined();
  });

  it("shares the hooks and registries with the engine's kit", () => {
    const kit = new Kit(silentLogger);
    const view = kit.forPlugin("vendor:x");
    expect(view.hooks).toBe(kit.hooks);
    view.auditSinks.register("s", { write: async () => undefined });
    expect(kit.auditSinks.has("s")).toBe(true);
  });

  it("names both plugins when one registers a name another holds", () => {
    const kit = new Kit(silentLogger);
    kit.forPlugin("vendor:a").runtimes.register("ruby", runtime("ruby"));
    expect(() => kit.forPlugin("vendor:b").runtimes.register("ruby", runtime("ruby"))).toThrow(/by vendor:a and by vendor:b/);
  });
});

describe("a tap that throws", () => {
  it("surfaces as a PluginError naming the tap's plugin and the hook (sync, promise and callback taps)", async () => {
    const kit = new Kit(silentLogger);
    kit.hooks.failed.tap("vendor:sync", () => {
      throw new Error("sync boom");
    });
    const sync = thrown(() => kit.hooks.failed.call(new Error("x"), {} as never));
    expect(Isol8Error.isInstance(sync) && sync.code).toBe("ISOL8_ERR_PLUGIN");
    expect(sync.message).toBe("Plugin vendor:sync failed in hook failed: sync boom");

    kit.hooks.ready.tapPromise("vendor:promise", () => Promise.reject(new Error("promise boom")));
    await expect(kit.hooks.ready.promise(kit)).rejects.toThrow("Plugin vendor:promise failed in hook ready: promise boom");

    const other = new Kit(silentLogger);
    other.hooks.shutdown.tapAsync("vendor:callback", (_kit, callback) => callback(new Error("callback boom")));
    await expect(other.hooks.shutdown.promise(other)).rejects.toThrow("Plugin vendor:callback failed in hook shutdown: callback boom");
  });

  it("keeps an isol8 error thrown on purpose as it is", async () => {
    const kit = new Kit(silentLogger);
    const denial = new UnknownNameError("thing", "x", []);
    kit.hooks.ready.tapPromise("vendor:typed", () => Promise.reject(denial));
    await expect(kit.hooks.ready.promise(kit)).rejects.toBe(denial);
  });

  it("leaves a tap that succeeds untouched (positive control: its value comes through)", async () => {
    const kit = new Kit(silentLogger);
    kit.hooks.onOutput.tap("vendor:upper", (chunk) => ({ ...chunk, data: chunk.data.toUpperCase() }));
    expect(kit.hooks.onOutput.call({ stream: "stdout", data: "hi" }, {} as never)).toEqual({ stream: "stdout", data: "HI" });
  });
});
