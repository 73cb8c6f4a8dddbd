import { describe, expect, test } from "vitest";
import { HttpError } from "./errors.js";
import { Limiter } from "./limiter.js";

describe("Limiter", () => {
  test("runs up to maxConcurrent, queues up to maxQueue in order, refuses the rest with 429 and Retry-After", async () => {
    const limiter = new Limiter(2, 2);
    const a = await limiter.acquire();
    const b = await limiter.acquire();
    const order: string[] = [];
    const c = limiter.acquire().then((r) => (order.push("c"), r));
    const d = limiter.acquire().then((r) => (order.push("d"), r));
    expect(limiter.running).toBe(2);
    expect(limiter.queued).toBe(2);
    const refused = await limiter.acquire().catch((e: HttpError) => e);
    expect(refused).toBeInstanceOf(HttpError);
    expect((refused as HttpError).status).toBe(429);
    expect(Number((refused as HttpError).headers["Retry-After"])).toBeGreaterThanOrEqual(1);
    a();
    a(); // a second release is a no-op
    const releaseC = await c;
    expect(limiter.running).toBe(2);
    b();
    const releaseD = await d;
    expect(order).toEqual(["c", "d"]);
    releaseC();
    releaseD();
    expect(limiter.running).toBe(0);
  });

  test("a queued waiter whose signal aborts leaves the queue; close() refuses everything waiting", async () => {
    const limiter = new Limiter(1, 5);
    const held = await limiter.acquire();
    const controller = new AbortController();
    const waiting = limiter.acquire(controller.signal);
    const other = limiter.acquire();
    controller.abort(new Error("gone"));
    await expect(waiting).rejects.toThrow("gone");
    expect(limiter.queued).toBe(1);
    limiter.close(new HttpError(503, "ISOL8_ERR_SHUTTING_DOWN", "closing"));
    await expect(other).rejects.toMatchObject({ status: 503 });
    await expect(limiter.acquire()).rejects.toMatchObject({ status: 503 });
    held();
    expect(limiter.running).toBe(0);
  });
});
