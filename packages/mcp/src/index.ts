export { createIsol8McpServer, MCP_VERSION } from "./server.js";
export { serveStdio } from "./stdio.js";
export { EngineHost, describeRuntimes, type EngineHostOptions } from "./engine-host.js";
export { ToolError, toolErrorResult } from "./errors.js";
export { outputContents, imageMimeType } from "./outputs.js";
export type { McpHost, HostExecuteOptions, RuntimeInfo, SessionInfo } from "./host.js";
export { noopProgram } from "./sandbox-programs.js";
