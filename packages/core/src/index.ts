export * from "./errors.js";
export * from "./stages.js";
export * from "./hooks.js";
export * from "./registry.js";
export * from "./plugin.js";
export * from "./kit.js";
export * from "./runtime.js";
export * from "./schemas.js";
export * from "./sizes.js";
export * from "./output.js";
export * from "./logger.js";
export { defineConfig, validateConfig, type Isol8Config, type ResolvedConfig } from "./config/define-config.js";
export { createEngine } from "./create-engine.js";
export { DockerDriver, MultiplexedStreamParser, type ContainerSpec, type ExecOptions } from "./docker/driver.js";
export { DockerIsol8, CONTAINER_LABELS, type CleanupReport, type EngineAssembly } from "./engine/docker-isol8.js";
export { TrailerSplitter, type LaunchOutcome } from "./engine/launcher.js";
export { Mutex } from "./engine/mutex.js";
export type { ExecuteOptions, Isol8Engine, StartOptions, StopReport } from "./engine/engine.js";
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
