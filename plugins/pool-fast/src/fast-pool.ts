import { PoolSkeleton, poolRetryDelayMs, type PoolContext, type PooledContainer } from "@isol8/kit";

export interface FastPoolOptions {
  /** How often idle clean containers are checked (`isAlive`) and dead ones replaced; 0 turns the sweep off. */
  healthCheckIntervalMs: number;
  /** A wipe that takes longer than this counts as failed: the container is destroyed and replaced. */
  wipeTimeoutMs: number;
}

export const FAST_POOL_DEFAULTS: FastPoolOptions = { healthCheckIntervalMs: 30_000, wipeTimeoutMs: 10_000 };

/** Delay before the background filler retries after failed creates: 250 ms, doubling, at most 30 s. */
export const retryDelayMs: (failures: number) => number = poolRetryDelayMs;

/** What the pool holds for one runtime, as numbers (for tests, logs and metrics). */
export interface RuntimePoolStats {
  /** Wiped or fresh containers, ready to hand out. */
  clean: number;
  /** Wipes in flight (their container ends up handed to a waiter, clean, or destroyed). */
  wiping: number;
  /** Creates in flight. */
  creating: number;
  /** Acquisitions waiting for a container. */
  waiters: number;
}

export interface FastPoolStats {
  runtimes: Record<string, RuntimePoolStats>;
  /** Containers handed out and not yet released. */
  inUse: number;
  /** Every container the pool holds a reference to (idle, being wiped or checked, in use). */
  held: number;
}

/**
 * The "fast" pool: per runtime, a clean pool (ready to run). A released container is wiped at
 * once, so its wipe (and the runtime's warm start, which the engine's wipe includes) runs in the
 * time after the execution rather than during the next one. The bookkeeping (waiters, creates,
 * back-off, health sweep, drain) is the kit's PoolSkeleton; this class is the reuse policy.
 *
 * Bounds (C = size.clean, D = size.dirty), per runtime:
 * - creates fill the clean pool up to C: clean + wiping + creating − waiters ≤ C whenever the
 *   pool starts one.
 * - released containers are kept (wiped) up to C + D clean: at rest the pool holds at most C + D
 *   containers per runtime; a release beyond that destroys the container (surplus).
 * - acquisitions beyond what is idle are not refused or queued behind each other: each is served
 *   by a wipe in flight when there is one, else by a create started for it (a cold start; a
 *   waiter a wipe covers is none, even when a create lands first). Containers in use are
 *   therefore bounded by the caller's concurrency, not by the pool.
 */
export class FastPool extends PoolSkeleton {
  readonly #options: FastPoolOptions;

  constructor(context: PoolContext, options: Partial<FastPoolOptions> = {}) {
    const resolved = { ...FAST_POOL_DEFAULTS, ...options };
    super(context, { healthCheckIntervalMs: resolved.healthCheckIntervalMs, readyPhrase: "an idle container" });
    this.#options = resolved;
  }

  async release(container: PooledContainer, { reusable }: { reusable: boolean }): Promise<void> {
    if (!reusable || this.draining || !this.holds(container)) {
      this.destroy(container);
      return;
    }
    const { waiters, wiping, ready } = this.countsOf(container.runtime);
    // Wiped at once when someone waits (a wipe beats any create in flight) or when the pool keeps
    // it; else it is surplus beyond the configured sizes.
    if (waiters > wiping || ready + wiping < this.keepReady) this.wipeForReuse(container, this.#options.wipeTimeoutMs);
    else this.destroy(container);
  }

  /** Clean containers kept at rest per runtime: C, plus up to D released ones. */
  protected get keepReady(): number {
    return this.context.size.clean + this.context.size.dirty;
  }

  stats(): FastPoolStats {
    const { runtimes, inUse, held } = this.counts();
    const byRuntime: Record<string, RuntimePoolStats> = {};
    for (const [runtime, c] of Object.entries(runtimes)) byRuntime[runtime] = { clean: c.ready, wiping: c.wiping, creating: c.creating, waiters: c.waiters };
    return { runtimes: byRuntime, inUse, held };
  }
}
