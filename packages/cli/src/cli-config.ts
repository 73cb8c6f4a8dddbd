import { validateConfig, type ResolvedConfig } from "@isol8/core";
import { loadConfig } from "@isol8/core/config";
import { defaultPlugins } from "./default-plugins.js";

/** The config the CLI runs with: the file's (or none), with the default plugins when it lists none. */
export async function loadCliConfig(path?: string): Promise<ResolvedConfig> {
  const config = await loadConfig({ path });
  if (config.hasPlugins) return config;
  return { ...config, plugins: validateConfig({ plugins: defaultPlugins() }).plugins };
}
