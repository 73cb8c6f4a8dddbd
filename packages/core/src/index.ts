// The contract (plugin API, hooks, registries, schemas, errors): @isol8/core users import it from here too.
export * from "@isol8/kit";
export * from "./output.js";
export { createEngine } from "./create-engine.js";
export { DockerDriver, MultiplexedStreamParser } from "./docker/driver.js";
export { dockerCreateOptions, type ContainerCreateOptions } from "./docker/spec.js";
export { DockerIsol8, type CleanupReport, type EngineAssembly } from "./engine/docker-isol8.js";
export { TrailerSplitter, type LaunchOutcome } from "./engine/launcher.js";
export { Mutex } from "./engine/mutex.js";
export type { ProcessLauncher, LaunchRequest } from "./engine/launcher.js";
export {
  ExecutorLauncher,
  RoutingLauncher,
  resolveLauncherMode,
  type ExecutorLaunchRequest,
  type ExecutorLaunchOutcome,
  type LauncherMode,
} from "./engine/executor-launcher.js";
export * as executorProtocol from "./engine/executor-protocol.js";
export { packTar, resolveSandboxPath, unpackTar, type TarEntry } from "./engine/sandbox-files.js";
export * from "./images/index.js";
