import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";

/** An error a tool reports to the model (isError result), with an isol8 error code. */
export class ToolError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = "ToolError";
    this.code = code;
  }
}

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^ISOL8_ERR_[A-Z_]+$/.test(code) ? code : undefined;
}

/**
 * A failure as a tool result: isError with the typed error's code and message (isol8's errors
 * are already masked). Anything untyped is an internal error: its text goes to stderr, not to
 * the model, since it may name host paths.
 */
export function toolErrorResult(error: unknown): CallToolResult {
  const code = codeOf(error);
  if (!code) {
    process.stderr.write(
      `${JSON.stringify({ time: new Date().toISOString(), level: "error", name: "isol8-mcp", message: "tool failed", error: String((error as Error)?.stack ?? error) })}\n`,
    );
  }
  const text = code ? `${code}: ${(error as Error).message}` : "ISOL8_ERR_INTERNAL: internal error (see the server's log)";
  return { isError: true, content: [{ type: "text", text }] };
}

/** Runs a tool body, turning any thrown error into an isError result. */
export async function asToolResult(work: () => Promise<CallToolResult>): Promise<CallToolResult> {
  try {
    return await work();
  } catch (error) {
    return toolErrorResult(error);
  }
}
