export { createIsol8McpServer, MCP_VERSION } from "./server.js";
export { serveStdio } from "./stdio.js";
export { EngineHost, type EngineHostOptions } from "./engine-host.js";
// The kit describes runtimes for engines and tools alike; re-exported for existing importers.
export { describeRuntimes } from "@isol8/kit";
export { ToolError, toolErrorResult } from "./errors.js";
export { outputContents, imageMimeType } from "./outputs.js";
export type { McpHost, HostExecuteOptions, RuntimeInfo, SessionInfo } from "./host.js";
export { noopProgram } from "./sandbox-programs.js";
