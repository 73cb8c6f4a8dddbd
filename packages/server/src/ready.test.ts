import { describe, expect, test, vi } from "vitest";
import { Health } from "./health.js";
import { Limiter } from "./limiter.js";
import { Readiness } from "./ready.js";

describe("Readiness (GET /ready)", () => {
  test("not ready while starting, ready once started, not ready from the moment shutdown begins", async () => {
    const health = new Health(async () => undefined);
    const readiness = new Readiness({ health, limiter: new Limiter(1, 4), readyMaxQueue: 4, node: "n1" });
    expect(await readiness.report()).toMatchObject({ ready: false, reason: "starting", node: "n1" });
    health.started();
    expect(await readiness.report()).toEqual({ ready: true, node: "n1", queued: 0, readyMaxQueue: 4 });
    readiness.leave();
    expect(await readiness.report()).toMatchObject({ ready: false, reason: "draining" });
  });

  test("not ready while readyMaxQueue requests wait for a slot; ready again when the queue shrinks", async () => {
    const health = new Health(async () => undefined);
    health.started();
    const limiter = new Limiter(1, 8);
    const readiness = new Readiness({ health, limiter, readyMaxQueue: 2, node: "n1" });
    const release = await limiter.acquire();
    const waiting = new AbortController();
    const first = limiter.acquire(waiting.signal).catch((error: unknown) => error);
    expect(await readiness.report()).toMatchObject({ ready: true, queued: 1 });
    const second = limiter.acquire(waiting.signal).catch((error: unknown) => error);
    expect(await readiness.report()).toMatchObject({ ready: false, reason: "queue-full", queued: 2 });
    waiting.abort(new Error("test over"));
    expect(await first).toMatchObject({ message: "test over" });
    expect(await second).toMatchObject({ message: "test over" });
    expect(await readiness.report()).toMatchObject({ ready: true, queued: 0 });
    release();
  });

  test("not ready when Docker does not answer (the health check's ping, once its cached answer is older than 5 s)", async () => {
    vi.useFakeTimers();
    try {
      let dockerUp = true;
      const health = new Health(() => (dockerUp ? Promise.resolve() : Promise.reject(new Error("docker down"))));
      health.started();
      const readiness = new Readiness({ health, limiter: new Limiter(1, 1), readyMaxQueue: 1, node: "n1" });
      dockerUp = false;
      vi.advanceTimersByTime(6_000);
      expect(await readiness.report()).toMatchObject({ ready: false, reason: "docker-unavailable" });
      dockerUp = true;
      vi.advanceTimersByTime(6_000);
      expect(await readiness.report()).toMatchObject({ ready: true });
    } finally {
      vi.useRealTimers();
    }
  });
});
