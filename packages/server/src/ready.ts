import type { Hono } from "hono";
import type { ServerEnv } from "./env.js";
import type { Health } from "./health.js";
import type { Limiter } from "./limiter.js";

export interface ReadyBody {
  ready: boolean;
  node: string;
  /** Why the node is not ready (absent when it is). */
  reason?: "starting" | "docker-unavailable" | "draining" | "queue-full";
  queued: number;
  readyMaxQueue: number;
}

/**
 * GET /ready, for load balancers: 200 while this node should get new work, else 503. Not ready
 * while the main engine (and its pool) starts, while Docker does not answer (the health check's
 * cached ping), from the moment shutdown begins (`leave`, before the listener closes: see
 * shutdown.ts), and while `readyMaxQueue` or more requests wait for a slot. GET /health stays the
 * liveness check.
 */
export class Readiness {
  readonly #health: Health;
  readonly #limiter: Limiter;
  readonly #maxQueue: number;
  readonly #node: string;
  #leaving = false;

  constructor(options: { health: Health; limiter: Limiter; readyMaxQueue: number; node: string }) {
    this.#health = options.health;
    this.#limiter = options.limiter;
    this.#maxQueue = options.readyMaxQueue;
    this.#node = options.node;
  }

  /** Shutdown began: not ready from now on (requests are still served until the listener closes). */
  leave(): void {
    this.#leaving = true;
  }

  get leaving(): boolean {
    return this.#leaving;
  }

  async report(): Promise<ReadyBody> {
    const queued = this.#limiter.queued;
    const body = { node: this.#node, queued, readyMaxQueue: this.#maxQueue };
    if (this.#leaving || this.#health.draining) return { ready: false, reason: "draining", ...body };
    const status = await this.#health.status();
    if (status === "starting") return { ready: false, reason: "starting", ...body };
    if (status !== "ok") return { ready: false, reason: status === "draining" ? "draining" : "docker-unavailable", ...body };
    // A queue of 0 allowed: ready while nothing waits.
    if (queued >= Math.max(1, this.#maxQueue)) return { ready: false, reason: "queue-full", ...body };
    return { ready: true, ...body };
  }

  mount(app: Hono<ServerEnv>): void {
    app.get("/ready", async (c) => {
      const body = await this.report();
      return c.json(body, body.ready ? 200 : 503, { "Cache-Control": "no-store" });
    });
  }
}
