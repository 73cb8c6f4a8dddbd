import { describe, expect, it } from "vitest";
import { Isol8Error, UnknownNameError, UnknownRuntimeError } from "./errors.js";
import type { SpecContext } from "./hooks.js";
import { Kit, withHostConfig } from "./kit.js";
import { silentLogger } from "./logger.js";
import type { RuntimeDefinition } from "./runtime.js";
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

  it("shapes the spec of the none mode to Docker's none network, keeping other host config", async () => {
    const kit = new Kit(silentLogger);
    const spec = await kit.networkModes.get("none").shapeSpec({ Image: "img", HostConfig: { Memory: 5 } }, specContext);
    expect(spec).toEqual({ Image: "img", HostConfig: { Memory: 5, NetworkMode: "none" } });
  });

  it("shapes the spec of the host mode to Docker's host network", async () => {
    const kit = new Kit(silentLogger);
    const spec = await kit.networkModes.get("host").shapeSpec({ Image: "img" }, specContext);
    expect(spec).toEqual({ Image: "img", HostConfig: { NetworkMode: "host" } });
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

  it("seals every registry", () => {
    const kit = new Kit(silentLogger);
    kit.seal();
    const attempts = [
      () => kit.runtimes.register("python", runtime("python")),
      () => kit.poolStrategies.register("p", () => ({}) as never),
      () => kit.networkModes.register("n", { shapeSpec: (s) => s }),
      () => kit.seccompModes.register("s", { shapeSpec: (s) => s }),
      () => kit.auditSinks.register("a", { write: async () => {} }),
    ];
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

describe("withHostConfig", () => {
  it("merges host config without changing the given spec", () => {
    const spec = { Image: "img", HostConfig: { Memory: 1, NetworkMode: "bridge" } };
    const shaped = withHostConfig(spec, { NetworkMode: "none", PidsLimit: 64 });
    expect(shaped).toEqual({ Image: "img", HostConfig: { Memory: 1, NetworkMode: "none", PidsLimit: 64 } });
    expect(spec.HostConfig).toEqual({ Memory: 1, NetworkMode: "bridge" });
  });
});
