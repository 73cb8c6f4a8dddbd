import { SANDBOX_DIR } from "@isol8/kit";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import * as z from "zod";
import { asToolResult, ToolError } from "../errors.js";
import type { McpHost, SessionInfo } from "../host.js";
import { listProgram, MAX_LISTED, parseListing } from "../sandbox-programs.js";

const session = z.string().min(1).describe("The session id (create_session)");
const path = z.string().min(1, "expected a path").describe("Absolute path under /sandbox (or /tmp), or one relative to /sandbox");

/** A relative path is under /sandbox; the engine applies its own rules to the result. */
const absolute = (p: string) => (p.startsWith("/") ? p : `${SANDBOX_DIR}/${p}`);

export function sessionInfo(host: McpHost, id: string): SessionInfo {
  const info = host.listSessions().find((s) => s.id === id);
  if (!info) throw new ToolError("ISOL8_ERR_NOT_FOUND", `Session not found: ${id} (create one with create_session; list_sessions lists the open ones)`);
  return info;
}

/** Text when the bytes are valid UTF-8, else undefined. */
function utf8(content: Buffer): string | undefined {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(content);
  } catch {
    return undefined;
  }
}

export function registerFileTools(server: McpServer, host: McpHost): void {
  server.registerTool(
    "write_file",
    {
      title: "Write a file into a session",
      description:
        "Write a file into a session's sandbox (under /sandbox or /tmp; the engine's path rules and size bounds apply). content is text, or base64 with encoding \"base64\".",
      inputSchema: { session, path, content: z.string(), encoding: z.enum(["utf8", "base64"]).optional().describe('"utf8" (default) or "base64"') },
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    },
    (args) =>
      asToolResult(async () => {
        const bytes = args.encoding === "base64" ? Buffer.from(args.content, "base64") : Buffer.from(args.content, "utf8");
        await host.putFile(args.session, absolute(args.path), bytes);
        return { content: [{ type: "text", text: `wrote ${bytes.length} bytes to ${absolute(args.path)}` }] };
      }),
  );

  server.registerTool(
    "read_file",
    {
      title: "Read a file from a session",
      description:
        "Read a regular file from a session's sandbox (bounded by the engine's maxOutputFileSize). Text comes back as text; other bytes (or encoding \"base64\") as a base64 blob resource.",
      inputSchema: { session, path, encoding: z.enum(["utf8", "base64"]).optional().describe('"base64" to always get a blob') },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args) =>
      asToolResult(async () => {
        const full = absolute(args.path);
        const content = await host.getFile(args.session, full);
        const text = args.encoding === "base64" ? undefined : utf8(content);
        if (text !== undefined) return { content: [{ type: "text", text }] };
        return {
          content: [
            {
              type: "resource",
              resource: { uri: `isol8://sessions/${args.session}/files${full}`, mimeType: "application/octet-stream", blob: content.toString("base64") },
            },
          ],
        };
      }),
  );

  server.registerTool(
    "list_files",
    {
      title: "List a session's files",
      description: `List the files under a directory of a session's sandbox (default /sandbox), recursively, at most ${MAX_LISTED} entries: path (relative to the directory), type, sizeBytes. Runs a small listing program in the session's runtime.`,
      inputSchema: { session, directory: z.string().optional().describe("Directory to list (default /sandbox)") },
      outputSchema: { files: z.array(z.object({ path: z.string(), type: z.enum(["file", "directory", "other"]), sizeBytes: z.number() })) },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args, extra) =>
      asToolResult(async () => {
        const info = sessionInfo(host, args.session);
        const code = listProgram(info.runtime);
        if (!code)
          throw new ToolError(
            "ISOL8_ERR_NOT_SUPPORTED",
            `list_files has no listing program for runtime "${info.runtime}" (it has python, node, bun, deno, bash)`,
          );
        const directory = absolute(args.directory ?? SANDBOX_DIR);
        const result = await host.execute({ runtime: info.runtime, code, env: { ISOL8_LIST_DIR: directory } }, { session: args.session, signal: extra.signal });
        if (result.exitCode !== 0)
          throw new ToolError("ISOL8_ERR_FILE", `cannot list ${directory}: ${result.stderr.trim().slice(0, 500) || `exit code ${result.exitCode}`}`);
        const files = parseListing(info.runtime, result.stdout);
        const text = files.length
          ? files.map((f) => `${f.type === "directory" ? `${f.path}/` : f.path}${f.type === "file" ? ` (${f.sizeBytes} bytes)` : ""}`).join("\n")
          : `${directory} is empty`;
        return { content: [{ type: "text", text }], structuredContent: { files } };
      }),
  );
}
