import { Pool } from "undici";
import { createLogger, type AuditRecord, type AuditSink, type Logger } from "@isol8/kit";
import { backoffDelay, isRetryableStatus, parseRetryAfter } from "./backoff.js";

export interface HttpAuditSinkOptions {
  /** Where batches are POSTed, as `{ "records": [...] }` (application/json). */
  url: string;
  /** Extra request headers (e.g. authorization). */
  headers: Record<string, string>;
  /** A batch is sent as soon as this many records wait, and never holds more. */
  batchSize: number;
  /** A record that does not fill a batch waits at most this long before it is sent. */
  flushIntervalMs: number;
  /** Records waiting beyond this many: the oldest are dropped (and counted). */
  maxQueue: number;
  /** Bytes (serialized JSON) waiting beyond this: the oldest records are dropped (and counted). */
  maxQueueBytes: number;
  /** Retries of one batch (after its first attempt) before it goes back to the queue for a later round. */
  maxRetries: number;
  /** Deadline of one attempt: connect, send, response. */
  timeoutMs: number;
  /** First retry waits about this long; each next one twice as long. */
  retryBaseMs: number;
  /** Ceiling of one retry wait (also caps a server's Retry-After). */
  retryMaxMs: number;
  /** How long close() keeps trying to deliver what is queued before it gives up (and counts the rest as dropped). */
  closeTimeoutMs: number;
}

export interface HttpAuditSinkDeps {
  /** For tests: jitter source (0 ≤ x < 1). */
  random?: () => number;
  /** For tests: the wait between retries; must resolve (not reject) when the signal aborts. */
  sleep?: (ms: number, signal: AbortSignal, ref: boolean) => Promise<void>;
  /** For tests: the clock. */
  now?: () => number;
  log?: Logger;
}

export interface HttpAuditStats {
  /** Records waiting to be sent. */
  queued: number;
  /** Their size, serialized. */
  queuedBytes: number;
  /** Records of the batch being sent now. */
  inFlight: number;
  /** Records the server accepted (2xx). */
  sent: number;
  /** Records dropped: the oldest beyond maxQueue/maxQueueBytes, and those still undelivered when close() gave up. */
  dropped: number;
  /** Records the server refused for good (a 4xx other than 408/429): not retried. */
  rejected: number;
  /** Retries made (attempts after a batch's first). */
  retries: number;
  /** Rounds in which a batch used all its retries (it went back to the queue). */
  failedRounds: number;
  /** The last delivery error, if any. */
  lastError?: string;
}

/** A queued record, serialized when written: a snapshot, and its size is known. */
interface Entry {
  json: string;
  bytes: number;
}

type Outcome = { ok: true } | { ok: false; retryable: boolean; error: string; retryAfterMs?: number };

/** Drop counts are logged at most this often (the rest are summed into the next line). */
export const DROP_REPORT_INTERVAL_MS = 10_000;

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
  readonly #origin: string;
  readonly #path: string;
  readonly #headers: Record<string, string>;
  readonly #random: () => number;
  readonly #sleep: (ms: number, signal: AbortSignal, ref: boolean) => Promise<void>;
  readonly #now: () => number;
  #log: Logger | undefined;

  #queue: Entry[] = [];
  #queuedBytes = 0;
  #inFlight: Entry[] = [];
  #client: Pool | undefined;
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
  #dropped = 0;
  #rejected = 0;
  #retries = 0;
  #failedRounds = 0;
  #lastError: string | undefined;
  #unreportedDrops = 0;
  #dropReason = "";
  #lastDropReport = -Infinity;
  #dropTimer: NodeJS.Timeout | undefined;

  constructor(options: HttpAuditSinkOptions, deps: HttpAuditSinkDeps = {}) {
    this.#options = options;
    const url = new URL(options.url);
    this.#origin = url.origin;
    this.#path = `${url.pathname}${url.search}`;
    const headers: Record<string, string> = { "content-type": "application/json" };
    // Credentials in the URL become basic auth: the connection pool only knows the origin.
    if (url.username || url.password) {
      headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString("base64")}`;
    }
    for (const [name, value] of Object.entries(options.headers)) headers[name.toLowerCase()] = value;
    this.#headers = headers;
    this.#random = deps.random ?? Math.random;
    this.#sleep = deps.sleep ?? sleep;
    this.#now = deps.now ?? Date.now;
    this.#log = deps.log;
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
      dropped: this.#dropped,
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
    if (bytes > this.#options.maxQueueBytes) return this.#drop(1, `a record of ${bytes} bytes is larger than maxQueueBytes (${this.#options.maxQueueBytes})`);
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
      this.#drop(lost, `not delivered within closeTimeoutMs (${this.#options.closeTimeoutMs} ms) of close()`);
    }
    clearTimeout(this.#timer);
    this.#timer = undefined;
    clearTimeout(this.#dropTimer);
    this.#dropTimer = undefined;
    this.#reportDrops();
    if (this.#flushing === 0 && !this.#pump) {
      const client = this.#client;
      this.#client = undefined;
      await client?.destroy().catch(() => undefined);
    }
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
    this.#drop(excess, reason);
  }

  #drop(count: number, reason: string): void {
    this.#dropped += count;
    this.#unreportedDrops += count;
    this.#dropReason = reason;
    const wait = this.#lastDropReport + DROP_REPORT_INTERVAL_MS - this.#now();
    if (wait <= 0) this.#reportDrops();
    else if (!this.#dropTimer) {
      this.#dropTimer = setTimeout(() => {
        this.#dropTimer = undefined;
        this.#reportDrops();
      }, wait);
      this.#dropTimer.unref();
    }
  }

  #reportDrops(): void {
    if (this.#unreportedDrops === 0) return;
    this.#logger.warn(`audit sink http dropped ${this.#unreportedDrops} record(s): ${this.#dropReason}; ${this.#dropped} dropped in all`, {
      sink: "http",
      origin: this.#origin,
      dropped: this.#unreportedDrops,
      totalDropped: this.#dropped,
      maxQueue: this.#options.maxQueue,
      maxQueueBytes: this.#options.maxQueueBytes,
      ...(this.#lastError && { lastError: this.#lastError }),
    });
    this.#unreportedDrops = 0;
    this.#lastDropReport = this.#now();
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
      const outcome = await this.#post(body, signal);
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
          origin: this.#origin,
        });
        return "rejected";
      }
      if (attempt >= this.#options.maxRetries) {
        this.#failedRounds++;
        this.#logger.warn(
          `audit sink http: a batch of ${batch.length} record(s) failed ${attempt + 1} time(s) (${outcome.error}); it stays queued for another round in ${this.#options.flushIntervalMs} ms`,
          { sink: "http", origin: this.#origin, queued: this.#queue.length + batch.length },
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

  async #post(body: string, signal: AbortSignal): Promise<Outcome> {
    // One controller per attempt, fed by the sink's abort and the attempt's own deadline (no
    // AbortSignal.any: listeners would pile up on the long-lived sink signal).
    const attempt = new AbortController();
    let timedOut = false;
    const onAbort = () => attempt.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(() => {
      timedOut = true;
      attempt.abort(new Error(`timed out after ${this.#options.timeoutMs} ms`));
    }, this.#options.timeoutMs);
    try {
      this.#client ??= new Pool(this.#origin, { connect: { timeout: this.#options.timeoutMs }, keepAliveTimeout: 4_000 });
      const response = await this.#client.request({ path: this.#path, method: "POST", headers: this.#headers, body, signal: attempt.signal });
      await response.body.dump({ limit: 64 * 1024, signal: attempt.signal }).catch(() => undefined);
      if (response.statusCode >= 200 && response.statusCode < 300) return { ok: true };
      const retryable = isRetryableStatus(response.statusCode);
      const retryAfterMs = retryable ? parseRetryAfter(response.headers["retry-after"], this.#now()) : undefined;
      return { ok: false, retryable, error: `HTTP ${response.statusCode}`, ...(retryAfterMs !== undefined && { retryAfterMs }) };
    } catch (error) {
      return { ok: false, retryable: true, error: timedOut ? `timed out after ${this.#options.timeoutMs} ms` : describe(error) };
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    }
  }
}

function describe(error: unknown): string {
  const e = error as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e?.code ?? e?.cause?.code;
  const message = e?.message || e?.cause?.message || String(error);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}

/** Resolves after `ms`, or at once when the signal aborts. */
function sleep(ms: number, signal: AbortSignal, ref: boolean): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    if (!ref) timer.unref();
    signal.addEventListener("abort", done, { once: true });
  });
}
