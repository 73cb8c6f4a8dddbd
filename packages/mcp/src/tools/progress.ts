import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js";
import type { ServerNotification, ServerRequest } from "@modelcontextprotocol/sdk/types.js";

/**
 * An execution's output as MCP progress notifications, as it comes: undefined when the client
 * asked for no progress (no progressToken). Each chunk is one notification (its first 1000
 * characters); a notification that cannot be sent is dropped, never the execution.
 */
export function progressOfOutput(
  extra: RequestHandlerExtra<ServerRequest, ServerNotification>,
): ((stream: "stdout" | "stderr", data: string) => void) | undefined {
  const progressToken = extra._meta?.progressToken;
  if (progressToken === undefined) return undefined;
  let progress = 0;
  return (stream, data) => {
    progress++;
    void extra
      .sendNotification({ method: "notifications/progress", params: { progressToken, progress, message: `${stream}: ${data.slice(0, 1000)}` } })
      .catch(() => undefined);
  };
}
