import { Pool } from "undici";
import { isRetryableStatus, parseRetryAfter } from "./backoff.js";

/** What one POST came to: accepted, or an error worth retrying (or not). */
export type Outcome = { ok: true } | { ok: false; retryable: boolean; error: string; retryAfterMs?: number };

/**
 * One webhook endpoint: its origin's connection pool (made at the first POST), the request path
 * and headers. `post` makes one attempt and says what came of it; it never throws.
 */
export class WebhookClient {
  readonly origin: string;
  readonly #path: string;
  readonly #headers: Record<string, string>;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  #pool: Pool | undefined;

  constructor(url: string, headers: Record<string, string>, timeoutMs: number, now: () => number) {
    const parsed = new URL(url);
    this.origin = parsed.origin;
    this.#path = `${parsed.pathname}${parsed.search}`;
    const all: Record<string, string> = { "content-type": "application/json" };
    // Credentials in the URL become basic auth: the connection pool only knows the origin.
    if (parsed.username || parsed.password) {
      all.authorization = `Basic ${Buffer.from(`${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`).toString("base64")}`;
    }
    for (const [name, value] of Object.entries(headers)) all[name.toLowerCase()] = value;
    this.#headers = all;
    this.#timeoutMs = timeoutMs;
    this.#now = now;
  }

  /** One attempt within timeoutMs, stopped early when `signal` aborts. */
  async post(body: string, signal: AbortSignal): Promise<Outcome> {
    // One controller per attempt, fed by the sink's abort and the attempt's own deadline (no
    // AbortSignal.any: listeners would pile up on the long-lived sink signal).
    const attempt = new AbortController();
    let timedOut = false;
    const onAbort = () => attempt.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(() => {
      timedOut = true;
      attempt.abort(new Error(`timed out after ${this.#timeoutMs} ms`));
    }, this.#timeoutMs);
    try {
      this.#pool ??= new Pool(this.origin, { connect: { timeout: this.#timeoutMs }, keepAliveTimeout: 4_000 });
      const response = await this.#pool.request({ path: this.#path, method: "POST", headers: this.#headers, body, signal: attempt.signal });
      await response.body.dump({ limit: 64 * 1024, signal: attempt.signal }).catch(() => undefined);
      if (response.statusCode >= 200 && response.statusCode < 300) return { ok: true };
      const retryable = isRetryableStatus(response.statusCode);
      const retryAfterMs = retryable ? parseRetryAfter(response.headers["retry-after"], this.#now()) : undefined;
      return { ok: false, retryable, error: `HTTP ${response.statusCode}`, ...(retryAfterMs !== undefined && { retryAfterMs }) };
    } catch (error) {
      return { ok: false, retryable: true, error: timedOut ? `timed out after ${this.#timeoutMs} ms` : describe(error) };
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** Closes the connections; a later post opens new ones. */
  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.destroy().catch(() => undefined);
  }
}

function describe(error: unknown): string {
  const e = error as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e?.code ?? e?.cause?.code;
  const message = e?.message || e?.cause?.message || String(error);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}
