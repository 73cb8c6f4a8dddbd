import { ExecutionError } from "../errors.js";
import type { Acquired, ContainerPool, PoolContext, PooledContainer } from "../kit.js";
import { RuntimeState, poolRetryDelayMs, type PoolRuntimeCounts, type PoolSkeletonCounts, type Waiter } from "./runtime-state.js";

export { poolRetryDelayMs, type PoolRuntimeCounts, type PoolSkeletonCounts } from "./runtime-state.js";

export interface PoolSkeletonOptions {
  /** How often ready containers are checked (`isAlive`) and dead ones replaced; 0 turns the sweep off. */
  healthCheckIntervalMs: number;
  /** How log lines name a ready container ("an idle container", "a ready container"): "<it> is gone; replacing it". */
  readyPhrase: string;
}

/**
 * The bookkeeping every pool strategy shares, event-driven: per runtime, ready containers,
 * waiting acquisitions, creates and wipes in flight. Every change (acquire, release, a wipe or
 * create finishing) runs `#pump`, which starts the creates needed to serve the waiters no wipe
 * covers and to keep `size.clean` containers ready; failed creates back off (poolRetryDelayMs)
 * and reach the waiter they were for; a periodic sweep replaces ready containers that died;
 * drain rejects every waiter and destroys everything, including what is still in flight.
 *
 * A strategy keeps only its policy: what `release` does with a used container (destroy it, or
 * `wipeForReuse`), how many ready containers it keeps at rest (`keepReady`), when a hand-out
 * counts as a cold start (`coldStartOf`), and the shape of its stats.
 *
 * Bounds, per runtime: background creates start only while ready + wiping + creating − waiters
 * < size.clean; a delivered container beyond `keepReady` is destroyed (surplus); acquisitions
 * beyond what is ready each get a wipe in flight or a create of their own, so containers in use
 * are bounded by the caller's concurrency, not by the pool.
 */
export abstract class PoolSkeleton implements ContainerPool {
  protected readonly context: PoolContext;
  readonly #readyPhrase: string;
  readonly #states = new Map<string, RuntimeState>();
  /** Every container the pool holds a reference to, by id: drain destroys them all. */
  readonly #held = new Map<string, PooledContainer>();
  readonly #inUse = new Set<string>();
  /** Every background operation (create, wipe, destroy, health check): drain waits for all of them. */
  readonly #inflight = new Set<Promise<unknown>>();
  #handedOut = 0;
  #draining = false;
  #drained: Promise<void> | undefined;
  #healthTimer: NodeJS.Timeout | undefined;
  #sweeping = false;

  constructor(context: PoolContext, options: PoolSkeletonOptions) {
    this.context = context;
    this.#readyPhrase = options.readyPhrase;
    if (options.healthCheckIntervalMs > 0) {
      this.#healthTimer = setInterval(() => this.#sweep(), options.healthCheckIntervalMs);
      this.#healthTimer.unref();
    }
  }

  /** What becomes of a used container: destroyed, or `wipeForReuse`. */
  abstract release(container: PooledContainer, state: { reusable: boolean }): Promise<void>;

  /** Ready containers kept per runtime when nobody waits; a container delivered beyond this is destroyed. */
  protected abstract get keepReady(): number;

  /**
   * Whether a waiter that gets a container reports a cold start. `created`: the container was
   * just created (not wiped, not put back); `needsCreate`: no wipe was covering the waiter.
   */
  protected coldStartOf(created: boolean, needsCreate: boolean): boolean {
    return created && needsCreate;
  }

  async acquire(runtime: string, signal?: AbortSignal): Promise<Acquired> {
    this.#assertOpen();
    signal?.throwIfAborted();
    const state = this.#state(runtime);
    while (state.ready.length > 0) {
      const container = state.ready.shift()!;
      this.#pump(runtime); // refill behind the container just taken
      // It sat idle: it may have died (OOM of the idle process, removed out of band). inspect is ~1 ms.
      const alive = await this.context.isAlive(container).catch(() => false);
      if (this.#draining) {
        this.destroy(container);
        this.#assertOpen();
      }
      if (!alive) {
        this.context.log.warn(`${this.#readyPhrase} is gone; replacing it`, { runtime, containerId: container.id.slice(0, 12) });
        this.destroy(container);
        this.#pump(runtime);
        continue;
      }
      if (signal?.aborted) {
        this.#deliver(runtime, container, false); // not used: back to ready (or to a waiter)
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

  /** The skeleton's numbers; each strategy's `stats()` presents them in its own words. */
  protected counts(): PoolSkeletonCounts {
    const runtimes: Record<string, PoolRuntimeCounts> = {};
    for (const [runtime, s] of this.#states) runtimes[runtime] = this.#countsOf(s);
    return { runtimes, inUse: this.#inUse.size, held: this.#held.size, handedOut: this.#handedOut };
  }

  /** One runtime's numbers (the runtime is tracked from then on, as an acquisition would). */
  protected countsOf(runtime: string): PoolRuntimeCounts {
    return this.#countsOf(this.#state(runtime));
  }

  /** True once drain() was called: every container delivered from then on is destroyed. */
  protected get draining(): boolean {
    return this.#draining;
  }

  /** Whether the pool made this container and still holds it (not destroyed, not drained). */
  protected holds(container: PooledContainer): boolean {
    return this.#held.has(container.id);
  }

  /** Forgets the container and removes it in the background; a failed removal is a warning. */
  protected destroy(container: PooledContainer): void {
    this.#held.delete(container.id);
    this.#inUse.delete(container.id);
    this.#track(
      this.context
        .destroy(container)
        .catch((error: unknown) =>
          this.context.log.warn("destroying a pool container failed", { containerId: container.id.slice(0, 12), error: String(error) }),
        ),
    );
  }

  /**
   * A released container goes back through the engine's wipe: once wiped it is delivered (the
   * oldest waiter, else ready if there is room, else destroyed). A wipe that fails or takes longer
   * than `timeoutMs` counts as failed: the container is destroyed and replaced.
   */
  protected wipeForReuse(container: PooledContainer, timeoutMs: number): void {
    this.#inUse.delete(container.id);
    const runtime = container.runtime;
    const state = this.#state(runtime);
    state.wiping++;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the wipe took longer than ${timeoutMs} ms`)), timeoutMs);
    });
    this.#track(
      Promise.race([this.context.wipe(container), timeout])
        .finally(() => clearTimeout(timer))
        .then(
          () => {
            state.wiping--;
            this.#deliver(runtime, container, false);
          },
          (error: unknown) => {
            state.wiping--;
            // A wipe cut short by the engine stopping (drain removes its containers) is expected, not a fault.
            const fields = { runtime, containerId: container.id.slice(0, 12), error: String(error) };
            if (this.#draining) this.context.log.debug("wiping a pool container failed; destroying it", fields);
            else this.context.log.warn("wiping a pool container failed; destroying it", fields);
            this.destroy(container);
            this.#pump(runtime);
          },
        ),
    );
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
    for (const container of [...this.#held.values()]) this.destroy(container);
    // Creates and wipes still in flight destroy their container when they finish (the pool is
    // draining); each destroy is itself tracked, so loop until nothing is left.
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
    this.#inUse.clear();
  }

  #countsOf(state: RuntimeState): PoolRuntimeCounts {
    return { ready: state.ready.length, wiping: state.wiping, creating: state.creating, waiters: state.waiters.length };
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

  /** Ready containers the pool will have once the work in flight lands and the waiters are served. */
  #projectedReady(state: RuntimeState): number {
    return state.ready.length + state.wiping + state.creating - state.waiters.length;
  }

  /** Starts what the runtime needs now: creates for waiters no wipe covers, then background refill up to size.clean. */
  #pump(runtime: string): void {
    if (this.#draining) return;
    const state = this.#state(runtime);
    while (state.waiters.length > state.wiping + state.creating) this.#startCreate(runtime);
    // Waiters are served in order: those beyond the wipes in flight wait for a create.
    for (let i = state.wiping; i < state.waiters.length; i++) state.waiters[i]!.needsCreate = true;
    // Then keep the ready pool filled.
    while (this.#projectedReady(state) < this.context.size.clean) {
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
      this.context.create(runtime).then(
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
    state.retryAt = Date.now() + poolRetryDelayMs(state.failures);
    this.context.log.warn("creating a pool container failed", { runtime, error: String(error), failures: state.failures });
    if (this.#draining) return;
    // A waiter this create was covering gets the error rather than waiting on a retry loop
    // (a missing image fails every create: the caller must see why).
    if (state.waiters.length > state.wiping + state.creating) state.waiters.pop()!.reject(error);
    for (const watcher of state.fillWatchers.splice(0)) watcher.reject(error);
    this.#pump(runtime);
  }

  /** A container became ready (created, wiped, or not used after all): the oldest waiter gets it, else the ready pool if it has room, else it is surplus. */
  #deliver(runtime: string, container: PooledContainer, created: boolean): void {
    if (this.#draining) {
      this.destroy(container);
      return;
    }
    const state = this.#state(runtime);
    const waiter = state.waiters.shift();
    if (waiter) {
      waiter.resolve(this.#handOut(container, this.coldStartOf(created, waiter.needsCreate)));
    } else if (state.ready.length < this.keepReady) {
      state.ready.push(container);
      this.#checkFilled(state);
    } else {
      this.destroy(container);
    }
    this.#pump(runtime);
  }

  #checkFilled(state: RuntimeState): void {
    if (state.ready.length >= this.context.size.clean) for (const watcher of state.fillWatchers.splice(0)) watcher.resolve();
  }

  /** Checks every ready container; dead ones are destroyed and replaced. */
  #sweep(): void {
    if (this.#sweeping || this.#draining) return;
    this.#sweeping = true;
    const checks: Promise<void>[] = [];
    for (const [runtime, state] of this.#states) {
      for (const container of [...state.ready]) {
        checks.push(
          this.context
            .isAlive(container)
            .catch(() => false)
            .then((alive) => {
              const index = state.ready.indexOf(container);
              if (alive || index < 0 || this.#draining) return;
              state.ready.splice(index, 1);
              this.context.log.warn(`${this.#readyPhrase} is gone; replacing it`, { runtime, containerId: container.id.slice(0, 12) });
              this.destroy(container);
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
      .catch((error: unknown) => this.context.log.error("the pool's background work failed", { error: String(error) }))
      .finally(() => this.#inflight.delete(tracked));
    this.#inflight.add(tracked);
  }
}
