import type { Isol8Plugin } from "@isol8/core";
import { bashRuntime } from "@isol8/plugin-runtime-bash";
import { bunRuntime } from "@isol8/plugin-runtime-bun";
import { denoRuntime } from "@isol8/plugin-runtime-deno";
import { nodeRuntime } from "@isol8/plugin-runtime-node";
import { pythonRuntime } from "@isol8/plugin-runtime-python";
import { seccomp } from "@isol8/plugin-seccomp";
import { stdoutAudit } from "@isol8/plugin-audit-stdout";
import { networkFilter } from "@isol8/plugin-network-filter";
import { fastPool } from "@isol8/plugin-pool-fast";
import { securePool } from "@isol8/plugin-pool-secure";

/**
 * The plugins a batteries-included engine has: the one place that knows the default set.
 * Plugins passed in replace the default of the same name (e.g. a configured `fastPool({...})`)
 * or are added after the defaults.
 */
export function defaultPlugins(...plugins: Isol8Plugin[]): Isol8Plugin[] {
  const defaults = [
    pythonRuntime(),
    nodeRuntime(),
    bunRuntime(),
    denoRuntime(),
    bashRuntime(),
    fastPool(),
    securePool(),
    seccomp(),
    networkFilter(),
    stdoutAudit(),
  ];
  const given = new Map(plugins.map((plugin) => [plugin.name, plugin]));
  const merged = defaults.map((plugin) => given.get(plugin.name) ?? plugin);
  return [...merged, ...plugins.filter((plugin) => !defaults.some((d) => d.name === plugin.name))];
}
