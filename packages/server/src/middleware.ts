import { randomUUID } from "node:crypto";
import type { Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { KeyRing } from "./auth.js";
import type { ServerEnv } from "./env.js";
import { HttpError, toHttpError } from "./errors.js";
import type { Health } from "./health.js";
import type { Metrics } from "./metrics.js";
import type { RequestLog } from "./request-log.js";
import { NODE_HEADER } from "./session-routing.js";

/** Routes any client may call without an API key. */
const PUBLIC_PATHS = new Set(["/health", "/ready", "/openapi.json"]);
/** Probes that answer while shutting down (with their own 503), so a balancer sees why. */
const PROBE_PATHS = new Set(["/health", "/ready"]);
/** A client's X-Request-Id is kept when it looks like one; otherwise the server makes one. */
const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

export interface MiddlewareOptions {
  requests: RequestLog;
  health: Health;
  keys: KeyRing;
  metrics: Metrics;
  /** The most bytes a request body may have. */
  bodyLimit: number;
  /** This node's id: the X-Isol8-Node header of every response. */
  nodeId: string;
  /** More paths that need no API key (the web page's files, with server.ui). */
  isPublic?: (path: string) => boolean;
}

/**
 * What runs before every route, in order: the request id and the request log line; the drain
 * gate (503 while shutting down, /health aside) and authentication (the tenant of the key);
 * the body limit (413). Then how errors and unknown routes become JSON error bodies.
 */
export function installMiddleware(app: Hono<ServerEnv>, options: MiddlewareOptions): void {
  const { requests, health, keys, metrics } = options;

  app.use("*", async (c: Context<ServerEnv>, next) => {
    const started = performance.now();
    const given = c.req.header("x-request-id");
    const requestId = given && REQUEST_ID.test(given) ? given : randomUUID();
    c.set("requestId", requestId);
    c.set("startedAt", started);
    c.header("X-Request-Id", requestId);
    c.header(NODE_HEADER, options.nodeId);
    requests.opened();
    try {
      await next();
    } finally {
      // A stream logs itself when its last event is written.
      if (!c.get("deferLog")) requests.finish(c, c.res.status, started);
    }
  });

  app.use("*", async (c, next) => {
    if (health.draining && !PROBE_PATHS.has(c.req.path))
      throw new HttpError(503, "ISOL8_ERR_SHUTTING_DOWN", "The server is shutting down", { headers: { Connection: "close" } });
    if (!PUBLIC_PATHS.has(c.req.path) && !options.isPublic?.(c.req.path)) c.set("tenant", keys.authenticate(c.req.header("authorization")));
    await next();
  });

  app.use(
    "*",
    bodyLimit({
      maxSize: options.bodyLimit,
      onError: (c: Context<ServerEnv>) => {
        metrics.rejected.inc({ reason: "body_too_large" });
        const error = new HttpError(413, "ISOL8_ERR_BODY_TOO_LARGE", `The request body is over this server's limit of ${options.bodyLimit} bytes`);
        return c.json(error.body(c.get("requestId")), 413, { Connection: "close" });
      },
    }),
  );

  app.onError((err, c) => {
    const error = toHttpError(err);
    if (error.code === "ISOL8_ERR_INTERNAL" && !(err instanceof HttpError)) {
      process.stderr.write(
        `${JSON.stringify({ time: new Date().toISOString(), level: "error", msg: "unexpected error", requestId: c.get("requestId"), error: String((err as Error)?.stack ?? err) })}\n`,
      );
    }
    if (error.status === 429) metrics.rejected.inc({ reason: error.code === "ISOL8_ERR_SESSION_LIMIT" ? "session_limit" : "overloaded" });
    return c.json(error.body(c.get("requestId")), error.status as 400, error.headers);
  });

  app.notFound((c) => c.json(new HttpError(404, "ISOL8_ERR_NOT_FOUND", `No route ${c.req.method} ${c.req.path}`).body(c.get("requestId")), 404));
}
