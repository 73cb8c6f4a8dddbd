import { executionRequestSchema, type ExecutionRequest } from "@isol8/kit";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import * as z from "zod";
import { asToolResult } from "../errors.js";
import type { McpHost } from "../host.js";
import { runResultShape, runToolResult } from "../result.js";
import { progressOfOutput } from "./progress.js";

const request = executionRequestSchema.shape;

/** A file's content: text, or bytes as { base64 }. */
const fileContentSchema = z.union([z.string(), z.strictObject({ base64: z.base64("expected base64") })]);

const runCodeInput = {
  runtime: request.runtime.describe("Runtime name (see list_runtimes): python, node, bun, deno, bash"),
  code: z.string().min(1, "expected non-empty code").describe("The program's source code"),
  stdin: z.string().optional().describe("Text for the program's standard input"),
  files: z.record(z.string(), fileContentSchema).optional().describe("Files written into /sandbox before the run: path -> text or { base64 }"),
  outputPaths: request.outputPaths
    .describe("Files (absolute paths under /sandbox or /tmp) to send back after the run; images come back as image content")
    .optional(),
  timeoutMs: request.timeoutMs.describe("Time limit in milliseconds (the server's default and ceiling apply)"),
  session: z.string().min(1).optional().describe("Run in this session's sandbox (create_session) instead of a fresh one"),
};

const DESCRIPTION = `Run a program once in a locked-down sandbox (no network, limited memory, CPU and time) and get its output.
Without "session" the sandbox is fresh and discarded after the run; with one, it runs in that session's sandbox, whose /sandbox files persist between calls.
Returns a text summary (exit code, duration, stdout, stderr) and structured fields stdout, stderr, exitCode, durationMs, truncated (output cut at the size limit), timedOut, oomKilled.
Files listed in outputPaths come back too: PNG, JPEG, GIF, WebP and SVG as images, others as embedded resources. Save plots to a file (e.g. /sandbox/plot.png) and list it in outputPaths to see them.`;

const bytes = (content: z.infer<typeof fileContentSchema>) => (typeof content === "string" ? content : Buffer.from(content.base64, "base64"));

export function registerRunCode(server: McpServer, host: McpHost): void {
  server.registerTool(
    "run_code",
    {
      title: "Run code in a sandbox",
      description: DESCRIPTION,
      inputSchema: runCodeInput,
      outputSchema: runResultShape,
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    (args, extra) =>
      asToolResult(async () => {
        const executionRequest: ExecutionRequest = {
          runtime: args.runtime,
          code: args.code,
          ...(args.stdin !== undefined && { stdin: args.stdin }),
          ...(args.timeoutMs !== undefined && { timeoutMs: args.timeoutMs }),
          ...(args.outputPaths && { outputPaths: args.outputPaths }),
          ...(args.files && { files: Object.fromEntries(Object.entries(args.files).map(([path, content]) => [path, bytes(content)])) }),
        };
        const onOutput = progressOfOutput(extra);
        const result = await host.execute(executionRequest, { session: args.session, signal: extra.signal, ...(onOutput && { onOutput }) });
        return runToolResult(result, args.session);
      }),
  );
}
