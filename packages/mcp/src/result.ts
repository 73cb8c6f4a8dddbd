import type { ExecutionResult } from "@isol8/kit";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import * as z from "zod";
import { outputContents, richOutputContents } from "./outputs.js";

/** The fields run_code's and run_cell's structuredContent share. */
const executionShape = {
  stdout: z.string(),
  stderr: z.string(),
  exitCode: z.number().int(),
  durationMs: z.number(),
  truncated: z.boolean(),
  timedOut: z.boolean(),
  oomKilled: z.boolean(),
  runtime: z.string(),
  executionId: z.string(),
};

/** The shared fields of a result (executionShape). */
function executionFields(result: ExecutionResult) {
  const { stdout, stderr, exitCode, durationMs, truncated, timedOut, oomKilled, runtime, executionId } = result;
  return { stdout, stderr, exitCode, durationMs, truncated, timedOut, oomKilled, runtime, executionId };
}

/** The summary's flags: what cut the run short. */
function flagsNote(result: ExecutionResult): string {
  const flags = [result.timedOut && "timed out", result.oomKilled && "killed: out of memory", result.truncated && "output truncated"].filter(Boolean);
  return flags.length ? ` (${flags.join(", ")})` : "";
}

/** run_code's structuredContent. */
export const runResultShape = {
  ...executionShape,
  session: z.string().optional(),
  /** Output files asked back (outputPaths) that were sent, as paths; their content is in the content list. */
  files: z.array(z.string()),
  /** outputPaths that exist but were past the size bounds. */
  omittedFiles: z.array(z.object({ path: z.string(), sizeBytes: z.number(), reason: z.string() })),
};

function summary(result: ExecutionResult): string {
  const lines = [`exit code ${result.exitCode} in ${result.durationMs} ms${flagsNote(result)}`];
  lines.push(result.stdout ? `stdout:\n${result.stdout}` : "stdout: (empty)");
  if (result.stderr) lines.push(`stderr:\n${result.stderr}`);
  for (const omitted of result.omittedFiles ?? []) lines.push(`file not returned: ${omitted.path} (${omitted.sizeBytes} bytes, ${omitted.reason})`);
  return lines.join("\n");
}

/** An execution's result as a tool result: a text summary, each output file, and the structured fields. */
export function runToolResult(result: ExecutionResult, session?: string): CallToolResult {
  return {
    content: [{ type: "text", text: summary(result) }, ...outputContents(result)],
    structuredContent: {
      ...executionFields(result),
      ...(session && { session }),
      files: Object.keys(result.files ?? {}),
      omittedFiles: (result.omittedFiles ?? []).map(({ path, sizeBytes, reason }) => ({ path, sizeBytes, reason })),
    },
  };
}

/** run_cell's structuredContent: the whole cell result. */
export const cellResultShape = {
  ...executionShape,
  session: z.string(),
  context: z.string(),
  /** Rich outputs in order: data is base64 for binary images, the text otherwise. */
  outputs: z.array(
    z.object({
      type: z.string(),
      data: z.string(),
      result: z.literal(true).optional(),
      truncated: z.literal(true).optional(),
      omitted: z.string().optional(),
      sizeBytes: z.number().optional(),
      limitBytes: z.number().optional(),
    }),
  ),
  /** The exception the cell raised (the context keeps its state). */
  error: z.object({ name: z.string(), value: z.string(), traceback: z.array(z.string()) }).optional(),
  /** The context's kernel started afresh (the cell ended its interpreter, or ignored the interrupt at its time limit): its state is gone. */
  contextRestarted: z.boolean(),
};

function cellSummary(result: ExecutionResult): string {
  const outcome = result.error ? `raised ${result.error.name}` : `ended with exit code ${result.exitCode}`;
  const lines = [`cell ${outcome} in ${result.durationMs} ms${flagsNote(result)}`];
  if (result.stdout) lines.push(`stdout:\n${result.stdout}`);
  if (result.stderr) lines.push(`stderr:\n${result.stderr}`);
  if (result.error) {
    const { name, value, traceback } = result.error;
    lines.push(`error: ${name}: ${value}`);
    if (traceback.length) lines.push(`traceback:\n${traceback.join("\n")}`);
  }
  if (result.contextRestarted) lines.push("the context restarted: its variables and imports are gone (the next cell runs in a fresh interpreter)");
  return lines.join("\n");
}

/**
 * A cell's result as a tool result: a text summary (stdout, stderr, the exception), each rich
 * output, and the whole result structured. An exception is the cell's outcome, not the call's
 * failure: isError stays false.
 */
export function cellToolResult(result: ExecutionResult, session: string, context: string): CallToolResult {
  const outputs = result.outputs ?? [];
  return {
    // Said outright: a cell that raised is still a call that worked.
    isError: false,
    content: [{ type: "text", text: cellSummary(result) }, ...richOutputContents(outputs)],
    structuredContent: {
      ...executionFields(result),
      session,
      context,
      outputs: outputs.map((o) => ({ ...o })),
      ...(result.error && { error: { name: result.error.name, value: result.error.value, traceback: [...result.error.traceback] } }),
      contextRestarted: result.contextRestarted ?? false,
    },
  };
}
