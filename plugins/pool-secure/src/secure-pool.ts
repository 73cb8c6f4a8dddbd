import { ExecutionError, type Acquired, type ContainerPool, type PoolContext, type PooledContainer } from "@isol8/kit";

export interface SecurePoolOptions {
  /** How often ready containers are checked (`isAlive`) and dead ones replaced; 0 turns the sweep off. */
  healthCheckIntervalMs: number;
}

export const SECURE_POOL_DEFAULTS: SecurePoolOptions = { healthCheckIntervalMs: 30_000 };

/** Delay before the background filler retries after failed creates: 250 ms, doubling, at most 30 s. */
export function retryDelayMs(failures: number): number {
  return failures <= 0 ? 0 : Math.min(30_000, 250 * 2 ** (failures - 1));
}

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

interface Waiter {
  resolve(acquired: Acquired): void;
  reject(error: unknown): void;
}

interface FillWatcher {
  resolve(): void;
  reject(error: unknown): void;
}

class RuntimeState {
  readonly ready: PooledContainer[] = [];
  readonly waiters: Waiter[] = [];
  readonly fillWatchers: FillWatcher[] = [];
  creating = 0;
  failures = 0;
  retryAt = 0;
  retryTimer: NodeJS.Timeout | undefined;
}

/**
 * The "secure" pool: every acquisition gets a container in which no execution has ever run.
 * Fresh containers are created in the background, up to C = size.clean per runtime; an
 * acquisition takes a ready one, or waits for a create (a cold start). A released container
 * is always destroyed: nothing is ever handed out twice.
 *
 * Bounds, per runtime: ready containers ≤ C; background creates never project past C
 * (ready + creating − waiters ≤ C when one starts); acquisitions beyond what is ready each get
 * a create of their own, so containers in use are bounded by the caller's concurrency.
 * size.dirty is not used: this pool has no dirty containers.
 */
export class SecurePool implements ContainerPool {
  readonly #context: PoolContext;
  readonly #options: SecurePoolOptions;
  readonly #states = new Map<string, RuntimeState>();
  readonly #held = new Map<string, PooledContainer>();
  readonly #inUse = new Set<string>();
  readonly #inflight = new Set<Promise<unknown>>();
  #handedOut = 0;
  #draining = false;
  #drained: Promise<void> | undefined;
  #healthTimer: NodeJS.Timeout | undefined;
  #sweeping = false;

  constructor(context: PoolContext, options: Partial<SecurePoolOptions> = {}) {
    this.#context = context;
    this.#options = { ...SECURE_POOL_DEFAULTS, ...options };
    if (this.#options.healthCheckIntervalMs > 0) {
      this.#healthTimer = setInterval(() => this.#sweep(), this.#options.healthCheckIntervalMs);
      this.#healthTimer.unref();
    }
  }

  async acquire(runtime: string, signal?: AbortSignal): Promise<Acquired> {
    this.#assertOpen();
    signal?.throwIfAborted();
    const state = this.#state(runtime);
    while (state.ready.length > 0) {
      const container = state.ready.shift()!;
      this.#pump(runtime);
      const alive = await this.#context.isAlive(container).catch(() => false);
      if (this.#draining) {
        this.#destroy(container);
        this.#assertOpen();
      }
      if (!alive) {
        this.#context.log.warn("a ready container is gone; replacing it", { runtime, containerId: container.id.slice(0, 12) });
        this.#destroy(container);
        this.#pump(runtime);
        continue;
      }
      if (signal?.aborted) {
        this.#deliver(runtime, container); // never used: still fresh
        signal.throwIfAborted();
      }
      return this.#handOut(container, false);
    }
    return new Promise<Acquired>((resolve, reject) => {
      const onAbort = () => {
        const index = state.waiters.indexOf(waiter);
        if (index >= 0) state.waiters.splice(index, 1);
        reject(signal!.reason);
      };
      const waiter: Waiter = {
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

  /** Every used container is destroyed, whatever `reusable` says. */
  async release(container: PooledContainer, _state?: { reusable: boolean }): Promise<void> {
    this.#destroy(container);
  }

  async prewarm(runtimes: readonly string[]): Promise<void> {
    this.#assertOpen();
    await Promise.all(
      [...new Set(runtimes)].map(
        (runtime) =>
          new Promise<void>((resolve, reject) => {
            const state = this.#state(runtime);
            state.retryAt = 0;
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
      state.ready.length = 0;
    }
    for (const container of [...this.#held.values()]) this.#destroy(container);
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
    this.#inUse.clear();
  }

  stats(): SecurePoolStats {
    const runtimes: Record<string, SecureRuntimeStats> = {};
    for (const [runtime, s] of this.#states) runtimes[runtime] = { ready: s.ready.length, creating: s.creating, waiters: s.waiters.length };
    return { runtimes, inUse: this.#inUse.size, held: this.#held.size, handedOut: this.#handedOut };
  }

  #assertOpen(): void {
    if (this.#draining) throw new ExecutionError("The container pool was drained: the engine is stopped.");
  }

  #state(runtime: string): RuntimeState {
    let state = this.#states.get(runtime);
    if (!state) this.#states.set(runtime, (state = new RuntimeState()));
    return state;
  }

  #handOut(container: PooledContainer, coldStart: boolean): Acquired {
    this.#inUse.add(container.id);
    this.#handedOut++;
    return { container, coldStart };
  }

  #pump(runtime: string): void {
    if (this.#draining) return;
    const state = this.#state(runtime);
    while (state.waiters.length > state.creating) this.#startCreate(runtime);
    while (state.ready.length + state.creating - state.waiters.length < this.#context.size.clean) {
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
          this.#deliver(runtime, container);
        },
        (error: unknown) => {
          state.creating--;
          state.failures++;
          state.retryAt = Date.now() + retryDelayMs(state.failures);
          this.#context.log.warn("creating a pool container failed", { runtime, error: String(error), failures: state.failures });
          if (this.#draining) return;
          if (state.waiters.length > state.creating) state.waiters.pop()!.reject(error);
          for (const watcher of state.fillWatchers.splice(0)) watcher.reject(error);
          this.#pump(runtime);
        },
      ),
    );
  }

  /** A fresh container: the oldest waiter gets it (it waited for a create: a cold start), else the ready pool if it has room. */
  #deliver(runtime: string, container: PooledContainer): void {
    if (this.#draining) {
      this.#destroy(container);
      return;
    }
    const state = this.#state(runtime);
    const waiter = state.waiters.shift();
    if (waiter) {
      waiter.resolve(this.#handOut(container, true));
    } else if (state.ready.length < this.#context.size.clean) {
      state.ready.push(container);
      this.#checkFilled(state);
    } else {
      this.#destroy(container);
    }
    this.#pump(runtime);
  }

  #checkFilled(state: RuntimeState): void {
    if (state.ready.length >= this.#context.size.clean) for (const watcher of state.fillWatchers.splice(0)) watcher.resolve();
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

  #sweep(): void {
    if (this.#sweeping || this.#draining) return;
    this.#sweeping = true;
    const checks: Promise<void>[] = [];
    for (const [runtime, state] of this.#states) {
      for (const container of [...state.ready]) {
        checks.push(
          this.#context
            .isAlive(container)
            .catch(() => false)
            .then((alive) => {
              const index = state.ready.indexOf(container);
              if (alive || index < 0 || this.#draining) return;
              state.ready.splice(index, 1);
              this.#context.log.warn("a ready container is gone; replacing it", { runtime, containerId: container.id.slice(0, 12) });
              this.#destroy(container);
              this.#pump(runtime);
            }),
        );
      }
    }
    this.#track(Promise.allSettled(checks).finally(() => (this.#sweeping = false)));
  }

  #track(promise: Promise<unknown>): void {
    const tracked = promise
      .catch((error: unknown) => this.#context.log.error("the pool's background work failed", { error: String(error) }))
      .finally(() => this.#inflight.delete(tracked));
    this.#inflight.add(tracked);
  }
}
