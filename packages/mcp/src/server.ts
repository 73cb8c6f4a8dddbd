import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { McpHost } from "./host.js";
import { registerResources } from "./resources.js";
import { registerContextTools } from "./tools/contexts.js";
import { registerFileTools } from "./tools/files.js";
import { registerRunCode } from "./tools/run-code.js";
import { registerRuntimeTools } from "./tools/runtimes.js";
import { registerSessionTools } from "./tools/sessions.js";

declare const __PACKAGE_VERSION__: string;
export const MCP_VERSION: string = typeof __PACKAGE_VERSION__ === "string" ? __PACKAGE_VERSION__ : "0.0.0-dev";

const INSTRUCTIONS = `isol8 runs untrusted code in locked-down sandboxes (Docker containers without network by default).
Use run_code for one-off programs; create_session for a sandbox whose /sandbox files persist between calls (then run_code with its id, write_file/read_file/list_files, install_packages).
For notebook-style work where variables and imports persist: create_session, then create_context in it (list_runtimes says which runtimes have contexts), then run_cell with the session and context ids; each cell sees the state of the earlier ones. A cell's exception comes back as its result (error name, value, traceback), not as a failed call; its display outputs (images, HTML, JSON, text) come back as content. restart_context clears the state, delete_context ends it.`;

/** An MCP server exposing isol8 through `host`: one per connection. */
export function createIsol8McpServer(host: McpHost, options: { version?: string } = {}): McpServer {
  const server = new McpServer({ name: "isol8", version: options.version ?? MCP_VERSION }, { instructions: INSTRUCTIONS, capabilities: { logging: {} } });
  registerRunCode(server, host);
  registerSessionTools(server, host);
  registerFileTools(server, host);
  registerContextTools(server, host);
  registerRuntimeTools(server, host);
  registerResources(server, host);
  return server;
}
