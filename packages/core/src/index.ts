// The contract (plugin API, hooks, registries, schemas, errors): @isol8/core users import it from here too.
export * from "@isol8/kit";
export * from "./output.js";
export { createEngine } from "./create-engine.js";
export { DockerDriver, MultiplexedStreamParser } from "./docker/driver.js";
export { dockerCreateOptions, type ContainerCreateOptions } from "./docker/spec.js";
export { codeHash } from "./engine/audit.js";
export { DockerIsol8, type EngineAssembly } from "./engine/docker-isol8.js";
export type { CleanupReport } from "./docker/cleanup.js";
export { TrailerSplitter, DockerExecLauncher } from "./engine/exec-launcher.js";
export { Mutex } from "./engine/mutex.js";
export {
  resolveLauncherMode,
  type ExecutorLaunchRequest,
  type ExecutorLaunchOutcome,
  type LaunchOutcome,
  type LaunchRequest,
  type LauncherMode,
  type MainProcess,
  type PrepareRequest,
  type ProcessLauncher,
} from "./engine/launcher.js";
export { ExecutorLauncher, executorMainProcess } from "./engine/executor-launcher.js";
export { baseSandboxSpec } from "./engine/sandbox-spec.js";
export * as executorProtocol from "./engine/executor-protocol.js";
export { packTar, resolveSandboxPath, unpackTar, type TarEntry } from "./engine/sandbox-files.js";
export * from "./images/index.js";
