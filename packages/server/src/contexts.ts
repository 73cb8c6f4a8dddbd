import { Isol8Error, type ContextInfo } from "@isol8/kit";
import type { Context, Hono } from "hono";
import { parseJson } from "./bodies.js";
import type { ContextLedger } from "./context-limits.js";
import { CONTEXT_ID_PATTERN, CREATE_CONTEXT_KEYS, createContextBodySchema, type CreateContextBody } from "./context-schemas.js";
import type { ServerEnv } from "./env.js";
import { HttpError } from "./errors.js";
import { SESSION_ID_PATTERN, type ExecuteBody } from "./schemas.js";
import { sessionRoute } from "./session-routing.js";
import type { Session, Sessions } from "./sessions.js";
import type { Slots } from "./slots.js";
import type { Targets } from "./targets.js";
import { formatIssues, zodIssues } from "./validation.js";

export interface ContextRouteDeps {
  sessions: Sessions;
  slots: Slots;
  targets: Targets;
  ledger: ContextLedger;
}

/**
 * Interpreter contexts under a session (the kit's contexts.ts): create and list them, restart and
 * delete one. A cell runs through POST /execute, /execute/stream or /execute/ws with the sessionId
 * and `request.context` (the same policy, queue and session as any execution). Every lookup is by
 * (tenant, session): a context of another session or tenant answers 404
 * ISOL8_ERR_CONTEXT_NOT_FOUND, as an id that never existed does.
 */
export function mountContextRoutes(app: Hono<ServerEnv>, deps: ContextRouteDeps): void {
  const { sessions, slots, targets, ledger } = deps;

  app.post("/session/:id/contexts", async (c) => {
    const sessionId = sessionIdOf(c);
    const body = await readCreateContextBody(c);
    c.set("runtime", body.runtime);
    const tenant = c.get("tenant")!;
    const info = await ledger.create(tenant, sessionId, async () => {
      const scope = slots.scope(c.req.raw.signal);
      try {
        // The session is chosen (made on first use, under the policy and its caps) as for an execution; no code runs.
        const sessionBody = { request: { runtime: body.runtime }, sessionId, ...(body.options && { options: body.options }) } as ExecuteBody;
        const target = await targets.prepare(c, sessionBody, scope);
        try {
          const created = await target.engine.createContext({
            runtime: body.runtime,
            ...(body.cwd !== undefined && { cwd: body.cwd }),
            ...(body.env !== undefined && { env: body.env }),
          });
          return { session: target.session!, created };
        } finally {
          target.release();
        }
      } finally {
        scope.dispose();
      }
    });
    return c.json(info, 201);
  });

  app.get("/session/:id/contexts", async (c) => {
    const sessionId = sessionIdOf(c);
    const session = sessions.require(c.get("tenant")!, sessionId, sessionRoute(c, sessionId).strict);
    const contexts = await sessions.use(session, () => session.engine.listContexts());
    ledger.listed(
      session,
      contexts.map((ctx) => ctx.id),
    );
    return c.json({ contexts });
  });

  app.post("/session/:id/contexts/:contextId/restart", async (c) => {
    const { session, contextId } = contextOf(c, sessions);
    const info: ContextInfo = await slots
      .run(c.req.raw.signal, () => sessions.use(session, () => session.engine.restartContext(contextId)))
      .catch((error: unknown) => {
        throw contextError(error, contextId, session.id);
      });
    return c.json(info);
  });

  app.delete("/session/:id/contexts/:contextId", async (c) => {
    const { session, contextId } = contextOf(c, sessions);
    await slots
      .run(c.req.raw.signal, () => sessions.use(session, () => session.engine.deleteContext(contextId)))
      .catch((error: unknown) => {
        throw contextError(error, contextId, session.id);
      });
    ledger.removed(session, contextId);
    return c.json({ ok: true as const });
  });
}

/** The 404 of a context this tenant's session does not hold (or a session it does not have): the same answer either way. */
export function contextNotFound(contextId: string, sessionId: string): HttpError {
  return new HttpError(
    404,
    "ISOL8_ERR_CONTEXT_NOT_FOUND",
    `No interpreter context ${JSON.stringify(contextId)} in session ${sessionId} (POST /session/${sessionId}/contexts makes one; GET lists them)`,
    { details: { contextId } },
  );
}

/** An engine's error about a context as its HTTP error (the context's 404 keeps the id, so the client revives ContextNotFoundError). */
function contextError(error: unknown, contextId: string, sessionId: string): unknown {
  if (Isol8Error.isInstance(error) && error.code === "ISOL8_ERR_CONTEXT_NOT_FOUND") return contextNotFound(contextId, sessionId);
  return error;
}

function sessionIdOf(c: Context<ServerEnv>): string {
  const id = c.req.param("id") ?? "";
  if (!SESSION_ID_PATTERN.test(id)) {
    throw new HttpError(
      400,
      "ISOL8_ERR_INVALID_REQUEST",
      "Invalid path: sessionId: expected a session id: letters, digits, '_', '.', ':', '-' (at most 128, starting with a letter or digit)",
      { field: "sessionId" },
    );
  }
  c.set("sessionId", id);
  return id;
}

/**
 * The tenant's session and the context id of the path. A session it does not have is a context
 * not found, or, for a client that routes by session (X-Isol8-Session), the node's session 404.
 */
function contextOf(c: Context<ServerEnv>, sessions: Sessions): { session: Session; contextId: string } {
  const sessionId = sessionIdOf(c);
  const contextId = c.req.param("contextId") ?? "";
  if (!CONTEXT_ID_PATTERN.test(contextId)) throw contextNotFound(contextId.slice(0, 128), sessionId);
  const session = sessions.get(c.get("tenant")!, sessionId);
  if (!session || session.closed) throw sessionRoute(c, sessionId).strict ? sessions.notFound(sessionId) : contextNotFound(contextId, sessionId);
  return { session, contextId };
}

/** The create body, checked: 415 for another media type, 400 naming each bad field. */
async function readCreateContextBody(c: Context<ServerEnv>): Promise<CreateContextBody> {
  const type = c.req.header("content-type");
  if (type && !/^application\/(?:[\w.+-]+\+)?json\b/i.test(type)) {
    throw new HttpError(415, "ISOL8_ERR_UNSUPPORTED_MEDIA_TYPE", `Expected Content-Type: application/json, got ${type.slice(0, 100)}`);
  }
  const parsed = createContextBodySchema.safeParse(parseJson(await c.req.text()));
  if (parsed.success) return parsed.data;
  const issues = zodIssues(parsed.error, undefined, (path) =>
    path.length === 1 && path[0] === "options"
      ? "not an option a client may set"
      : path.length === 0
        ? `expected ${CREATE_CONTEXT_KEYS.join(", ")}`
        : undefined,
  );
  const field = issues[0]!.path;
  const [code, prefix] = field.startsWith("options")
    ? (["ISOL8_ERR_INVALID_OPTIONS", "Invalid options"] as const)
    : (["ISOL8_ERR_INVALID_REQUEST", "Invalid body"] as const);
  throw new HttpError(400, code, `${prefix}: ${formatIssues(issues)}`, { field, issues });
}
