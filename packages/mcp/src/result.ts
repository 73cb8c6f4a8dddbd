import type { ExecutionResult } from "@isol8/kit";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import * as z from "zod";
import { outputContents } from "./outputs.js";

/** run_code's structuredContent. */
export const runResultShape = {
  stdout: z.string(),
  stderr: z.string(),
  exitCode: z.number().int(),
  durationMs: z.number(),
  truncated: z.boolean(),
  timedOut: z.boolean(),
  oomKilled: z.boolean(),
  runtime: z.string(),
  executionId: z.string(),
  session: z.string().optional(),
  /** Output files asked back (outputPaths) that were sent, as paths; their content is in the content list. */
  files: z.array(z.string()),
  /** outputPaths that exist but were past the size bounds. */
  omittedFiles: z.array(z.object({ path: z.string(), sizeBytes: z.number(), reason: z.string() })),
};

function summary(result: ExecutionResult): string {
  const flags = [result.timedOut && "timed out", result.oomKilled && "killed: out of memory", result.truncated && "output truncated"].filter(Boolean);
  const lines = [`exit code ${result.exitCode} in ${result.durationMs} ms${flags.length ? ` (${flags.join(", ")})` : ""}`];
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
      stdout: result.stdout,
      stderr: result.stderr,
      exitCode: result.exitCode,
      durationMs: result.durationMs,
      truncated: result.truncated,
      timedOut: result.timedOut,
      oomKilled: result.oomKilled,
      runtime: result.runtime,
      executionId: result.executionId,
      ...(session && { session }),
      files: Object.keys(result.files ?? {}),
      omittedFiles: (result.omittedFiles ?? []).map(({ path, sizeBytes, reason }) => ({ path, sizeBytes, reason })),
    },
  };
}
