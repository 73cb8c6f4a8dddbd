import { executionRequestSchema } from "@isol8/kit";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import * as z from "zod";
import { asToolResult, ToolError } from "../errors.js";
import type { McpHost } from "../host.js";
import { cellResultShape, cellToolResult } from "../result.js";
import { progressOfOutput } from "./progress.js";

const contextShape = { id: z.string(), runtime: z.string(), cwd: z.string(), createdAt: z.string(), cells: z.number().int(), restarts: z.number().int() };

const sessionInput = z.string().min(1).describe("The session id (create_session): the context lives in its sandbox");
const contextInput = z.string().min(1, "expected a context id from create_context").describe("The context id (create_context)");

const RUN_CELL_DESCRIPTION = `Run code as the next cell of an interpreter context (create_context): variables, imports and open files of earlier cells are still there, as in a notebook.
Returns a text summary (stdout, stderr, and the exception the cell raised with its traceback), then the cell's rich outputs in order (display() and the last expression's value): PNG and JPEG images as image content, text, Markdown, HTML and JSON as text under a line naming the mime type.
An exception in the cell is a normal result (isError false; structured field error { name, value, traceback }); the context keeps its state. contextRestarted: true says the interpreter started afresh (the cell exited it, or ignored the interrupt at its time limit) and its state is gone.`;

/** The interpreter context tools: a kernel in a session's sandbox that keeps state from one run_cell to the next. */
export function registerContextTools(server: McpServer, host: McpHost): void {
  server.registerTool(
    "create_context",
    {
      title: "Create an interpreter context",
      description: `Start an interpreter context in a session's sandbox: an interpreter that keeps its state (variables, imports) between run_cell calls, like a notebook's kernel.
The runtime must be the session's and have contexts (list_runtimes: contexts). Several contexts may share a session (its files, not their variables). Returns { id, runtime, cwd, createdAt, cells, restarts }.`,
      inputSchema: {
        session: sessionInput,
        runtime: z
          .string()
          .min(1, 'expected a runtime name such as "python"')
          .describe("The context's runtime: the session's own (see list_runtimes: contexts)"),
        cwd: z.string().min(1).optional().describe("The interpreter's working directory, inside /sandbox or /tmp (default /sandbox)"),
      },
      outputSchema: contextShape,
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    (args) =>
      asToolResult(async () => {
        const info = await host.createContext(args.session, { runtime: args.runtime, ...(args.cwd !== undefined && { cwd: args.cwd }) });
        return {
          content: [{ type: "text", text: `context ${info.id} (${info.runtime}, cwd ${info.cwd}) created in session ${args.session}` }],
          structuredContent: { ...info },
        };
      }),
  );

  server.registerTool(
    "run_cell",
    {
      title: "Run a cell in an interpreter context",
      description: RUN_CELL_DESCRIPTION,
      inputSchema: {
        session: sessionInput,
        context: contextInput,
        code: z.string().min(1, "expected non-empty code").describe("The cell's source code"),
        timeoutMs: executionRequestSchema.shape.timeoutMs.describe(
          "Time limit of this cell in milliseconds (the server's default and ceiling apply); past it the cell is interrupted",
        ),
      },
      outputSchema: cellResultShape,
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    (args, extra) =>
      asToolResult(async () => {
        const context = (await host.listContexts(args.session)).find((c) => c.id === args.context);
        if (!context) {
          throw new ToolError(
            "ISOL8_ERR_CONTEXT_NOT_FOUND",
            `No interpreter context ${JSON.stringify(args.context)} in session ${args.session} (create_context makes one; list_contexts lists them)`,
          );
        }
        const onOutput = progressOfOutput(extra);
        const result = await host.execute(
          { runtime: context.runtime, code: args.code, context: args.context, ...(args.timeoutMs !== undefined && { timeoutMs: args.timeoutMs }) },
          { session: args.session, signal: extra.signal, ...(onOutput && { onOutput }) },
        );
        return cellToolResult(result, args.session, args.context);
      }),
  );

  server.registerTool(
    "list_contexts",
    {
      title: "List interpreter contexts",
      description: "List the interpreter contexts of a session: id, runtime, cwd, createdAt, cells (run so far) and restarts.",
      inputSchema: { session: sessionInput },
      outputSchema: { contexts: z.array(z.object(contextShape)) },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args) =>
      asToolResult(async () => {
        const contexts = await host.listContexts(args.session);
        const text = contexts.length
          ? contexts.map((c) => `${c.id} ${c.runtime} cwd ${c.cwd}, ${c.cells} cells, ${c.restarts} restarts, created ${c.createdAt}`).join("\n")
          : `no interpreter contexts in session ${args.session}`;
        return { content: [{ type: "text", text }], structuredContent: { contexts } };
      }),
  );

  server.registerTool(
    "restart_context",
    {
      title: "Restart an interpreter context",
      description:
        "Start a context's interpreter afresh under the same id: every variable and import of it is gone (the sandbox's files stay). Returns the context.",
      inputSchema: { session: sessionInput, context: contextInput },
      outputSchema: contextShape,
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
    },
    (args) =>
      asToolResult(async () => {
        const info = await host.restartContext(args.session, args.context);
        return { content: [{ type: "text", text: `context ${info.id} restarted (${info.restarts} restarts)` }], structuredContent: { ...info } };
      }),
  );

  server.registerTool(
    "delete_context",
    {
      title: "Delete an interpreter context",
      description: "End a context's interpreter and every process it started; its id is gone (the session and its files stay).",
      inputSchema: { session: sessionInput, context: contextInput },
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
    },
    (args) =>
      asToolResult(async () => {
        await host.deleteContext(args.session, args.context);
        return { content: [{ type: "text", text: `context ${args.context} deleted` }] };
      }),
  );
}
