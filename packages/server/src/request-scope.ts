import { HttpError } from "./errors.js";

/** Why a request's work stopped early. */
export type StopReason = "timeout" | "client" | "shutdown";

/**
 * The signals that end one request's work: its deadline, the client going away, the server
 * shutting down. `signal` aborts on the first of them; `reason` says which.
 *
 * Built from its own AbortController and listeners it removes in dispose(), not from
 * `AbortSignal.any([...])`: Node 20 keeps a composite signal that has an abort listener alive
 * for as long as one of its sources may still abort, and the shutdown signal lives as long as
 * the server, so every request's scope (controller, timer, signals) was kept forever (~3 KB per
 * request; see test/soak.test.ts).
 */
export class RequestScope {
  readonly signal: AbortSignal;
  reason: StopReason | undefined;
  readonly #controller = new AbortController();
  readonly #timer: NodeJS.Timeout;
  readonly #sources: { signal: AbortSignal; listener: () => void }[] = [];

  constructor(client: AbortSignal, shutdown: AbortSignal, timeoutMs: number) {
    this.signal = this.#controller.signal;
    this.#timer = setTimeout(() => this.#stop("timeout"), timeoutMs);
    // Shutdown first: when both have already aborted, the server's reason wins (as before).
    this.#follow(shutdown, "shutdown");
    this.#follow(client, "client");
  }

  #follow(source: AbortSignal, reason: StopReason): void {
    if (source.aborted) return this.#stop(reason);
    const listener = () => this.#stop(reason);
    source.addEventListener("abort", listener, { once: true });
    this.#sources.push({ signal: source, listener });
  }

  #stop(reason: StopReason): void {
    if (this.signal.aborted) return;
    this.reason = reason;
    this.#controller.abort();
  }

  error(timeoutMs: number): HttpError {
    switch (this.reason) {
      case "shutdown":
        return new HttpError(503, "ISOL8_ERR_SHUTTING_DOWN", "Cancelled: the server is shutting down");
      case "client":
        return new HttpError(499, "ISOL8_ERR_INTERNAL", "The client closed the connection");
      default:
        return new HttpError(504, "ISOL8_ERR_TIMEOUT", `The request did not complete within the server's deadline of ${timeoutMs} ms`);
    }
  }

  /** Stops following the deadline, the client and the shutdown: nothing long-lived refers to the scope afterwards. */
  dispose(): void {
    clearTimeout(this.#timer);
    for (const { signal, listener } of this.#sources.splice(0)) signal.removeEventListener("abort", listener);
  }
}
