import { HttpError, PolicyError } from "./errors.js";
import type { Session, Sessions } from "./sessions.js";

export interface ContextBounds {
  /** Contexts one session may hold (0: the server offers none). */
  perSession: number;
  /** Contexts one tenant may hold over all its sessions. */
  perTenant: number;
}

/**
 * The context counts of the policy. The server keeps the ids each session's contexts have (a
 * context lives until it is deleted or its session ends: a restart keeps its id), and creations
 * of one tenant run one at a time, so two at once cannot both take the last place. Before it
 * refuses, it asks the sessions' engines which contexts they still hold (a sandbox replaced after
 * it died holds none of the old ones).
 */
export class ContextLedger {
  readonly #bounds: ContextBounds;
  readonly #sessions: Sessions;
  readonly #ids = new WeakMap<Session, Set<string>>();
  /** The tail of each tenant's queue of creations. */
  readonly #queues = new Map<string, Promise<unknown>>();

  constructor(sessions: Sessions, bounds: ContextBounds) {
    this.#sessions = sessions;
    this.#bounds = bounds;
  }

  /** Runs `work` (which makes one context) alone among the tenant's creations, once the bounds leave room for it. */
  async create<T extends { id: string }>(tenant: string, sessionId: string, work: () => Promise<{ session: Session; created: T }>): Promise<T> {
    if (this.#bounds.perSession === 0) {
      throw new PolicyError("maxContextsPerSession", "this server offers no interpreter contexts (its policy allows 0 per session)");
    }
    const previous = this.#queues.get(tenant) ?? Promise.resolve();
    const mine = previous.then(async () => {
      await this.#check(tenant, sessionId);
      const { session, created } = await work();
      this.#of(session).add(created.id);
      return created;
    });
    const tail = mine.catch(() => undefined);
    this.#queues.set(tenant, tail);
    try {
      return await mine;
    } finally {
      if (this.#queues.get(tenant) === tail) this.#queues.delete(tenant);
    }
  }

  /** The session's contexts as its engine listed them: the ledger follows the engine. */
  listed(session: Session, ids: readonly string[]): void {
    this.#ids.set(session, new Set(ids));
  }

  removed(session: Session, id: string): void {
    this.#ids.get(session)?.delete(id);
  }

  #of(session: Session): Set<string> {
    let ids = this.#ids.get(session);
    if (!ids) this.#ids.set(session, (ids = new Set()));
    return ids;
  }

  #tenantSessions(tenant: string): Session[] {
    return this.#sessions
      .list(tenant)
      .map((info) => this.#sessions.get(tenant, info.id))
      .filter((s): s is Session => s !== undefined);
  }

  #counts(tenant: string, sessionId: string): { session: number; tenant: number } {
    const session = this.#sessions.get(tenant, sessionId);
    return {
      session: session ? (this.#ids.get(session)?.size ?? 0) : 0,
      tenant: this.#tenantSessions(tenant).reduce((sum, s) => sum + (this.#ids.get(s)?.size ?? 0), 0),
    };
  }

  async #check(tenant: string, sessionId: string): Promise<void> {
    const { perSession, perTenant } = this.#bounds;
    let counts = this.#counts(tenant, sessionId);
    if (counts.session < perSession && counts.tenant < perTenant) return;
    await Promise.all(
      this.#tenantSessions(tenant).map(async (s) => {
        if (s.closed) return;
        const listed = await s.engine.listContexts().catch(() => undefined);
        if (listed)
          this.listed(
            s,
            listed.map((c) => c.id),
          );
      }),
    );
    counts = this.#counts(tenant, sessionId);
    if (counts.session >= perSession) {
      throw new HttpError(
        429,
        "ISOL8_ERR_SESSION_LIMIT",
        `Session ${sessionId} has ${counts.session} interpreter contexts, the most this server allows (maxContextsPerSession ${perSession}): delete one (DELETE /session/${sessionId}/contexts/{contextId})`,
        { details: { limit: "maxContextsPerSession", max: perSession } },
      );
    }
    if (counts.tenant >= perTenant) {
      throw new HttpError(
        429,
        "ISOL8_ERR_SESSION_LIMIT",
        `Tenant ${tenant} has ${counts.tenant} interpreter contexts over its sessions, the most this server allows (maxContextsPerTenant ${perTenant}): delete one, or a session`,
        { details: { limit: "maxContextsPerTenant", max: perTenant } },
      );
    }
  }
}
