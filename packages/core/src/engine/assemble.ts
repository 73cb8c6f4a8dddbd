import {
  InvalidOptionsError,
  Isol8Error,
  Kit,
  NotSupportedError,
  applyPlugins,
  resolvePlugins,
  type Logger,
  type PluginOption,
  type ResolvedEngineOptions,
  type SandboxDriver,
} from "@isol8/kit";
import type { DockerDriver } from "../docker/driver.js";
import type { LauncherMode } from "./launcher.js";

/**
 * The engine's kit: every plugin applied (each through its own view), initialize called, the
 * registries sealed, and every name an option refers to checked: a missing plugin fails here,
 * at construction, naming the plugin to add.
 */
export function assembleKit(options: ResolvedEngineOptions, plugins: readonly PluginOption[], log: Logger, docker: DockerDriver): Kit {
  const kit = new Kit(log);
  // The core's own backend, chosen by default (`driver: "docker"`); plugins add others ("kubernetes").
  kit.drivers.register("docker", () => docker, "isol8:core");
  applyPlugins(kit, resolvePlugins(plugins));
  kit.hooks.initialize.call(kit);
  kit.seal();
  try {
    kit.drivers.get(options.driver);
    kit.networkModes.get(options.network);
    if (options.poolStrategy) kit.poolStrategies.get(options.poolStrategy);
    if (options.security.seccomp) kit.seccompModes.get(options.security.seccomp);
    for (const sink of options.audit?.sinks ?? []) kit.auditSinks.get(sink);
  } catch (error) {
    if (Isol8Error.isInstance(error)) throw new InvalidOptionsError(error.message, { cause: error });
    throw error;
  }
  return kit;
}

/** Options that each make sense alone but not together: refused at construction, naming both. */
export function checkOptionPairs(options: ResolvedEngineOptions): void {
  if (options.endWithProcess && options.persist) {
    throw new InvalidOptionsError("Invalid engine options: endWithProcess and persist: a sandbox that ends with this process cannot be kept after stop()");
  }
}

/** The seccomp mode in force: the option, else "custom" when a profile is given, else "strict" when a plugin provides it, else the driver's default. */
export function seccompModeOf(kit: Kit, options: ResolvedEngineOptions): string | undefined {
  const { seccomp, seccompProfile } = options.security;
  if (seccomp) return seccomp;
  if (seccompProfile !== undefined && kit.seccompModes.has("custom")) return "custom"; // a profile given means that profile
  return kit.seccompModes.has("strict") ? "strict" : undefined;
}

/**
 * What the chosen backend cannot run, refused at start() naming the option (SandboxDriver.limits):
 * a network mode it cannot give a sandbox, the exec launcher where only the executor runs.
 */
export function checkDriverLimits(driver: SandboxDriver, options: ResolvedEngineOptions, launcherMode: LauncherMode): void {
  const { networkModes, execLauncher } = driver.limits ?? {};
  if (networkModes && !networkModes.includes(options.network)) {
    throw new NotSupportedError(
      `network "${options.network}": the ${options.driver} driver gives sandboxes network ${networkModes.map((m) => `"${m}"`).join(", ")} only`,
    );
  }
  if (execLauncher === false && launcherMode === "exec") {
    throw new NotSupportedError(
      `launcher "exec" (the option, or ISOL8_LAUNCHER): the ${options.driver} driver runs programs through the in-container executor only; use launcher "auto" or "executor" with images built by isol8 setup`,
    );
  }
}

/** With the exec launcher out (SandboxDriver.limits), an image without the executor cannot run: refused at create, naming the option. */
export function refuseExecLauncher(driver: SandboxDriver, options: ResolvedEngineOptions, image: string): void {
  if (driver.limits?.execLauncher !== false) return;
  throw new NotSupportedError(
    `launcher "${options.launcher}": the image ${image} has no isol8 executor of this engine's protocol, and the ${options.driver} driver cannot run the exec launcher; use images built by isol8 setup`,
  );
}
