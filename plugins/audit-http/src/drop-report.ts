import type { Logger } from "@isol8/kit";

/** Drop counts are logged at most this often (the rest are summed into the next line). */
export const DROP_REPORT_INTERVAL_MS = 10_000;

/** What a drop line says besides the counts. */
export interface DropContext {
  origin: string;
  maxQueue: number;
  maxQueueBytes: number;
  lastError: string | undefined;
}

/**
 * Counts the records the sink dropped and logs them: at once when no line went out in the last
 * DROP_REPORT_INTERVAL_MS, otherwise summed into one line when the interval is over.
 */
export class DropReport {
  readonly #now: () => number;
  readonly #log: () => Logger;
  readonly #context: () => DropContext;
  #total = 0;
  #unreported = 0;
  #reason = "";
  #lastReport = -Infinity;
  #timer: NodeJS.Timeout | undefined;

  constructor(now: () => number, log: () => Logger, context: () => DropContext) {
    this.#now = now;
    this.#log = log;
    this.#context = context;
  }

  /** Records dropped so far, in all. */
  get total(): number {
    return this.#total;
  }

  add(count: number, reason: string): void {
    this.#total += count;
    this.#unreported += count;
    this.#reason = reason;
    const wait = this.#lastReport + DROP_REPORT_INTERVAL_MS - this.#now();
    if (wait <= 0) this.#report();
    else if (!this.#timer) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#report();
      }, wait);
      this.#timer.unref();
    }
  }

  /** Logs what is not reported yet now, and stops the pending timer (close). */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#report();
  }

  #report(): void {
    if (this.#unreported === 0) return;
    const { origin, maxQueue, maxQueueBytes, lastError } = this.#context();
    this.#log().warn(`audit sink http dropped ${this.#unreported} record(s): ${this.#reason}; ${this.#total} dropped in all`, {
      sink: "http",
      origin,
      dropped: this.#unreported,
      totalDropped: this.#total,
      maxQueue,
      maxQueueBytes,
      ...(lastError && { lastError }),
    });
    this.#unreported = 0;
    this.#lastReport = this.#now();
  }
}
