import { createLogger, type AuditRecord, type AuditSink, type Logger } from "@isol8/kit";
import { backoffDelay, sleep } from "./backoff.js";
import { DropReport } from "./drop-report.js";
import type { HttpAuditSinkDeps, HttpAuditSinkOptions, HttpAuditStats } from "./http-sink-types.js";
import { WebhookClient } from "./webhook-client.js";

export type { HttpAuditSinkDeps, HttpAuditSinkOptions, HttpAuditStats } from "./http-sink-types.js";
export { DROP_REPORT_INTERVAL_MS } from "./drop-report.js";

/** A queued record, serialized when written: a snapshot, and its size is known. */
interface Entry {
  json: string;
  bytes: number;
}

/**
 * An audit sink that POSTs records in batches to a webhook. `write` only enqueues and returns at
 * once: an execution never waits on, or fails because of, the webhook. A single sender delivers
 * batches in order; a failed attempt (network error, timeout, 408/429/5xx) is retried with
 * exponential backoff and jitter (honouring Retry-After); after maxRetries the batch goes back to
 * the head of the queue and the sender rests for flushIntervalMs. The queue is bounded: beyond
 * maxQueue records or maxQueueBytes the oldest records are dropped, counted in stats() and
 * reported in a log line (at most one per DROP_REPORT_INTERVAL_MS).
 * `close()` flushes, within closeTimeoutMs.
 *
 * One instance can serve several engines: close() leaves it usable, a later write starts again.
 */
export class HttpAuditSink implements AuditSink {
  readonly #options: HttpAuditSinkOptions;
  readonly #webhook: WebhookClient;
  readonly #drops: DropReport;
  readonly #random: () => number;
  readonly #sleep: (ms: number, signal: AbortSignal, ref: boolean) => Promise<void>;
  readonly #now: () => number;
  #log: Logger | undefined;

  #queue: Entry[] = [];
  #queuedBytes = 0;
  #inFlight: Entry[] = [];
  #pump: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Set when the flush timer fires: the sender sends partial batches until the queue is empty. */
  #due = false;
  /** flush()/close() callers waiting: the sender drains everything. */
  #flushing = 0;
  /** After a round that used every retry, the sender rests until then. */
  #pausedUntil = 0;
  /** Aborted when a flush deadline passes: stops the attempt and the wait in progress. */
  #abort = new AbortController();

  #sent = 0;
  #rejected = 0;
  #retries = 0;
  #failedRounds = 0;
  #lastError: string | undefined;

  constructor(options: HttpAuditSinkOptions, deps: HttpAuditSinkDeps = {}) {
    this.#options = options;
    this.#random = deps.random ?? Math.random;
    this.#sleep = deps.sleep ?? sleep;
    this.#now = deps.now ?? Date.now;
    this.#log = deps.log;
    this.#webhook = new WebhookClient(options.url, options.headers, options.timeoutMs, this.#now);
    this.#drops = new DropReport(
      this.#now,
      () => this.#logger,
      () => ({ origin: this.#webhook.origin, maxQueue: options.maxQueue, maxQueueBytes: options.maxQueueBytes, lastError: this.#lastError }),
    );
  }

  /** The logger for delivery problems; the engine's, once applied. */
  useLogger(log: Logger): void {
    this.#log ??= log;
  }

  get #logger(): Logger {
    return (this.#log ??= createLogger({ name: "isol8:audit-http" }));
  }

  stats(): HttpAuditStats {
    return {
      queued: this.#queue.length,
      queuedBytes: this.#queuedBytes,
      inFlight: this.#inFlight.length,
      sent: this.#sent,
      dropped: this.#drops.total,
      rejected: this.#rejected,
      retries: this.#retries,
      failedRounds: this.#failedRounds,
      ...(this.#lastError !== undefined && { lastError: this.#lastError }),
    };
  }

  /** Enqueues the record and returns at once; never throws. */
  async write(record: AuditRecord): Promise<void> {
    const json = JSON.stringify(record);
    const bytes = Buffer.byteLength(json);
    // Alone above the byte bound: it could never be queued without evicting everything else.
    if (bytes > this.#options.maxQueueBytes)
      return this.#drops.add(1, `a record of ${bytes} bytes is larger than maxQueueBytes (${this.#options.maxQueueBytes})`);
    this.#push([{ json, bytes }]);
    this.#trim("queue full");
    if (this.#queue.length >= this.#options.batchSize) this.#kick();
    else this.#arm(this.#options.flushIntervalMs);
  }

  /**
   * Sends everything queued now, retrying as usual, until the queue is empty or `timeoutMs`
   * passes. Resolves true when everything was delivered (or refused for good).
   */
  async flush(timeoutMs: number = this.#options.closeTimeoutMs): Promise<boolean> {
    this.#flushing++;
    const abort = this.#abort;
    const deadline = setTimeout(() => abort.abort(new Error(`flush deadline of ${timeoutMs} ms passed`)), timeoutMs);
    try {
      while (!abort.signal.aborted) {
        if (this.#pump) {
          await this.#pump;
          continue;
        }
        if (this.#queue.length === 0) break;
        const rest = this.#pausedUntil - this.#now();
        if (rest > 0) {
          await this.#sleep(rest, abort.signal, true);
          this.#pausedUntil = 0;
          continue;
        }
        this.#kick();
      }
      await this.#pump;
    } finally {
      clearTimeout(deadline);
      this.#flushing--;
      if (abort.signal.aborted && this.#abort === abort) this.#abort = new AbortController();
    }
    return this.#queue.length === 0 && this.#inFlight.length === 0;
  }

  /** Flushes within closeTimeoutMs; what is still undelivered then is dropped (counted and logged). */
  async close(): Promise<void> {
    await this.flush(this.#options.closeTimeoutMs);
    if (this.#queue.length > 0 && this.#flushing === 0) {
      const lost = this.#queue.length;
      this.#queue = [];
      this.#queuedBytes = 0;
      this.#drops.add(lost, `not delivered within closeTimeoutMs (${this.#options.closeTimeoutMs} ms) of close()`);
    }
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#drops.flush();
    if (this.#flushing === 0 && !this.#pump) await this.#webhook.close();
  }

  #push(entries: Entry[], atHead = false): void {
    if (atHead) this.#queue.unshift(...entries);
    else this.#queue.push(...entries);
    for (const entry of entries) this.#queuedBytes += entry.bytes;
  }

  #take(count: number): Entry[] {
    const taken = this.#queue.splice(0, count);
    for (const entry of taken) this.#queuedBytes -= entry.bytes;
    return taken;
  }

  /** Drops the oldest records beyond maxQueue or maxQueueBytes. */
  #trim(reason: string): void {
    let excess = Math.max(0, this.#queue.length - this.#options.maxQueue);
    let bytes = this.#queuedBytes;
    for (let i = 0; i < excess; i++) bytes -= this.#queue[i]!.bytes;
    while (bytes > this.#options.maxQueueBytes && excess < this.#queue.length) bytes -= this.#queue[excess++]!.bytes;
    if (excess === 0) return;
    this.#take(excess);
    this.#drops.add(excess, reason);
  }

  /** Arms the flush timer (unref'd: queued records do not keep the process alive; close() sends them). */
  #arm(delayMs: number): void {
    if (this.#timer) return;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#due = true;
        this.#kick();
      },
      Math.max(0, delayMs),
    );
    this.#timer.unref();
  }

  /** Starts the sender unless it runs or rests. */
  #kick(): void {
    if (this.#pump) return;
    const rest = this.#pausedUntil - this.#now();
    if (rest > 0) {
      this.#arm(rest);
      return;
    }
    this.#pump = this.#run().finally(() => {
      this.#pump = undefined;
      if (this.#queue.length > 0 && this.#flushing === 0) {
        const rest = this.#pausedUntil - this.#now();
        this.#arm(rest > 0 ? rest : this.#options.flushIntervalMs);
      }
    });
  }

  /** The sender: full batches always; partial ones when the flush timer fired or a flush waits. Never rejects. */
  async #run(): Promise<void> {
    try {
      for (;;) {
        const drainAll = this.#due || this.#flushing > 0;
        if (!(this.#queue.length >= this.#options.batchSize || (drainAll && this.#queue.length > 0))) break;
        const batch = this.#take(this.#options.batchSize);
        this.#inFlight = batch;
        const result = await this.#deliver(batch, this.#abort.signal);
        this.#inFlight = [];
        if (result === "sent" || result === "rejected") continue;
        // Back to the head of the queue: still the oldest, so the first to go if the queue overflows.
        this.#push(batch, true);
        this.#trim(`queue full while the webhook fails (${this.#lastError ?? "unknown error"})`);
        if (result === "give-up") this.#pausedUntil = this.#now() + this.#options.flushIntervalMs;
        break;
      }
    } catch (error) {
      // Not expected (deliver catches); never let the sender reject.
      this.#lastError = String(error);
      this.#logger.error("audit sink http: sender failed", { sink: "http", error: String(error) });
    } finally {
      this.#due = false;
      this.#inFlight = [];
    }
  }

  async #deliver(batch: Entry[], signal: AbortSignal): Promise<"sent" | "rejected" | "give-up" | "aborted"> {
    const body = `{"records":[${batch.map((e) => e.json).join(",")}]}`;
    for (let attempt = 0; ; attempt++) {
      if (signal.aborted) return "aborted";
      const outcome = await this.#webhook.post(body, signal);
      if (outcome.ok) {
        this.#sent += batch.length;
        return "sent";
      }
      this.#lastError = outcome.error;
      if (signal.aborted) return "aborted";
      if (!outcome.retryable) {
        this.#rejected += batch.length;
        this.#logger.warn(`audit sink http: the webhook refused a batch of ${batch.length} record(s) (${outcome.error}); not retried`, {
          sink: "http",
          origin: this.#webhook.origin,
        });
        return "rejected";
      }
      if (attempt >= this.#options.maxRetries) {
        this.#failedRounds++;
        this.#logger.warn(
          `audit sink http: a batch of ${batch.length} record(s) failed ${attempt + 1} time(s) (${outcome.error}); it stays queued for another round in ${this.#options.flushIntervalMs} ms`,
          { sink: "http", origin: this.#webhook.origin, queued: this.#queue.length + batch.length },
        );
        return "give-up";
      }
      this.#retries++;
      const delay =
        outcome.retryAfterMs !== undefined
          ? Math.min(outcome.retryAfterMs, this.#options.retryMaxMs)
          : backoffDelay(attempt + 1, this.#options.retryBaseMs, this.#options.retryMaxMs, this.#random);
      this.#logger.debug("audit sink http: retrying", { sink: "http", attempt: attempt + 1, delayMs: delay, error: outcome.error });
      await this.#sleep(delay, signal, this.#flushing > 0);
    }
  }
}
