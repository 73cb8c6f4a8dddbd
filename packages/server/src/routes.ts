import type { Context, Hono } from "hono";
import { describeRuntimes } from "@isol8/kit";
import { parseJson, readBody, validate } from "./bodies.js";
import { debugHeapEnabled, debugHeapRoute } from "./debug-heap.js";
import type { EphemeralEngines } from "./engines.js";
import type { ServerEnv } from "./env.js";
import { drive } from "./execution.js";
import type { Health } from "./health.js";
import { mountMcpRoute } from "./mcp-route.js";
import { openApiDocument } from "./openapi.js";
import { cleanupBodySchema, executeBodySchema, getFileQuerySchema, putFileBodySchema, type ExecuteBody } from "./schemas.js";
import { sessionRoute } from "./session-routing.js";
import type { Sessions } from "./sessions.js";
import type { ContextLedger } from "./context-limits.js";
import { mountContextRoutes } from "./contexts.js";
import { executeStream, type StreamDeps } from "./sse.js";
import { errorOfEvent, outcomeOf, recordRun } from "./targets.js";

export interface RouteDeps extends StreamDeps {
  version: string;
  health: Health;
  sessions: Sessions;
  engines: EphemeralEngines;
  /** How long an MCP connection lives unused (the sessions' idle time). */
  idleMs: number;
  /** The context counts of the policy (interpreter contexts under a session). */
  contexts: ContextLedger;
}

/**
 * The server's routes (the middleware before them has set the request id and the tenant):
 * health, OpenAPI, metrics, /mcp, executions (JSON and SSE), a session's files, the sessions.
 */
export function mountRoutes(app: Hono<ServerEnv>, deps: RouteDeps): void {
  const { version, health, metrics, sessions, slots } = deps;

  app.get("/health", async (c) => {
    const status = await health.status();
    return c.json({ status, version, ready: status === "ok" }, status === "ok" ? 200 : 503);
  });

  app.get("/openapi.json", (c) => c.json(openApiDocument(version)));

  app.get("/metrics", (c) => c.text(metrics.render(), 200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" }));

  if (debugHeapEnabled()) debugHeapRoute(app);

  mountMcpRoute(app, {
    version,
    runtimes: () => describeRuntimes(deps.engines.main.kit.runtimes.values()),
    sessions,
    metrics,
    idleMs: deps.idleMs,
    slots,
    targets: deps.targets,
    contexts: deps.contexts,
  });

  app.get("/runtimes", async (c) => c.json({ runtimes: await deps.engines.main.runtimes() }));

  app.post("/execute", async (c) => execute(c, await readBody(c, executeBodySchema), deps));

  app.post("/execute/stream", async (c) => executeStream(c, await readBody(c, executeBodySchema), deps));

  app.post("/file", async (c) => {
    const body = await readBody(c, putFileBodySchema);
    c.set("sessionId", body.sessionId);
    const session = sessions.require(c.get("tenant")!, body.sessionId, sessionRoute(c, body.sessionId).strict);
    await slots.run(c.req.raw.signal, () => sessions.use(session, () => session.engine.putFile(body.path, Buffer.from(body.content, "base64"))));
    return c.json({ ok: true as const });
  });

  app.get("/file", async (c) => {
    const query = validate(getFileQuerySchema, c.req.query(), "query");
    c.set("sessionId", query.sessionId);
    const session = sessions.require(c.get("tenant")!, query.sessionId, sessionRoute(c, query.sessionId).strict);
    const content = await slots.run(c.req.raw.signal, () => sessions.use(session, () => session.engine.getFile(query.path)));
    return c.json({ content: content.toString("base64") });
  });

  app.get("/sessions", (c) => c.json({ sessions: sessions.list(c.get("tenant")!) }));

  mountContextRoutes(app, { sessions, slots, targets: deps.targets, ledger: deps.contexts });

  app.delete("/session/:id", async (c) => {
    const id = c.req.param("id");
    c.set("sessionId", id);
    await sessions.delete(sessions.require(c.get("tenant")!, id, sessionRoute(c, id).strict));
    return c.json({ ok: true as const });
  });

  app.post("/cleanup", async (c) => {
    const text = await c.req.text();
    if (text.trim()) validate(cleanupBodySchema, parseJson(text), "body");
    const removed = await sessions.deleteAll(c.get("tenant")!);
    return c.json({ ok: true as const, sessions: removed });
  });
}

/** POST /execute: runs to the end and answers with the result (an engine error as its HTTP error). */
async function execute(c: Context<ServerEnv>, body: ExecuteBody, deps: StreamDeps): Promise<Response> {
  const { slots, targets, metrics } = deps;
  const scope = slots.scope(c.req.raw.signal);
  try {
    const target = await targets.prepare(c, body, scope);
    const { ended, event, settled } = await drive(target.engine, target.request, scope.signal, () => undefined).catch((error: unknown) => {
      target.release();
      throw error;
    });
    void settled.finally(target.release);
    metrics.executions.inc({ runtime: target.request.runtime, outcome: outcomeOf(event, ended) });
    if (ended === "aborted") throw scope.error(slots.timeoutMs);
    if (event!.type === "error") throw errorOfEvent(event!, target.request, target.engine);
    recordRun(target);
    return c.json(event!.result);
  } finally {
    scope.dispose();
  }
}
