import { HttpError } from "./errors.js";

interface Waiter {
  grant: (release: () => void) => void;
  fail: (error: unknown) => void;
}

/**
 * Bounded concurrency with a bounded FIFO queue. `acquire` resolves with a release function when a
 * slot is free; with the queue full it fails at once with 429 and a Retry-After estimated from the
 * recent execution times; a waiter whose signal aborts leaves the queue.
 */
export class Limiter {
  readonly maxConcurrent: number;
  readonly maxQueue: number;
  #running = 0;
  readonly #queue: Waiter[] = [];
  #closed: HttpError | undefined;
  /** Moving average of how long a slot is held, for Retry-After. */
  #avgHoldMs = 1_000;

  constructor(maxConcurrent: number, maxQueue: number) {
    this.maxConcurrent = maxConcurrent;
    this.maxQueue = maxQueue;
  }

  get running(): number {
    return this.#running;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** Seconds a refused client should wait: the time for the queue ahead of it to drain, at least 1. */
  retryAfterSeconds(): number {
    const waves = (this.#queue.length + this.#running) / this.maxConcurrent;
    return Math.min(60, Math.max(1, Math.ceil((waves * this.#avgHoldMs) / 1000)));
  }

  acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.#closed) return Promise.reject(this.#closed);
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#running < this.maxConcurrent && this.#queue.length === 0) return Promise.resolve(this.#grant());
    if (this.#queue.length >= this.maxQueue) {
      const retryAfter = this.retryAfterSeconds();
      return Promise.reject(
        new HttpError(429, "ISOL8_ERR_OVERLOADED", `The server is busy (${this.#running} running, ${this.#queue.length} queued): retry after ${retryAfter} s`, {
          headers: { "Retry-After": String(retryAfter) },
        }),
      );
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: (release) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(release);
        },
        fail: (error) => {
          signal?.removeEventListener("abort", onAbort);
          reject(error);
        },
      };
      const onAbort = () => {
        const index = this.#queue.indexOf(waiter);
        if (index !== -1) this.#queue.splice(index, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#queue.push(waiter);
    });
  }

  /** Refuses every queued and future acquisition (shutdown); running holders keep their slots. */
  close(error: HttpError): void {
    this.#closed = error;
    for (const waiter of this.#queue.splice(0)) waiter.fail(error);
  }

  #grant(): () => void {
    this.#running++;
    const started = performance.now();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#avgHoldMs = this.#avgHoldMs * 0.8 + (performance.now() - started) * 0.2;
      this.#running--;
      const next = this.#queue.shift();
      if (next) next.grant(this.#grant());
    };
  }
}
