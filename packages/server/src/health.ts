export type HealthStatus = "ok" | "starting" | "unavailable" | "draining";

/**
 * What GET /health answers: starting until the main engine has started, draining once shutdown
 * began, otherwise whether Docker answers a ping (cached 5 s, a ping given 2 s), so a load
 * balancer's probes do not each reach the Docker daemon.
 */
export class Health {
  readonly #ping: () => Promise<unknown>;
  #started = false;
  #draining = false;
  #check: { at: number; ok: boolean; pending?: Promise<boolean> } = { at: 0, ok: false };

  constructor(ping: () => Promise<unknown>) {
    this.#ping = ping;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** The main engine started (so Docker answered just now). */
  started(): void {
    this.#started = true;
    this.#check = { at: Date.now(), ok: true };
  }

  drain(): void {
    this.#draining = true;
  }

  async status(): Promise<HealthStatus> {
    if (this.#draining) return "draining";
    if (!this.#started) return "starting";
    return (await this.#dockerOk()) ? "ok" : "unavailable";
  }

  async #dockerOk(): Promise<boolean> {
    const check = this.#check;
    if (Date.now() - check.at < 5_000) return check.ok;
    check.pending ??= Promise.race([
      this.#ping().then(
        () => true,
        () => false,
      ),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 2_000).unref()),
    ]).then((ok) => {
      this.#check = { at: Date.now(), ok };
      return ok;
    });
    return check.pending;
  }
}
