import type { ResolvedConfig } from "@isol8/kit";
import { DockerIsol8, type EngineAssembly } from "./engine/docker-isol8.js";
import type { EngineOptions } from "@isol8/kit";

/** Builds an engine from a loaded config: the config's plugins, its defaults overridden by `options`. */
export function createEngine(
  config: Pick<ResolvedConfig, "plugins" | "defaults">,
  options: EngineOptions = {},
  assembly: Omit<EngineAssembly, "plugins"> = {},
): DockerIsol8 {
  return new DockerIsol8({ ...config.defaults, ...options }, { ...assembly, plugins: config.plugins });
}
