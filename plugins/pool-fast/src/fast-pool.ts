import { ExecutionError, type Acquired, type ContainerPool, type PoolContext, type PooledContainer } from "@isol8/kit";

export interface FastPoolOptions {
  /** How often idle clean containers are checked (`isAlive`) and dead ones replaced; 0 turns the sweep off. */
  healthCheckIntervalMs: number;
  /** A wipe that takes longer than this counts as failed: the container is destroyed and replaced. */
  wipeTimeoutMs: number;
}

export const FAST_POOL_DEFAULTS: FastPoolOptions = { healthCheckIntervalMs: 30_000, wipeTimeoutMs: 10_000 };

/** Delay before the background filler retries after failed creates: 250 ms, doubling, at most 30 s. */
export function retryDelayMs(failures: number): number {
  return failures <= 0 ? 0 : Math.min(30_000, 250 * 2 ** (failures - 1));
}

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

interface Idle {
  container: PooledContainer;
}

interface Waiter {
  /**
   * Set once the waiter is not covered by a wipe (no released container is being wiped for it):
   * it waits for a create. It reports a cold start when a created container serves it; a wipe that comes first
   * (a release meanwhile) or a create that lands while its wipe runs is no cold start.
   */
  needsCreate: boolean;
  resolve(acquired: Acquired): void;
  reject(error: unknown): void;
}

interface FillWatcher {
  resolve(): void;
  reject(error: unknown): void;
}

class RuntimeState {
  readonly clean: Idle[] = [];
  readonly waiters: Waiter[] = [];
  readonly fillWatchers: FillWatcher[] = [];
  wiping = 0;
  creating = 0;
  /** Consecutive failed creates, for the background filler's back-off. */
  failures = 0;
  retryAt = 0;
  retryTimer: NodeJS.Timeout | undefined;
}

/**
 * The "fast" pool: per runtime, a clean pool (ready to run). A released container is wiped at
 * once, so its wipe (and the runtime's warm start, which the engine's wipe includes) runs in the
 * time after the execution rather than during the next one. Event-driven: every change
 * (acquire, release, a wipe or create finishing) runs `#pump`, which starts the creates needed
 * to serve waiting acquisitions and to keep C containers clean; a periodic sweep replaces clean
 * containers that died while idle.
 *
 * Bounds (C = size.clean, D = size.dirty), per runtime:
 * - creates fill the clean pool up to C: clean + wiping + creating − waiters ≤ C whenever the
 *   pool starts one.
 * - released containers are kept (wiped) up to C + D clean: at rest the pool holds at most C + D
 *   containers per runtime; a release beyond that destroys the container (surplus).
 * - acquisitions beyond what is idle are not refused or queued behind each other: each is served
 *   by a wipe in flight when there is one, else by a create started for it. Containers in use
 *   are therefore bounded by the caller's concurrency, not by the pool.
 */
export class FastPool implements ContainerPool {
  readonly #context: PoolContext;
  readonly #options: FastPoolOptions;
  readonly #states = new Map<string, RuntimeState>();
  /** Every container the pool holds a reference to, by id: drain destroys them all. */
  readonly #held = new Map<string, PooledContainer>();
  readonly #inUse = new Set<string>();
  /** Every background operation (create, wipe, destroy, health check): drain waits for all of them. */
  readonly #inflight = new Set<Promise<unknown>>();
  #draining = false;
  #drained: Promise<void> | undefined;
  #healthTimer: NodeJS.Timeout | undefined;
  #sweeping = false;

  constructor(context: PoolContext, options: Partial<FastPoolOptions> = {}) {
    this.#context = context;
    this.#options = { ...FAST_POOL_DEFAULTS, ...options };
    if (this.#options.healthCheckIntervalMs > 0) {
      this.#healthTimer = setInterval(() => this.#sweep(), this.#options.healthCheckIntervalMs);
      this.#healthTimer.unref();
    }
  }

  async acquire(runtime: string, signal?: AbortSignal): Promise<Acquired> {
    this.#assertOpen();
    signal?.throwIfAborted();
    const state = this.#state(runtime);
    while (state.clean.length > 0) {
      const { container } = state.clean.shift()!;
      this.#pump(runtime); // refill behind the container just taken
      // It sat idle: it may have died (OOM of the idle process, removed out of band). inspect is ~1 ms.
      const alive = await this.#context.isAlive(container).catch(() => false);
      if (this.#draining) {
        this.#destroy(container);
        this.#assertOpen();
      }
      if (!alive) {
        this.#context.log.warn("an idle container is gone; replacing it", { runtime, containerId: container.id.slice(0, 12) });
        this.#destroy(container);
        this.#pump(runtime);
        continue;
      }
      if (signal?.aborted) {
        this.#deliver(runtime, container, false); // not used: back to clean (or to a waiter)
        signal.throwIfAborted();
      }
      this.#inUse.add(container.id);
      return { container, coldStart: false };
    }
    return new Promise<Acquired>((resolve, reject) => {
      const onAbort = () => {
        const index = state.waiters.indexOf(waiter);
        if (index >= 0) state.waiters.splice(index, 1);
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        needsCreate: false,
        resolve: (acquired) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(acquired);
        },
        reject: (error) => {
          signal?.removeEventListener("abort", onAbort);
          reject(error);
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      state.waiters.push(waiter);
      this.#pump(runtime);
    });
  }

  async release(container: PooledContainer, { reusable }: { reusable: boolean }): Promise<void> {
    this.#inUse.delete(container.id);
    if (!reusable || this.#draining || !this.#held.has(container.id)) {
      this.#destroy(container);
      return;
    }
    const runtime = container.runtime;
    const state = this.#state(runtime);
    // Wiped at once when someone waits (a wipe beats any create in flight) or when the pool keeps
    // it; else it is surplus beyond the configured sizes.
    if (state.waiters.length > state.wiping || state.clean.length + state.wiping < this.#keep) this.#startWipe(runtime, container);
    else this.#destroy(container);
  }

  /** Clean containers kept at rest per runtime: C, plus up to D released ones. */
  get #keep(): number {
    return this.#context.size.clean + this.#context.size.dirty;
  }

  async prewarm(runtimes: readonly string[]): Promise<void> {
    this.#assertOpen();
    await Promise.all(
      [...new Set(runtimes)].map(
        (runtime) =>
          new Promise<void>((resolve, reject) => {
            const state = this.#state(runtime);
            state.retryAt = 0; // an explicit prewarm tries at once, whatever the back-off says
            state.fillWatchers.push({ resolve, reject });
            this.#pump(runtime);
            this.#checkFilled(state);
          }),
      ),
    );
  }

  drain(): Promise<void> {
    this.#drained ??= this.#drain();
    return this.#drained;
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    clearInterval(this.#healthTimer);
    const stopped = new ExecutionError("The container pool was drained: the engine is stopping.");
    for (const state of this.#states.values()) {
      clearTimeout(state.retryTimer);
      for (const waiter of state.waiters.splice(0)) waiter.reject(stopped);
      for (const watcher of state.fillWatchers.splice(0)) watcher.reject(stopped);
      state.clean.length = 0;
    }
    for (const container of [...this.#held.values()]) this.#destroy(container);
    // Creates and wipes still in flight destroy their container when they finish (the pool is
    // draining); each destroy is itself tracked, so loop until nothing is left.
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
    this.#inUse.clear();
  }

  stats(): FastPoolStats {
    const runtimes: Record<string, RuntimePoolStats> = {};
    for (const [runtime, s] of this.#states) {
      runtimes[runtime] = { clean: s.clean.length, wiping: s.wiping, creating: s.creating, waiters: s.waiters.length };
    }
    return { runtimes, inUse: this.#inUse.size, held: this.#held.size };
  }

  #assertOpen(): void {
    if (this.#draining) throw new ExecutionError("The container pool was drained: the engine is stopped.");
  }

  #state(runtime: string): RuntimeState {
    let state = this.#states.get(runtime);
    if (!state) this.#states.set(runtime, (state = new RuntimeState()));
    return state;
  }

  /** Clean containers the pool will have once the work in flight lands and the waiters are served. */
  #projectedClean(state: RuntimeState): number {
    return state.clean.length + state.wiping + state.creating - state.waiters.length;
  }

  /** Starts what the runtime needs now: creates for waiters no wipe covers, then background refill up to C. */
  #pump(runtime: string): void {
    if (this.#draining) return;
    const state = this.#state(runtime);
    while (state.waiters.length > state.wiping + state.creating) this.#startCreate(runtime);
    // Waiters are served in order: those beyond the wipes in flight wait for a create.
    for (let i = state.wiping; i < state.waiters.length; i++) state.waiters[i]!.needsCreate = true;
    // Then keep the clean pool filled.
    while (this.#projectedClean(state) < this.#context.size.clean) {
      const wait = state.retryAt - Date.now();
      if (wait > 0) {
        state.retryTimer ??= setTimeout(() => {
          state.retryTimer = undefined;
          this.#pump(runtime);
        }, wait).unref();
        break;
      }
      this.#startCreate(runtime);
    }
  }

  #startCreate(runtime: string): void {
    const state = this.#state(runtime);
    state.creating++;
    this.#track(
      this.#context.create(runtime).then(
        (container) => {
          state.creating--;
          state.failures = 0;
          this.#held.set(container.id, container);
          this.#deliver(runtime, container, true);
        },
        (error: unknown) => {
          state.creating--;
          this.#createFailed(runtime, error);
        },
      ),
    );
  }

  #createFailed(runtime: string, error: unknown): void {
    const state = this.#state(runtime);
    state.failures++;
    state.retryAt = Date.now() + retryDelayMs(state.failures);
    this.#context.log.warn("creating a pool container failed", { runtime, error: String(error), failures: state.failures });
    if (this.#draining) return;
    // A waiter this create was covering gets the error rather than waiting on a retry loop
    // (a missing image fails every create: the caller must see why).
    if (state.waiters.length > state.wiping + state.creating) state.waiters.pop()!.reject(error);
    for (const watcher of state.fillWatchers.splice(0)) watcher.reject(error);
    this.#pump(runtime);
  }

  #startWipe(runtime: string, container: PooledContainer): void {
    const state = this.#state(runtime);
    state.wiping++;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the wipe took longer than ${this.#options.wipeTimeoutMs} ms`)), this.#options.wipeTimeoutMs);
    });
    this.#track(
      Promise.race([this.#context.wipe(container), timeout])
        .finally(() => clearTimeout(timer))
        .then(
          () => {
            state.wiping--;
            this.#deliver(runtime, container, false);
          },
          (error: unknown) => {
            state.wiping--;
            this.#context.log.warn("wiping a pool container failed; destroying it", { runtime, containerId: container.id.slice(0, 12), error: String(error) });
            this.#destroy(container);
            this.#pump(runtime);
          },
        ),
    );
  }

  /**
   * A container became ready (created, or wiped): the oldest waiter gets it, else the clean pool
   * if it has room (C + D: a created one is only started while fewer than C are projected), else
   * it is surplus.
   */
  #deliver(runtime: string, container: PooledContainer, created: boolean): void {
    if (this.#draining) {
      this.#destroy(container);
      return;
    }
    const state = this.#state(runtime);
    const waiter = state.waiters.shift();
    if (waiter) {
      this.#inUse.add(container.id);
      waiter.resolve({ container, coldStart: created && waiter.needsCreate });
    } else if (state.clean.length < this.#keep) {
      state.clean.push({ container });
      this.#checkFilled(state);
    } else {
      this.#destroy(container);
    }
    this.#pump(runtime);
  }

  #checkFilled(state: RuntimeState): void {
    if (state.clean.length >= this.#context.size.clean) for (const watcher of state.fillWatchers.splice(0)) watcher.resolve();
  }

  #destroy(container: PooledContainer): void {
    this.#held.delete(container.id);
    this.#inUse.delete(container.id);
    this.#track(
      this.#context
        .destroy(container)
        .catch((error: unknown) =>
          this.#context.log.warn("destroying a pool container failed", { containerId: container.id.slice(0, 12), error: String(error) }),
        ),
    );
  }

  /** Checks every idle clean container; dead ones are destroyed and replaced. */
  #sweep(): void {
    if (this.#sweeping || this.#draining) return;
    this.#sweeping = true;
    const checks: Promise<void>[] = [];
    for (const [runtime, state] of this.#states) {
      for (const idle of [...state.clean]) {
        checks.push(
          this.#context
            .isAlive(idle.container)
            .catch(() => false)
            .then((alive) => {
              const index = state.clean.indexOf(idle);
              if (alive || index < 0 || this.#draining) return;
              state.clean.splice(index, 1);
              this.#context.log.warn("an idle container is gone; replacing it", { runtime, containerId: idle.container.id.slice(0, 12) });
              this.#destroy(idle.container);
              this.#pump(runtime);
            }),
        );
      }
    }
    this.#track(Promise.allSettled(checks).finally(() => (this.#sweeping = false)));
  }

  /** Keeps a background promise for drain and turns any error into a log line (never an unhandled rejection). */
  #track(promise: Promise<unknown>): void {
    const tracked = promise
      .catch((error: unknown) => this.#context.log.error("the pool's background work failed", { error: String(error) }))
      .finally(() => this.#inflight.delete(tracked));
    this.#inflight.add(tracked);
  }
}
