import { PoolSkeleton, poolRetryDelayMs, type PoolContext, type PooledContainer } from "@isol8/kit";

export interface SecurePoolOptions {
  /** How often ready containers are checked (`isAlive`) and dead ones replaced; 0 turns the sweep off. */
  healthCheckIntervalMs: number;
}

export const SECURE_POOL_DEFAULTS: SecurePoolOptions = { healthCheckIntervalMs: 30_000 };

/** Delay before the background filler retries after failed creates: 250 ms, doubling, at most 30 s. */
export const retryDelayMs: (failures: number) => number = poolRetryDelayMs;

export interface SecureRuntimeStats {
  /** Fresh containers no execution has used, ready to hand out. */
  ready: number;
  /** Creates in flight. */
  creating: number;
  /** Acquisitions waiting for a fresh container. */
  waiters: number;
}

export interface SecurePoolStats {
  runtimes: Record<string, SecureRuntimeStats>;
  /** Containers handed out and not yet released. */
  inUse: number;
  /** Every container the pool holds a reference to (ready, being checked, in use). */
  held: number;
  /** Containers handed out so far (each exactly once). */
  handedOut: number;
}

/**
 * The "secure" pool: every acquisition gets a container in which no execution has ever run.
 * Fresh containers are created in the background, up to C = size.clean per runtime; an
 * acquisition takes a ready one, or waits for a create (a cold start). A released container
 * is always destroyed: nothing is ever handed out twice. The bookkeeping (waiters, creates,
 * back-off, health sweep, drain) is the kit's PoolSkeleton; this class is the never-reuse policy.
 *
 * Bounds, per runtime: ready containers ≤ C; background creates never project past C
 * (ready + creating − waiters ≤ C when one starts); acquisitions beyond what is ready each get
 * a create of their own, so containers in use are bounded by the caller's concurrency.
 * size.dirty is not used: this pool has no dirty containers.
 */
export class SecurePool extends PoolSkeleton {
  constructor(context: PoolContext, options: Partial<SecurePoolOptions> = {}) {
    const resolved = { ...SECURE_POOL_DEFAULTS, ...options };
    super(context, { healthCheckIntervalMs: resolved.healthCheckIntervalMs, readyPhrase: "a ready container" });
  }

  /** Every used container is destroyed, whatever `reusable` says. */
  async release(container: PooledContainer, _state?: { reusable: boolean }): Promise<void> {
    this.destroy(container);
  }

  /** Only fresh containers are kept, up to C. */
  protected get keepReady(): number {
    return this.context.size.clean;
  }

  /** A waiter only ever waits for a create (nothing is wiped): whatever container reaches it, it waited. */
  protected override coldStartOf(): boolean {
    return true;
  }

  stats(): SecurePoolStats {
    const { runtimes, inUse, held, handedOut } = this.counts();
    const byRuntime: Record<string, SecureRuntimeStats> = {};
    for (const [runtime, c] of Object.entries(runtimes)) byRuntime[runtime] = { ready: c.ready, creating: c.creating, waiters: c.waiters };
    return { runtimes: byRuntime, inUse, held, handedOut };
  }
}
