import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { McpHost } from "./host.js";
import { registerResources } from "./resources.js";
import { registerFileTools } from "./tools/files.js";
import { registerRunCode } from "./tools/run-code.js";
import { registerRuntimeTools } from "./tools/runtimes.js";
import { registerSessionTools } from "./tools/sessions.js";

declare const __PACKAGE_VERSION__: string;
export const MCP_VERSION: string = typeof __PACKAGE_VERSION__ === "string" ? __PACKAGE_VERSION__ : "0.0.0-dev";

const INSTRUCTIONS = `isol8 runs untrusted code in locked-down sandboxes (Docker containers without network by default).
Use run_code for one-off programs; create_session for a sandbox whose /sandbox files persist between calls (then run_code with its id, write_file/read_file/list_files, install_packages).
run_cell (interpreter state kept between calls) is not available yet.`;

/** An MCP server exposing isol8 through `host`: one per connection. */
export function createIsol8McpServer(host: McpHost, options: { version?: string } = {}): McpServer {
  const server = new McpServer({ name: "isol8", version: options.version ?? MCP_VERSION }, { instructions: INSTRUCTIONS, capabilities: { logging: {} } });
  registerRunCode(server, host);
  registerSessionTools(server, host);
  registerFileTools(server, host);
  registerRuntimeTools(server, host);
  registerResources(server, host);
  return server;
}
