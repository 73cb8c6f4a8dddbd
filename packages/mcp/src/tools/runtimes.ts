import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import * as z from "zod";
import { asToolResult, ToolError } from "../errors.js";
import type { McpHost } from "../host.js";
import { runResultShape, runToolResult } from "../result.js";
import { noopProgram } from "../sandbox-programs.js";
import { sessionInfo } from "./files.js";

const runtimeShape = { name: z.string(), version: z.string(), extensions: z.array(z.string()), packages: z.boolean(), contexts: z.boolean() };

export function registerRuntimeTools(server: McpServer, host: McpHost): void {
  server.registerTool(
    "list_runtimes",
    {
      title: "List runtimes",
      description:
        "List the runtimes code can run in: name, version (of its image recipe), file extensions, whether install_packages works (packages) and whether run_cell works (contexts).",
      outputSchema: { runtimes: z.array(z.object(runtimeShape)) },
      annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
    },
    () =>
      asToolResult(async () => {
        const runtimes = host.runtimes();
        const text = runtimes.map((r) => `${r.name} (${r.extensions.join(", ")})${r.packages ? " packages" : ""} — ${r.version}`).join("\n");
        return { content: [{ type: "text", text }], structuredContent: { runtimes } };
      }),
  );

  server.registerTool(
    "install_packages",
    {
      title: "Install packages into a session",
      description:
        "Install packages (pip for python, npm for node/bun, deno's for deno) into a session's sandbox, so later run_code calls in it can import them. The sandbox needs network access to a registry for this (the server's network policy decides). Returns the installer's result.",
      inputSchema: {
        session: z.string().min(1).describe("The session id"),
        packages: z.array(z.string().min(1)).min(1, "expected at least one package").describe('Package specs, e.g. ["requests==2.32.3"]'),
      },
      outputSchema: runResultShape,
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
    },
    (args, extra) =>
      asToolResult(async () => {
        const info = sessionInfo(host, args.session);
        const runtime = host.runtimes().find((r) => r.name === info.runtime);
        if (!runtime?.packages) throw new ToolError("ISOL8_ERR_NOT_SUPPORTED", `runtime "${info.runtime}" does not install packages`);
        const result = await host.execute(
          { runtime: info.runtime, code: noopProgram(info.runtime) ?? " \n", installPackages: args.packages },
          { session: args.session, signal: extra.signal },
        );
        return runToolResult(result, args.session);
      }),
  );
}
