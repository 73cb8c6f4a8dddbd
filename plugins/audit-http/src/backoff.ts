/**
 * Delay before retry number `retry` (1 for the first retry): exponential, capped, with "equal
 * jitter": the exponential value `min(maxMs, baseMs * 2^(retry-1))` is halved and a random half
 * added back, so a delay is in [exp/2, exp). Half fixed keeps a floor under the wait; half random
 * spreads many senders that failed at the same instant.
 */
export function backoffDelay(retry: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, retry - 1));
  return Math.round(exp / 2 + random() * (exp / 2));
}

/**
 * Milliseconds a Retry-After header asks for: delay-seconds ("120") or an HTTP date. Undefined
 * when absent or unreadable; a date in the past gives 0.
 */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** Whether a response status is worth retrying: 408, 429 and every 5xx. Other 4xx mean the batch itself is refused. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Resolves after `ms`, or at once when the signal aborts; `ref: false` lets the process exit meanwhile. */
export function sleep(ms: number, signal: AbortSignal, ref: boolean): Promise<void> {
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
