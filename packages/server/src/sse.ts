import type { StreamEvent } from "@isol8/kit";
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { ServerEnv } from "./env.js";
import { drive } from "./execution.js";
import type { Metrics } from "./metrics.js";
import type { RequestLog } from "./request-log.js";
import type { ExecuteBody } from "./schemas.js";
import type { Slots } from "./slots.js";
import { outcomeOf, recordRun, type Target, type Targets } from "./targets.js";

/** A comment line this often keeps proxies from closing a quiet stream. */
const SSE_HEARTBEAT_MS = 15_000;

export interface StreamDeps {
  slots: Slots;
  targets: Targets;
  metrics: Metrics;
  requests: RequestLog;
}

/**
 * POST /execute/stream: everything refusable (policy, queue, session caps) is refused as a plain
 * JSON error before the stream begins; then one SSE event per StreamEvent (`event: <type>`,
 * `data: <the event as JSON>`, increasing ids). A deadline or shutdown ends the stream with an
 * error event; a client gone cancels the run. The request's log line is written when the stream
 * ends (499 when the client left).
 */
export async function executeStream(c: Context<ServerEnv>, body: ExecuteBody, deps: StreamDeps): Promise<Response> {
  const { slots, targets, metrics, requests } = deps;
  const scope = slots.scope(c.req.raw.signal);
  let target: Target;
  try {
    target = await targets.prepare(c, body, scope);
  } catch (error) {
    scope.dispose();
    throw error;
  }
  c.set("deferLog", true);
  const started = c.get("startedAt");
  return streamSSE(c, async (stream) => {
    let id = 0;
    let outcome = "error";
    const heartbeat = setInterval(() => void stream.write(": keep-alive\n\n"), SSE_HEARTBEAT_MS);
    const send = async (event: StreamEvent) => {
      if (!stream.aborted) await stream.writeSSE({ event: event.type, data: JSON.stringify(event), id: String(id++) });
    };
    try {
      const { ended, event, settled } = await drive(target.engine, target.request, scope.signal, send);
      void settled.finally(target.release);
      outcome = outcomeOf(event, ended);
      if (ended === "aborted" && scope.reason !== "client") {
        const error = scope.error(slots.timeoutMs);
        await send({ type: "error", data: error.message, code: error.code });
      }
      if (event?.type === "exit") recordRun(target);
    } catch (error) {
      target.release();
      await send({ type: "error", data: "Internal server error", code: "ISOL8_ERR_INTERNAL" }).catch(() => undefined);
      process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: "error", msg: "stream failed", error: String(error) })}\n`);
    } finally {
      clearInterval(heartbeat);
      scope.dispose();
      metrics.executions.inc({ runtime: target.request.runtime, outcome });
      requests.finish(c, scope.reason === "client" ? 499 : 200, started, { stream: true, outcome });
    }
  });
}
