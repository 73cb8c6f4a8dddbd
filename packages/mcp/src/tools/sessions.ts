import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import * as z from "zod";
import { asToolResult } from "../errors.js";
import type { McpHost } from "../host.js";

const sessionShape = { id: z.string(), runtime: z.string(), createdAt: z.string(), keep: z.boolean() };

export function registerSessionTools(server: McpServer, host: McpHost): void {
  server.registerTool(
    "create_session",
    {
      title: "Create a persistent sandbox",
      description: `Create a session: a sandbox that stays between calls, for one runtime. Files under /sandbox persist across run_code calls that pass its id.
It is closed when this connection ends (unless keep is true on an HTTP connection, where the key's tenant owns it) or by close_session. Returns { id, runtime, createdAt, keep }.`,
      inputSchema: {
        runtime: z.string().min(1, 'expected a runtime name such as "python"').describe("The session's runtime (fixed for its life)"),
        keep: z.boolean().optional().describe("HTTP only: keep the session after this connection ends (it then expires when idle)"),
      },
      outputSchema: sessionShape,
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    (args) =>
      asToolResult(async () => {
        const info = await host.createSession({ runtime: args.runtime, keep: args.keep });
        return { content: [{ type: "text", text: `session ${info.id} (${info.runtime}) created` }], structuredContent: { ...info } };
      }),
  );

  server.registerTool(
    "close_session",
    {
      title: "Close a session",
      description: "Close a session: whatever runs in it is stopped and its sandbox, with its files, is removed.",
      inputSchema: { session: z.string().min(1).describe("The session id") },
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
    },
    (args) =>
      asToolResult(async () => {
        await host.closeSession(args.session);
        return { content: [{ type: "text", text: `session ${args.session} closed` }] };
      }),
  );

  server.registerTool(
    "list_sessions",
    {
      title: "List sessions",
      description: "List the open sessions of this connection (stdio) or tenant (HTTP): id, runtime, createdAt, keep.",
      outputSchema: { sessions: z.array(z.object(sessionShape)) },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    () =>
      asToolResult(async () => {
        const sessions = host.listSessions();
        const text = sessions.length
          ? sessions.map((s) => `${s.id} ${s.runtime} created ${s.createdAt}${s.keep ? " (kept)" : ""}`).join("\n")
          : "no open sessions";
        return { content: [{ type: "text", text }], structuredContent: { sessions } };
      }),
  );
}
