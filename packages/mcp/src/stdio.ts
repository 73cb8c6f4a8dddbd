import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import type { McpHost } from "./host.js";
import { createIsol8McpServer } from "./server.js";

/**
 * Serves MCP over this process's stdin/stdout until the client closes stdin. stdout carries
 * protocol messages only: every log goes to stderr. Resolves when the connection has ended and
 * the host's sessions are closed.
 */
export async function serveStdio(host: McpHost, options: { version?: string } = {}): Promise<void> {
  const server = createIsol8McpServer(host, options);
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    transport.onclose = () => resolve();
    process.stdin.once("end", () => resolve());
    process.stdin.once("close", () => resolve());
  });
  await server.connect(transport);
  await closed;
  await server.close().catch(() => undefined);
  await host.dispose();
}
