import { HttpError } from "./errors.js";
import type { Limiter } from "./limiter.js";
import { RequestScope } from "./request-scope.js";

/**
 * The one place a request takes a concurrency slot. A slot is held from `take` until its release
 * (an execution: until the engine is done with it, which can be after the response; a file
 * operation: until the work settles), and everything holding one is in flight: shutdown waits
 * for it, up to the grace period.
 */
export class Slots {
  /** The deadline of each request's work (the config's requestTimeoutMs, or the policy's longest timeout plus 30 s). */
  readonly timeoutMs: number;
  readonly #limiter: Limiter;
  readonly #shutdown: AbortSignal;
  readonly #inflight = new Set<Promise<void>>();

  constructor(limiter: Limiter, shutdown: AbortSignal, timeoutMs: number) {
    this.#limiter = limiter;
    this.#shutdown = shutdown;
    this.timeoutMs = timeoutMs;
  }

  /** Work holding a slot now. */
  get inflight(): number {
    return this.#inflight.size;
  }

  /** The signals that end one request's work: its deadline, its client going away, the server shutting down. */
  scope(client: AbortSignal): RequestScope {
    return new RequestScope(client, this.#shutdown, this.timeoutMs);
  }

  /**
   * Waits for a slot under `scope` (429 at once when the queue is full; the scope's own error when
   * it ends first) and returns its release, which also ends the holder's time in flight.
   */
  async take(scope: RequestScope): Promise<() => void> {
    const slot = await this.#limiter.acquire(scope.signal).catch((error: unknown) => {
      throw error instanceof HttpError ? error : scope.error(this.timeoutMs);
    });
    let done!: () => void;
    this.#track(new Promise<void>((resolve) => (done = resolve)));
    return () => {
      slot();
      done();
    };
  }

  /** Runs `work` holding a slot, under the request's deadline; the slot goes back when the work settles. */
  async run<T>(client: AbortSignal, work: () => Promise<T>): Promise<T> {
    const scope = this.scope(client);
    try {
      const release = await this.take(scope);
      let running: Promise<T>;
      try {
        running = work();
      } catch (error) {
        release();
        throw error;
      }
      void running.then(release, release);
      return await running;
    } finally {
      scope.dispose();
    }
  }

  /** Settles when everything in flight now has released its slot. */
  settled(): Promise<void> {
    return Promise.allSettled([...this.#inflight]).then(() => undefined);
  }

  /** Refuses every queued and future slot with `error` (shutdown); holders keep theirs. */
  close(error: HttpError): void {
    this.#limiter.close(error);
  }

  #track(settled: Promise<void>): void {
    this.#inflight.add(settled);
    void settled.finally(() => this.#inflight.delete(settled));
  }
}
