import { InvalidOptionsError, Isol8Error, Kit, applyPlugins, resolvePlugins, type Logger, type PluginOption, type ResolvedEngineOptions } from "@isol8/kit";

/**
 * The engine's kit: every plugin applied (each through its own view), initialize called, the
 * registries sealed, and every name an option refers to checked: a missing plugin fails here,
 * at construction, naming the plugin to add.
 */
export function assembleKit(options: ResolvedEngineOptions, plugins: readonly PluginOption[], log: Logger): Kit {
  const kit = new Kit(log);
  applyPlugins(kit, resolvePlugins(plugins));
  kit.hooks.initialize.call(kit);
  kit.seal();
  try {
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

/** The seccomp mode in force: the option, else "custom" when a profile is given, else "strict" when a plugin provides it, else the driver's default. */
export function seccompModeOf(kit: Kit, options: ResolvedEngineOptions): string | undefined {
  const { seccomp, seccompProfile } = options.security;
  if (seccomp) return seccomp;
  if (seccompProfile !== undefined && kit.seccompModes.has("custom")) return "custom"; // a profile given means that profile
  return kit.seccompModes.has("strict") ? "strict" : undefined;
}
