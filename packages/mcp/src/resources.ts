import { McpServer, ResourceTemplate } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { McpHost } from "./host.js";
import { imageMimeType } from "./outputs.js";

/**
 * isol8://runtimes (the registered runtimes, JSON) and isol8://sessions/{id}/files/{path}: a
 * session's file (text when UTF-8, else a blob). Listing resources lists no files (that would
 * run a program in every session): list_files does.
 */
export function registerResources(server: McpServer, host: McpHost): void {
  server.registerResource(
    "runtimes",
    "isol8://runtimes",
    { title: "isol8 runtimes", description: "The registered runtimes: name, version, extensions, packages, contexts", mimeType: "application/json" },
    (uri) => ({
      contents: [{ uri: uri.href, mimeType: "application/json", text: JSON.stringify(host.runtimes(), null, 2) }],
    }),
  );

  server.registerResource(
    "session-file",
    new ResourceTemplate("isol8://sessions/{session}/files/{+path}", { list: undefined }),
    { title: "A file in a session's sandbox", description: "isol8://sessions/{id}/files/{path}: a file under /sandbox (path relative to it, or absolute)" },
    async (uri, variables) => {
      const session = String(variables.session);
      const path = String(variables.path);
      const full = path.startsWith("/") ? path : `/sandbox/${path}`;
      const content = await host.getFile(session, full);
      const mimeType = imageMimeType(full);
      if (!mimeType) {
        try {
          return { contents: [{ uri: uri.href, mimeType: "text/plain", text: new TextDecoder("utf-8", { fatal: true }).decode(content) }] };
        } catch {
          // Not UTF-8: sent as a blob below.
        }
      }
      return { contents: [{ uri: uri.href, mimeType: mimeType ?? "application/octet-stream", blob: content.toString("base64") }] };
    },
  );
}
