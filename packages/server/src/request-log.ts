import type { Context } from "hono";
import type { ServerEnv } from "./env.js";
import type { Metrics } from "./metrics.js";

export type RequestLogEntry = Record<string, unknown>;

/** Route labels of the request metrics: the server's routes, anything else as "other" (bounded cardinality). */
const KNOWN_ROUTES = new Set([
  "/health",
  "/execute",
  "/execute/stream",
  "/execute/ws",
  "/runtimes",
  "/file",
  "/sessions",
  "/session/:id",
  "/cleanup",
  "/metrics",
  "/openapi.json",
  "/mcp",
]);

/**
 * One log line and the request metrics for each response, when it ends (a stream's when its last
 * event is written), and the count of responses still open, which shutdown waits on before it
 * drops the connections.
 */
export class RequestLog {
  readonly #metrics: Metrics;
  readonly write: (entry: RequestLogEntry) => void;
  #open = 0;
  #idle: (() => void) | undefined;

  constructor(metrics: Metrics, write: (entry: RequestLogEntry) => void) {
    this.#metrics = metrics;
    this.write = write;
  }

  /** A response has begun: `finish` ends it. */
  opened(): void {
    this.#open++;
  }

  finish(c: Context<ServerEnv>, status: number, started: number, extra: Record<string, unknown> = {}): void {
    const durationMs = Math.round(performance.now() - started);
    const route = KNOWN_ROUTES.has(c.req.routePath) ? c.req.routePath : "other";
    this.#metrics.requests.inc({ method: c.req.method, route, status: String(status) });
    this.#metrics.duration.observe({ route }, durationMs / 1000);
    this.write({
      time: new Date().toISOString(),
      level: status >= 500 ? "error" : status >= 400 ? "warn" : "info",
      msg: "request",
      id: c.get("requestId"),
      method: c.req.method,
      path: c.req.path,
      tenant: c.get("tenant") ?? null,
      runtime: c.get("runtime") ?? null,
      ...(c.get("sessionId") && { sessionId: c.get("sessionId") }),
      status,
      durationMs,
      ...extra,
    });
    this.#open--;
    if (this.#open === 0) this.#idle?.();
  }

  /** Settles when no response is open, or after `maxMs`. */
  async idle(maxMs: number): Promise<void> {
    if (this.#open === 0) return;
    await Promise.race([new Promise<void>((resolve) => (this.#idle = resolve)), sleep(maxMs)]);
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
