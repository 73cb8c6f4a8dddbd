import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { eventually, serverContainers, startTestServer, type TestServer } from "./helpers.js";

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ limits: { maxConcurrent: 1, maxQueue: 1 } });
});
afterAll(async () => {
  await t.close();
  expect(await serverContainers(t.server.id)).toEqual([]);
});

const sleepy = (seconds: number) => ({ request: { runtime: "bash", code: `sleep ${seconds}; echo slept` } });

describe("backpressure", () => {
  test("beyond running + queued, requests get a fast 429 with Retry-After; the admitted ones all succeed", async () => {
    const started = Date.now();
    const responses = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const response = await t.call("/execute", { json: sleepy(1) });
        return {
          status: response.status,
          retryAfter: response.headers.get("retry-after"),
          body: (await response.json()) as Record<string, unknown>,
          at: Date.now() - started,
        };
      }),
    );
    const ok = responses.filter((r) => r.status === 200);
    const refused = responses.filter((r) => r.status === 429);
    expect(responses.map((r) => r.status).sort()).toEqual([200, 200, 429, 429, 429]);
    expect(ok.length).toBe(2); // one running, one queued
    for (const r of ok) expect(r.body).toMatchObject({ stdout: "slept\n", exitCode: 0 });
    for (const r of refused) {
      expect(r.body).toMatchObject({ code: "ISOL8_ERR_OVERLOADED" });
      expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(r.at).toBeLessThan(2_000); // refused at once, not after waiting for a slot
    }
    const metrics = await (await t.call("/metrics")).text();
    expect(metrics).toMatch(/isol8_rejected_total\{reason="overloaded"\} 3/);
    expect(t.server.limiter.running).toBe(0);
  });

  test("a request past the server's deadline gets 504 and its run is cancelled (the slot comes back long before the program would end)", async () => {
    const short = await startTestServer({ limits: { requestTimeoutMs: 3_000 } });
    try {
      const started = Date.now();
      const response = await short.call("/execute", { json: { request: { runtime: "bash", code: "sleep 20; echo late", timeoutMs: 25_000 } } });
      expect(response.status).toBe(504);
      expect(await response.json()).toMatchObject({ code: "ISOL8_ERR_TIMEOUT" });
      expect(Date.now() - started).toBeLessThan(6_000);
      await eventually(() => short.server.limiter.running === 0, 8_000);
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      await short.close();
    }
    expect(await serverContainers(short.server.id)).toEqual([]);
  });

  test("a stream whose client goes away is cancelled and its container freed", async () => {
    const controller = new AbortController();
    const response = await t.call("/execute/stream", {
      json: { request: { runtime: "bash", code: "echo started; sleep 30; echo never" } },
      signal: controller.signal,
    });
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    const { value } = await reader.read();
    expect(Buffer.from(value!).toString()).toContain("started");
    const before = Date.now();
    controller.abort();
    await eventually(() => t.server.limiter.running === 0, 15_000);
    expect(Date.now() - before).toBeLessThan(10_000);
    await eventually(async () => (await serverContainers(t.server.id)).length === 0, 10_000);
    expect(t.logs.some((l) => l.path === "/execute/stream" && l.status === 499 && l.outcome === "cancelled")).toBe(true);
  });
});
