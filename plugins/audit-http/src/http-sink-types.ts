import type { Logger } from "@isol8/kit";

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
