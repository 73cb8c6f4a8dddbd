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
    // The admitted programs sleep 5 s: every refusal must arrive while both are still unanswered
    // (refused at once, not after waiting for a slot). An order of events, not a clock.
    let answered = 0;
    const responses = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const response = await t.call("/execute", { json: sleepy(5) });
        const body = (await response.json()) as Record<string, unknown>;
        const admittedAnsweredBefore = answered;
        if (response.status === 200) answered++;
        return { status: response.status, retryAfter: response.headers.get("retry-after"), body, admittedAnsweredBefore };
      }),
    );
    const ok = responses.filter((r) => r.status === 200);
    const refused = responses.filter((r) => r.status === 429);
    expect(responses.map((r) => r.status).sort()).toEqual([200, 200, 429, 429, 429]);
    expect(ok.length).toBe(2); // one running, one queued
    for (const r of ok) expect(r.body).toMatchObject({ stdout: "slept\n", exitCode: 0 });
    expect(refused).toHaveLength(3);
    for (const r of refused) {
      expect(r.body).toMatchObject({ code: "ISOL8_ERR_OVERLOADED" });
      expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(r.admittedAnsweredBefore).toBe(0); // refused before any admitted run was answered
    }
    const metrics = await (await t.call("/metrics")).text();
    expect(metrics).toMatch(/isol8_rejected_total\{reason="overloaded"\} 3/);
    expect(t.server.limiter.running).toBe(0);
  });

  test("a request past the server's deadline gets 504 and its run is cancelled (the slot comes back long before the program would end)", async () => {
    const short = await startTestServer({ limits: { requestTimeoutMs: 3_000 } });
    try {
      const response = await short.call("/execute", { json: { request: { runtime: "bash", code: "sleep 20; echo late", timeoutMs: 25_000 } } });
      expect(response.status).toBe(504);
      expect(await response.json()).toMatchObject({ code: "ISOL8_ERR_TIMEOUT" });
      // The slot comes back while the 20 s program would still be sleeping: the run was cancelled
      // (the bound is a generous timeout, well under the program's own length).
      await eventually(() => short.server.limiter.running === 0, 12_000);
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
    controller.abort();
    // Freed while the 30 s program would still be sleeping (a generous timeout, not a speed claim).
    await eventually(() => t.server.limiter.running === 0, 15_000);
    await eventually(async () => (await serverContainers(t.server.id)).length === 0, 10_000);
    expect(t.logs.some((l) => l.path === "/execute/stream" && l.status === 499 && l.outcome === "cancelled")).toBe(true);
  });
});
