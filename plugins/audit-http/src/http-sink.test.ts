import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { applyPlugins, InvalidOptionsError, Kit, silentLogger, type AuditRecord, type Logger } from "@isol8/kit";
import { sampleAuditRecord as record } from "@isol8/kit/testing";
import { deadUrl, startWebhook, type Webhook } from "../test/webhook.js";
import { backoffDelay, isRetryableStatus, parseRetryAfter } from "./backoff.js";
import { DROP_REPORT_INTERVAL_MS, HttpAuditSink, type HttpAuditSinkDeps, type HttpAuditSinkOptions } from "./http-sink.js";
import { httpAudit } from "./index.js";

const ids = (records: AuditRecord[]) => records.map((r) => r.executionId);

/** A logger that keeps its lines. */
function captureLog(): Logger & { lines: { level: string; message: string; fields?: Record<string, unknown> }[] } {
  const lines: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) => void lines.push({ level, message, fields });
  return { lines, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

const hooks: Webhook[] = [];
const sinks: HttpAuditSink[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);
beforeEach(() => {
  unhandled.length = 0;
  process.on("unhandledRejection", onUnhandled);
});
afterEach(async () => {
  await Promise.all(sinks.splice(0).map((s) => s.close()));
  await Promise.all(hooks.splice(0).map((h) => h.close()));
  process.off("unhandledRejection", onUnhandled);
  expect(unhandled).toEqual([]);
});

async function webhook(...args: Parameters<typeof startWebhook>): Promise<Webhook> {
  const hook = await startWebhook(...args);
  hooks.push(hook);
  return hook;
}

function sinkFor(url: string, options: Partial<HttpAuditSinkOptions> = {}, deps: HttpAuditSinkDeps = {}): HttpAuditSink {
  const sink = new HttpAuditSink(
    {
      url,
      headers: {},
      batchSize: 100,
      flushIntervalMs: 50,
      maxQueue: 1000,
      maxQueueBytes: 1024 ** 2,
      maxRetries: 5,
      timeoutMs: 2_000,
      retryBaseMs: 20,
      retryMaxMs: 1_000,
      closeTimeoutMs: 2_000,
      ...options,
    },
    { log: silentLogger, ...deps },
  );
  sinks.push(sink);
  return sink;
}

describe("backoff", () => {
  test("exponential with equal jitter, capped", () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n, 500, 10_000, () => 0))).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000]);
    expect([1, 2, 3].map((n) => backoffDelay(n, 500, 10_000, () => 0.5))).toEqual([375, 750, 1500]);
    for (let n = 1; n < 12; n++) {
      const exp = Math.min(10_000, 500 * 2 ** (n - 1));
      const d = backoffDelay(n, 500, 10_000);
      expect(d).toBeGreaterThanOrEqual(exp / 2);
      expect(d).toBeLessThanOrEqual(exp);
    }
  });

  test("Retry-After: seconds or an HTTP date", () => {
    const now = Date.parse("2025-01-31T12:00:00Z");
    expect(parseRetryAfter("3", now)).toBe(3000);
    expect(parseRetryAfter(["0"], now)).toBe(0);
    expect(parseRetryAfter("Fri, 31 Jan 2025 12:00:05 GMT", now)).toBe(5000);
    expect(parseRetryAfter("Fri, 31 Jan 2025 11:00:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  test("which statuses are retried", () => {
    expect([408, 429, 500, 502, 503, 504].every(isRetryableStatus)).toBe(true);
    expect([400, 401, 403, 404, 413, 422].some(isRetryableStatus)).toBe(false);
  });
});

describe("HttpAuditSink", () => {
  test("batches: full batches go at once, the rest after flushIntervalMs; body, headers and order", { timeout: 30_000 }, async () => {
    const hook = await webhook();
    const url = hook.url.replace("http://", "http://user:p%40ss@");
    // A flush interval far longer than the wait for the full batches: they cannot be waiting on it.
    const sink = sinkFor(url, { batchSize: 3, flushIntervalMs: 4_000, headers: { "X-Api-Key": "k1" } });
    const started = Date.now();
    for (let i = 0; i < 7; i++) await sink.write(record(i));
    await vi.waitFor(() => expect(hook.batches).toHaveLength(2), { timeout: 3_500, interval: 5 });
    expect(hook.batches.map((b) => ids(b.records))).toEqual([
      ["exec-0", "exec-1", "exec-2"],
      ["exec-3", "exec-4", "exec-5"],
    ]);
    await vi.waitFor(() => expect(hook.batches).toHaveLength(3), { timeout: 20_000, interval: 20 });
    expect(ids(hook.batches[2]!.records)).toEqual(["exec-6"]);
    // The rest only after the interval (a lower bound: a timer never fires early).
    expect(hook.batches[2]!.at - started).toBeGreaterThanOrEqual(3_980);
    const first = hook.batches[0]!;
    expect(first.path).toBe("/audit?source=test");
    expect(first.headers["content-type"]).toBe("application/json");
    expect(first.headers["x-api-key"]).toBe("k1");
    expect(first.headers.authorization).toBe(`Basic ${Buffer.from("user:p@ss").toString("base64")}`);
    expect(first.records[0]).toEqual(record(0));
    await vi.waitFor(() => expect(sink.stats()).toMatchObject({ queued: 0, inFlight: 0, sent: 7, dropped: 0, retries: 0 }), { timeout: 2_000, interval: 5 });
  });

  test("write only enqueues: it returns at once even while the webhook hangs", async () => {
    const hook = await webhook(() => "hang");
    const sink = sinkFor(hook.url, { batchSize: 1, timeoutMs: 5_000, closeTimeoutMs: 100 });
    for (let i = 0; i < 50; i++) await sink.write(record(i));
    // Every write returned while no attempt has ended (none answered, none timed out yet): write
    // never waits on the network.
    expect(sink.stats()).toMatchObject({ sent: 0, retries: 0, dropped: 0 });
    expect(sink.stats().lastError).toBeUndefined();
    await vi.waitFor(() => expect(hook.batches).toHaveLength(1), { timeout: 2_000, interval: 5 });
    expect(sink.stats()).toMatchObject({ inFlight: 1, queued: 49 });
  });

  test("500 twice then 200: the same batch is retried and delivered once", async () => {
    const hook = await webhook((_b, i) => (i < 2 ? 500 : 200));
    const sink = sinkFor(hook.url, { batchSize: 2, retryBaseMs: 50 });
    await sink.write(record(1));
    await sink.write(record(2));
    await vi.waitFor(() => expect(sink.stats().sent).toBe(2), { timeout: 5_000, interval: 5 });
    expect(hook.batches.map((b) => ids(b.records))).toEqual([
      ["exec-1", "exec-2"],
      ["exec-1", "exec-2"],
      ["exec-1", "exec-2"],
    ]);
    expect(ids(hook.accepted())).toEqual(["exec-1", "exec-2"]);
    // Backoff: first retry in [25, 50) ms, second in [50, 100) ms.
    expect(hook.batches[1]!.at - hook.batches[0]!.at).toBeGreaterThanOrEqual(20);
    expect(hook.batches[2]!.at - hook.batches[1]!.at).toBeGreaterThanOrEqual(45);
    expect(sink.stats()).toMatchObject({ sent: 2, retries: 2, dropped: 0, failedRounds: 0, lastError: "HTTP 500" });
  });

  test("429 with Retry-After: the sink waits as long as the server asks", async () => {
    const hook = await webhook((_b, i) => (i === 0 ? { status: 429, headers: { "retry-after": "1" } } : 200));
    const sink = sinkFor(hook.url, { batchSize: 1, retryBaseMs: 10, retryMaxMs: 5_000 });
    await sink.write(record(1));
    await vi.waitFor(() => expect(sink.stats().sent).toBe(1), { timeout: 5_000, interval: 10 });
    expect(hook.batches).toHaveLength(2);
    expect(hook.batches[1]!.at - hook.batches[0]!.at).toBeGreaterThanOrEqual(950);
    expect(sink.stats()).toMatchObject({ retries: 1, lastError: "HTTP 429" });
  });

  test("a server that hangs: the attempt times out and is retried", async () => {
    const hook = await webhook((_b, i) => (i === 0 ? "hang" : 200));
    const sink = sinkFor(hook.url, { batchSize: 1, timeoutMs: 300, retryBaseMs: 10 });
    const t0 = Date.now();
    await sink.write(record(1));
    await vi.waitFor(() => expect(sink.stats().sent).toBe(1), { timeout: 5_000, interval: 10 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(hook.batches).toHaveLength(2);
    expect(ids(hook.accepted())).toEqual(["exec-1"]);
    expect(sink.stats()).toMatchObject({ retries: 1, lastError: "timed out after 300 ms" });
  });

  test("a server that is down: the queue stays bounded, drops are counted and logged, close() ends by its deadline", async () => {
    const url = await deadUrl();
    const log = captureLog();
    const sink = sinkFor(url, { batchSize: 2, maxQueue: 5, maxRetries: 1, retryBaseMs: 5, flushIntervalMs: 20, closeTimeoutMs: 300 }, { log });
    for (let i = 0; i < 30; i++) {
      await sink.write(record(i));
      expect(sink.stats().queued).toBeLessThanOrEqual(5);
    }
    await new Promise((r) => setTimeout(r, 200));
    const during = sink.stats();
    expect(during.queued + during.inFlight).toBeLessThanOrEqual(5 + 2);
    expect(during.dropped).toBeGreaterThanOrEqual(30 - 7);
    expect(during.sent).toBe(0);
    expect(during.failedRounds).toBeGreaterThan(0);
    expect(during.lastError).toMatch(/ECONNREFUSED/);
    // close() ends (by its deadline, not by the dead server): the test's timeout is the only clock.
    await sink.close();
    expect(sink.stats()).toMatchObject({ queued: 0, inFlight: 0, sent: 0, dropped: 30 });
    const drops = log.lines.filter((l) => l.level === "warn" && /dropped/.test(l.message));
    expect(drops.length).toBeGreaterThan(0);
    expect(drops.reduce((sum, l) => sum + (l.fields!.dropped as number), 0)).toBe(30);
    expect(drops[0]!.message).toMatch(/^audit sink http dropped \d+ record\(s\): queue full/);
    expect(drops.at(-1)!.message).toMatch(/not delivered within closeTimeoutMs \(300 ms\) of close\(\); 30 dropped in all/);
  });

  test("drop-oldest: beyond maxQueue the oldest go, the newest are delivered", async () => {
    const hook = await webhook();
    const sink = sinkFor(hook.url, { batchSize: 100, maxQueue: 5, flushIntervalMs: 60_000 });
    for (let i = 0; i < 12; i++) await sink.write(record(i));
    expect(sink.stats()).toMatchObject({ queued: 5, dropped: 7 });
    expect(await sink.flush()).toBe(true);
    expect(ids(hook.accepted())).toEqual(["exec-7", "exec-8", "exec-9", "exec-10", "exec-11"]);
  });

  test("the queue is bounded in bytes too: the oldest go first, a record larger than the bound is dropped alone", async () => {
    const hook = await webhook();
    const size = JSON.stringify(record(0)).length;
    const sink = sinkFor(hook.url, { batchSize: 100, maxQueue: 1000, maxQueueBytes: size * 3, flushIntervalMs: 60_000 });
    for (let i = 0; i < 5; i++) await sink.write(record(i));
    expect(sink.stats()).toMatchObject({ queued: 3, queuedBytes: size * 3, dropped: 2 });
    await sink.write({ ...record(99), stdout: "x".repeat(size * 3) });
    expect(sink.stats()).toMatchObject({ queued: 3, queuedBytes: size * 3, dropped: 3 });
    await sink.write(record(5));
    expect(await sink.flush()).toBe(true);
    expect(ids(hook.accepted())).toEqual(["exec-3", "exec-4", "exec-5"]);
  });

  test("after a round of failures the batch goes back to the head of the queue and is delivered once the server is back", async () => {
    let up = false;
    const hook = await webhook(() => (up ? 200 : 503));
    const sink = sinkFor(hook.url, { batchSize: 2, maxRetries: 2, retryBaseMs: 5, flushIntervalMs: 100 });
    await sink.write(record(1));
    await sink.write(record(2));
    await vi.waitFor(() => expect(sink.stats().failedRounds).toBe(1), { timeout: 2_000, interval: 5 });
    expect(hook.batches).toHaveLength(3);
    await sink.write(record(3));
    expect(sink.stats()).toMatchObject({ queued: 3, sent: 0, dropped: 0 });
    up = true;
    await vi.waitFor(() => expect(sink.stats().sent).toBe(3), { timeout: 3_000, interval: 5 });
    expect(ids(hook.accepted())).toEqual(["exec-1", "exec-2", "exec-3"]);
  });

  test("the retry schedule, with an injected clock and jitter", async () => {
    const hook = await webhook(() => 503);
    const delays: number[] = [];
    const sink = sinkFor(
      hook.url,
      { batchSize: 1, maxRetries: 4, retryBaseMs: 500, retryMaxMs: 3_000, flushIntervalMs: 60_000, closeTimeoutMs: 100 },
      { random: () => 0.5, sleep: async (ms) => void delays.push(ms) },
    );
    await sink.write(record(1));
    await vi.waitFor(() => expect(sink.stats().failedRounds).toBe(1), { timeout: 2_000, interval: 5 });
    // exp = 500, 1000, 2000, 3000 (capped); delay = exp/2 + 0.5 * exp/2.
    expect(delays).toEqual([375, 750, 1500, 2250]);
    expect(hook.batches).toHaveLength(5);
    expect(sink.stats()).toMatchObject({ retries: 4, queued: 1, sent: 0 });
  });

  test("a 4xx other than 408/429 refuses the batch for good: counted, not retried, the next batch goes", async () => {
    const hook = await webhook((_b, i) => (i === 0 ? 400 : 200));
    const log = captureLog();
    const sink = sinkFor(hook.url, { batchSize: 1 }, { log });
    await sink.write(record(1));
    await sink.write(record(2));
    await vi.waitFor(() => expect(sink.stats().sent).toBe(1), { timeout: 2_000, interval: 5 });
    expect(sink.stats()).toMatchObject({ rejected: 1, retries: 0, sent: 1 });
    expect(hook.batches).toHaveLength(2);
    expect(log.lines.some((l) => /refused a batch of 1 record\(s\) \(HTTP 400\)/.test(l.message))).toBe(true);
  });

  test("drop lines are rate-limited: one at once, the rest summed later", async () => {
    const log = captureLog();
    let clock = 1_000_000;
    const sink = sinkFor(await deadUrl(), { batchSize: 1000, maxQueue: 2, flushIntervalMs: 60_000, closeTimeoutMs: 50 }, { log, now: () => clock });
    for (let i = 0; i < 3; i++) await sink.write(record(i));
    const dropLines = () => log.lines.filter((l) => /dropped/.test(l.message));
    expect(dropLines()).toHaveLength(1);
    for (let i = 3; i < 10; i++) await sink.write(record(i));
    expect(dropLines()).toHaveLength(1);
    clock += DROP_REPORT_INTERVAL_MS;
    await sink.write(record(10));
    expect(dropLines().map((l) => l.fields!.dropped)).toEqual([1, 8]);
    expect(sink.stats().dropped).toBe(9);
  });

  test("close() delivers what waits for the timer; the sink works again afterwards", async () => {
    const hook = await webhook();
    const sink = sinkFor(hook.url, { batchSize: 100, flushIntervalMs: 60_000 });
    await sink.write(record(1));
    await sink.write(record(2));
    await sink.close();
    expect(ids(hook.accepted())).toEqual(["exec-1", "exec-2"]);
    await sink.write(record(3));
    await sink.close();
    expect(ids(hook.accepted())).toEqual(["exec-1", "exec-2", "exec-3"]);
  });
});

describe("httpAudit plugin", () => {
  test("registers sink 'http', owned by the plugin, and exposes it as api.sink and .sink", () => {
    const plugin = httpAudit({ url: "http://127.0.0.1:9/audit" });
    expect(plugin.name).toBe("isol8:audit-http");
    const kit = new Kit(silentLogger);
    applyPlugins(kit, [plugin]);
    expect(kit.auditSinks.get("http")).toBe(plugin.api.sink);
    expect(kit.auditSinks.owner("http")).toBe("isol8:audit-http");
    expect(plugin.sink).toBe(plugin.api.sink);
    expect(plugin.sink.stats()).toEqual({ queued: 0, queuedBytes: 0, inFlight: 0, sent: 0, dropped: 0, rejected: 0, retries: 0, failedRounds: 0 });
  });

  test("bad options fail when the factory is called, naming the plugin and the key", () => {
    expect(() => httpAudit({} as never)).toThrow(InvalidOptionsError);
    expect(() => httpAudit({ url: "ftp://example.invalid/" })).toThrow(/isol8:audit-http.*options\.url: expected an http:\/\/ or https:\/\/ URL/);
    expect(() => httpAudit({ url: "not a url" })).toThrow(/options\.url/);
    expect(() => httpAudit({ url: "http://127.0.0.1/", batchSize: 0 })).toThrow(/options\.batchSize: expected at least 1 record/);
    expect(() => httpAudit({ url: "http://127.0.0.1/", maxRetries: -1 })).toThrow(/options\.maxRetries/);
    expect(() => httpAudit({ url: "http://127.0.0.1/", timeoutMs: 1.5 })).toThrow(/options\.timeoutMs: expected a whole number/);
    expect(() => httpAudit({ url: "http://127.0.0.1/", headers: { a: 1 } as never })).toThrow(/options\.headers\.a/);
  });
});
