import type { Context, Hono, MiddlewareHandler } from "hono";
import type { ServerEnv } from "./env.js";
import { HttpError } from "./errors.js";
import type { Limiter } from "./limiter.js";
import type { Metrics } from "./metrics.js";
import type { Readiness } from "./ready.js";
import type { Sessions } from "./sessions.js";

/** One refused or failed request, as the operator view lists it. */
export interface Failure {
  time: string;
  tenant: string | null;
  method: string;
  path: string;
  status: number;
  code: string;
  message: string;
}

const KEPT_FAILURES = 50;

/**
 * The last requests answered with an error (4xx/5xx), with their error codes: a middleware placed
 * before authentication, so a wrong key is among them. It reads the JSON error body the server
 * wrote (a clone of it); a stream's own error events are not HTTP failures and are not kept.
 */
export class FailureLog {
  readonly #entries: Failure[] = [];

  get entries(): readonly Failure[] {
    return this.#entries;
  }

  readonly middleware: MiddlewareHandler<ServerEnv> = async (c, next) => {
    await next();
    if (c.res.status < 400) return;
    const body = await readErrorBody(c);
    this.#entries.unshift({
      time: new Date().toISOString(),
      tenant: c.get("tenant") ?? null,
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      code: body.code ?? `HTTP_${c.res.status}`,
      message: (body.error ?? "").slice(0, 300),
    });
    this.#entries.length = Math.min(this.#entries.length, KEPT_FAILURES);
  };
}

async function readErrorBody(c: Context<ServerEnv>): Promise<{ code?: string; error?: string }> {
  if (!c.res.headers.get("content-type")?.includes("application/json")) return {};
  try {
    return (await c.res.clone().json()) as { code?: string; error?: string };
  } catch {
    return {}; // not an error body: listed by its status alone
  }
}

export interface AdminDeps {
  /** Tenants whose keys may read the overview (server.adminTenants). */
  adminTenants: readonly string[];
  /** Every tenant a key is configured for (sessions are kept per tenant). */
  tenants: readonly string[];
  sessions: Sessions;
  limiter: Limiter;
  metrics: Metrics;
  failures: FailureLog;
  node: string;
  version: string;
  /** POST /admin/drain takes the node out of a balancer's rotation: GET /ready answers 503 from then on. */
  readiness: Pick<Readiness, "leave" | "leaving">;
}

/**
 * GET /admin/overview, for admin tenants only (403 for any other key): this node's live sessions
 * of every tenant, its slots and queue, its execution count (a client derives executions per
 * second from two reads) and the last failures; POST /admin/drain makes GET /ready fail (the node
 * leaves a balancer's rotation while it still serves). Mounted only when the config names an admin tenant.
 */
export function mountAdmin(app: Hono<ServerEnv>, deps: AdminDeps): void {
  const admins = new Set(deps.adminTenants);
  const started = Date.now();
  const requireAdmin = (c: Context<ServerEnv>) => {
    const tenant = c.get("tenant")!;
    if (!admins.has(tenant))
      throw new HttpError(403, "ISOL8_ERR_FORBIDDEN", `${c.req.method} ${c.req.path} is for admin tenants (server.adminTenants); tenant ${tenant} is not one`);
  };
  app.get("/admin/overview", (c) => {
    requireAdmin(c);
    const now = Date.now();
    const sessions = deps.tenants.flatMap((owner) =>
      deps.sessions.list(owner).map((s) => ({ tenant: owner, ...s, ageSeconds: (now - Date.parse(s.createdAt)) / 1000 })),
    );
    let executionsTotal = 0;
    for (const { value } of deps.metrics.executions.values.values()) executionsTotal += value;
    return c.json({
      node: deps.node,
      version: deps.version,
      uptimeSeconds: (now - started) / 1000,
      sessions,
      queue: { running: deps.limiter.running, queued: deps.limiter.queued, maxConcurrent: deps.limiter.maxConcurrent, maxQueue: deps.limiter.maxQueue },
      executionsTotal,
      failures: deps.failures.entries,
      draining: deps.readiness.leaving,
    });
  });
  // Requests are still served (sessions finish their work); only /ready fails, until the process restarts.
  app.post("/admin/drain", (c) => {
    requireAdmin(c);
    deps.readiness.leave();
    return c.json({ ok: true as const, draining: true as const });
  });
}
