import type { DockerIsol8 } from "@isol8/core";
import type { EngineOptions, SessionInfo } from "@isol8/kit";
import { HttpError } from "./errors.js";

export interface Session {
  readonly id: string;
  readonly tenant: string;
  /** The options profile the session was created with (its engine's overrides). */
  readonly profile: string;
  readonly engine: DockerIsol8;
  readonly createdAt: Date;
  lastUsedAt: Date;
  /** Requests using the session right now: an active session is never reaped. */
  active: number;
  executions: number;
  runtime?: string;
  closed: boolean;
}

/**
 * Persistent sessions, each with its own persistent engine (one container). They belong to the
 * tenant that made them: every lookup is by (tenant, id), so another tenant can neither see, use
 * nor delete them (the same id used by two tenants names two different sessions).
 */
export class Sessions {
  readonly #byTenant = new Map<string, Map<string, Session>>();
  readonly #limits: { perTenant: number; total: number; idleMs: number };
  /** This server node's id, named by ISOL8_ERR_SESSION_NOT_FOUND. */
  readonly #node: string;
  #count = 0;

  constructor(limits: { perTenant: number; total: number; idleMs: number }, node = "") {
    this.#limits = limits;
    this.#node = node;
  }

  get count(): number {
    return this.#count;
  }

  get(tenant: string, id: string): Session | undefined {
    return this.#byTenant.get(tenant)?.get(id);
  }

  /**
   * The tenant's session `id`, or 404: a session of another tenant is indistinguishable from none.
   * `strict` (the request carried X-Isol8-Session, see session-routing.ts): the 404 is
   * ISOL8_ERR_SESSION_NOT_FOUND naming this node.
   */
  require(tenant: string, id: string, strict = false): Session {
    const session = this.get(tenant, id);
    if (!session) throw strict ? this.notFound(id) : new HttpError(404, "ISOL8_ERR_NOT_FOUND", `Session not found: ${id}`);
    return session;
  }

  /** ISOL8_ERR_SESSION_NOT_FOUND: this node does not hold the session (the kit's SessionNotFoundError on the client). */
  notFound(id: string): HttpError {
    return new HttpError(
      404,
      "ISOL8_ERR_SESSION_NOT_FOUND",
      `Session ${JSON.stringify(id)} is not on node ${JSON.stringify(this.#node)}: it was never created there, expired, or lived on a node that stopped; nothing was run (send X-Isol8-Session-Create: 1 to start an empty one)`,
      { details: { sessionId: id, node: this.#node } },
    );
  }

  /**
   * The session, created (with `create`) on first use; refuses a new one over the caps. With
   * `mayCreate` false a session this node does not hold is ISOL8_ERR_SESSION_NOT_FOUND, never a new one.
   */
  getOrCreate(
    tenant: string,
    id: string,
    profile: string,
    overrides: EngineOptions,
    create: (overrides: EngineOptions) => DockerIsol8,
    mayCreate = true,
  ): Session {
    const existing = this.get(tenant, id);
    if (!existing && !mayCreate) throw this.notFound(id);
    if (existing) {
      if (existing.profile !== profile) {
        throw new HttpError(400, "ISOL8_ERR_INVALID_OPTIONS", `options: session ${id} was created with other options; send the same options or none`, {
          field: "options",
        });
      }
      return existing;
    }
    const mine = this.#byTenant.get(tenant)?.size ?? 0;
    if (mine >= this.#limits.perTenant) {
      throw new HttpError(
        429,
        "ISOL8_ERR_SESSION_LIMIT",
        `Tenant ${tenant} has ${mine} sessions, the most allowed: delete one (DELETE /session/:id) or let idle ones expire`,
      );
    }
    if (this.#count >= this.#limits.total) {
      throw new HttpError(429, "ISOL8_ERR_SESSION_LIMIT", `The server holds ${this.#count} sessions, the most allowed: retry later`, {
        headers: { "Retry-After": "30" },
      });
    }
    const engine = create({ ...overrides, mode: "persistent" });
    const now = new Date();
    const session: Session = { id, tenant, profile, engine, createdAt: now, lastUsedAt: now, active: 0, executions: 0, closed: false };
    let mineMap = this.#byTenant.get(tenant);
    if (!mineMap) this.#byTenant.set(tenant, (mineMap = new Map<string, Session>()));
    mineMap.set(id, session);
    this.#count++;
    return session;
  }

  /** Marks the session in use (never reaped) until the returned function is called. */
  hold(session: Session): () => void {
    session.active++;
    session.lastUsedAt = new Date();
    return () => {
      session.active--;
      session.lastUsedAt = new Date();
    };
  }

  /** Marks the session in use for the duration of `work`. */
  async use<T>(session: Session, work: () => Promise<T>): Promise<T> {
    if (session.closed) throw new HttpError(404, "ISOL8_ERR_NOT_FOUND", `Session not found: ${session.id}`);
    const release = this.hold(session);
    try {
      return await work();
    } finally {
      release();
    }
  }

  list(tenant: string): SessionInfo[] {
    return [...(this.#byTenant.get(tenant)?.values() ?? [])].map((s) => ({
      id: s.id,
      createdAt: s.createdAt.toISOString(),
      lastUsedAt: s.lastUsedAt.toISOString(),
      active: s.active > 0,
      executions: s.executions,
      ...(s.runtime && { runtime: s.runtime }),
    }));
  }

  /** Removes the session and stops its engine (which cancels what runs in it and removes its container). */
  async delete(session: Session): Promise<void> {
    const mine = this.#byTenant.get(session.tenant);
    if (mine?.get(session.id) !== session) return;
    mine.delete(session.id);
    if (mine.size === 0) this.#byTenant.delete(session.tenant);
    this.#count--;
    session.closed = true;
    await session.engine.stop();
  }

  async deleteAll(tenant?: string): Promise<number> {
    const victims = tenant === undefined ? [...this.#byTenant.values()].flatMap((m) => [...m.values()]) : [...(this.#byTenant.get(tenant)?.values() ?? [])];
    await Promise.allSettled(victims.map((s) => this.delete(s)));
    return victims.length;
  }

  /** Stops sessions unused for longer than idleMs (never one in use); returns what it reaped. */
  async reap(now = Date.now()): Promise<Session[]> {
    const idle = [...this.#byTenant.values()]
      .flatMap((m) => [...m.values()])
      .filter((s) => s.active === 0 && now - s.lastUsedAt.getTime() > this.#limits.idleMs);
    await Promise.allSettled(idle.map((s) => this.delete(s)));
    return idle;
  }
}
