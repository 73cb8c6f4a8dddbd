import { DockerIsol8 as CoreDockerIsol8, type EngineAssembly, type EngineOptions } from "@isol8/core";
import { defaultPlugins } from "./default-plugins.js";

export * from "@isol8/core";
export { defaultPlugins } from "./default-plugins.js";
// Audit sinks outside the default set, for `isol8` users who want them without another install.
export { fileAudit, type FileAuditOptions } from "@isol8/plugin-audit-file";
export { httpAudit, type HttpAuditOptions } from "@isol8/plugin-audit-http";
export { RemoteIsol8, RemoteError, type RemoteConnection, type RemoteErrorCode, type RemoteErrorInfo, type RemoteSessionInfo } from "@isol8/remote";

/**
 * `new DockerIsol8(options)` with the default plugins (the five runtimes). Pass
 * `{ plugins }` to choose others; `@isol8/core` alone gives a trimmed engine.
 */
export class DockerIsol8 extends CoreDockerIsol8 {
  constructor(options: EngineOptions = {}, assembly: EngineAssembly = {}) {
    super(options, { ...assembly, plugins: assembly.plugins ?? defaultPlugins() });
  }
}
