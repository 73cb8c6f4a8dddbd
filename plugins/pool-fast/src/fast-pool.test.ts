import { afterEach, describe, expect, test } from "vitest";
import { Kit, silentLogger } from "@isol8/kit";
import { abortWaitingAcquisition, acquireAtOnce, deferred, drainWhileCreatesHeld, fakePools, settle } from "@isol8/kit/testing";
import { FastPool, retryDelayMs } from "./fast-pool.js";
import { fastPool } from "./index.js";

describe("the plugin", () => {
  test("registers the fast strategy under its own name", () => {
    const kit = new Kit(silentLogger);
    fastPool().apply(kit);
    expect(kit.poolStrategies.has("fast")).toBe(true);
    expect(kit.poolStrategies.owner("fast")).toBe("isol8:pool-fast");
  });

  test("bad options fail when the factory is called, naming the plugin", () => {
    expect(() => fastPool({ wipeTimeoutMs: -1 })).toThrow(/isol8:pool-fast.*wipeTimeoutMs/s);
    expect(() => fastPool({ nope: 1 } as never)).toThrow(/isol8:pool-fast/);
  });
});

const { makePool, prewarmedPool, drainPools } = fakePools(FastPool, { clean: 2, dirty: 2 }, { healthCheckIntervalMs: 0 });
afterEach(drainPools);

describe("prewarm", () => {
  test("fills the clean pool of each runtime named, and only those", async () => {
    const { context, pool } = makePool({ clean: 2, dirty: 3 });
    await pool.prewarm(["python", "node"]);
    expect(pool.stats().runtimes).toEqual({
      python: { clean: 2, wiping: 0, creating: 0, waiters: 0 },
      node: { clean: 2, wiping: 0, creating: 0, waiters: 0 },
    });
    expect(context.calls.create).toBe(4);
    expect([...context.live.values()].map((e) => e.container.runtime).sort()).toEqual(["node", "node", "python", "python"]);
  });

  test("resolves only once the pool is filled", async () => {
    const { context, pool } = makePool({ clean: 2, dirty: 1 });
    const gate = deferred();
    context.createGate = gate.promise;
    let done = false;
    const prewarm = pool.prewarm(["python"]).then(() => (done = true));
    await settle();
    expect(done).toBe(false);
    gate.resolve();
    await prewarm;
    expect(pool.stats().runtimes.python!.clean).toBe(2);
  });

  test("rejects with the create error (a missing image is reported, not retried silently)", async () => {
    const { context, pool } = makePool({ clean: 1, dirty: 1 });
    context.createErrors.push(new Error("image missing"));
    await expect(pool.prewarm(["python"])).rejects.toThrow("image missing");
  });

  test("a size of zero clean containers needs no work", async () => {
    const { context, pool } = makePool({ clean: 0, dirty: 2 });
    await pool.prewarm(["python"]);
    expect(context.calls.create).toBe(0);
  });
});

describe("acquire and release", () => {
  test("a clean container is handed out at once (not a cold start) and the clean pool is refilled", async () => {
    const { context, pool } = makePool({ clean: 1, dirty: 1 });
    await pool.prewarm(["python"]);
    const { container, coldStart } = await pool.acquire("python");
    expect(coldStart).toBe(false);
    expect(container.runtime).toBe("python");
    await settle();
    expect(pool.stats().runtimes.python!.clean).toBe(1);
    expect(context.calls.create).toBe(2);
  });

  test("a reusable release is wiped at once and kept clean (up to clean + dirty), so the next acquisition starts no work", async () => {
    const { context, pool } = makePool({ clean: 1, dirty: 1 });
    await pool.prewarm(["python"]);
    const a = await pool.acquire("python");
    await settle(); // the refill lands: clean is full
    await pool.release(a.container, { reusable: true });
    expect(pool.stats().runtimes.python).toMatchObject({ clean: 1, wiping: 1 });
    await settle();
    expect(context.calls.wipe).toBe(1);
    expect(pool.stats().runtimes.python).toMatchObject({ clean: 2, wiping: 0 });
    // Take one: one is still clean (≥ C), so nothing is wiped or created during this execution.
    const b = await pool.acquire("python");
    await settle();
    expect(context.calls).toMatchObject({ wipe: 1, create: 2 });
    expect(pool.stats().runtimes.python).toMatchObject({ clean: 1, wiping: 0, creating: 0 });
    const c = await pool.acquire("python");
    expect([b.container.id, c.container.id]).toContain(a.container.id);
    expect(c.coldStart).toBe(false);
    await pool.release(b.container, { reusable: true });
    await pool.release(c.container, { reusable: true });
  });

  test("reusable: false destroys the container", async () => {
    const { context, pool } = makePool({ clean: 1, dirty: 1 });
    await pool.prewarm(["python"]);
    const a = await pool.acquire("python");
    await pool.release(a.container, { reusable: false });
    await settle();
    expect(context.live.has(a.container.id)).toBe(false);
    expect(context.calls.wipe).toBe(0);
  });

  test("an acquisition while a released container is being wiped waits for that wipe rather than a create", async () => {
    const { context, pool } = makePool({ clean: 0, dirty: 1 });
    const a = await pool.acquire("python");
    expect(a.coldStart).toBe(true);
    const gate = deferred();
    context.wipeGate = gate.promise;
    await pool.release(a.container, { reusable: true });
    expect(pool.stats().runtimes.python).toMatchObject({ clean: 0, wiping: 1 });
    const b = pool.acquire("python");
    await settle();
    expect(pool.stats().runtimes.python).toMatchObject({ wiping: 1, creating: 0, waiters: 1 });
    gate.resolve();
    expect(await b).toEqual({ container: a.container, coldStart: false });
    expect(context.calls).toMatchObject({ create: 1, wipe: 1 });
  });

  test("with nothing idle, a container is created for the acquisition: a cold start", async () => {
    const { context, pool } = makePool({ clean: 1, dirty: 1 });
    const a = await pool.acquire("python");
    expect(a.coldStart).toBe(true);
    expect(context.calls.create).toBeGreaterThanOrEqual(1);
  });

  test("a waiter covered by a wipe is no cold start, even when a create in flight lands first", async () => {
    const { context, pool } = makePool({ clean: 1, dirty: 1 });
    await pool.prewarm(["python"]);
    const createGate = deferred();
    context.createGate = createGate.promise;
    const wipeGate = deferred();
    context.wipeGate = wipeGate.promise;
    const a = await pool.acquire("python"); // takes the clean one; a refill create starts (held)
    await pool.release(a.container, { reusable: true }); // wiped at once (held)
    const b = pool.acquire("python"); // nothing clean: the wipe in flight covers it
    await settle();
    expect(pool.stats().runtimes.python).toMatchObject({ creating: 1, wiping: 1, waiters: 1 });
    createGate.resolve(); // the create lands first and serves the waiter
    const got = await b;
    expect(got.container.id).not.toBe(a.container.id);
    expect(got.coldStart).toBe(false);
    wipeGate.resolve();
    await settle();
    expect(pool.stats().runtimes.python).toMatchObject({ clean: 1, wiping: 0 });
  });

  test("a waiter gets a released container's wipe before a create in flight finishes", async () => {
    const { context, pool } = makePool({ clean: 0, dirty: 1 });
    const a = await pool.acquire("python");
    const gate = deferred();
    context.createGate = gate.promise;
    const b = pool.acquire("python"); // a create starts for it (held)
    await settle();
    await pool.release(a.container, { reusable: true }); // wiped at once for the waiter
    expect(await b).toEqual({ container: a.container, coldStart: false });
    gate.resolve();
    await settle();
    // The create that lost the race is kept clean (room for C + D = 1).
    expect(pool.stats().runtimes.python).toMatchObject({ clean: 1 });
    expect(context.live.size).toBe(2);
  });

  test("an aborted acquisition leaves the queue; its container lands in the clean pool", async () => {
    const { context, pool } = makePool({ clean: 1, dirty: 1 });
    await expect(abortWaitingAcquisition(context, pool, "python", new Error("stop"))).rejects.toThrow("stop");
    // Its create and the refill's both land clean (room for C + D = 2).
    expect(pool.stats().runtimes.python).toMatchObject({ clean: 2, waiters: 0 });
    expect(context.live.size).toBe(2);
  });
});

describe("bounds", () => {
  test("concurrent acquisitions beyond what is idle all succeed; at rest the pool keeps clean + dirty, all clean", async () => {
    const { context, pool } = await prewarmedPool({ clean: 2, dirty: 2 }, ["python"]);
    const acquired = await acquireAtOnce(pool, "python", 20, { reusable: true });
    expect(new Set(acquired.map((a) => a.container.id)).size).toBe(20);
    // Two came from the clean pool; the others waited for containers created for them.
    expect(acquired.filter((a) => !a.coldStart)).toHaveLength(2);
    expect(pool.stats()).toMatchObject({ runtimes: { python: { clean: 4, wiping: 0, creating: 0, waiters: 0 } }, inUse: 0, held: 4 });
    expect(context.live.size).toBe(4);
  });

  test("background creation never overshoots the clean size", async () => {
    const { context, pool } = makePool({ clean: 3, dirty: 0 });
    const gate = deferred();
    context.createGate = gate.promise;
    const prewarm = pool.prewarm(["python"]);
    await settle();
    expect(context.creating).toBe(3);
    // Prewarming again while the creates are in flight starts no more.
    const again = pool.prewarm(["python"]);
    await settle();
    expect(context.creating).toBe(3);
    gate.resolve();
    await Promise.all([prewarm, again]);
    expect(context.maxExisting).toBe(3);
  });

  test("a release beyond the configured sizes destroys the surplus", async () => {
    const { context, pool } = makePool({ clean: 1, dirty: 1 });
    const acquired = await Promise.all([1, 2, 3, 4].map(() => pool.acquire("python")));
    for (const a of acquired) await pool.release(a.container, { reusable: true });
    await settle();
    expect(pool.stats().runtimes.python).toMatchObject({ clean: 2 });
    expect(context.live.size).toBe(2);
  });

  test("sequential use of a warm pool creates nothing once steady, and never a cold start", async () => {
    const { context, pool } = makePool({ clean: 1, dirty: 1 });
    await pool.prewarm(["python"]);
    for (let i = 0; i < 50; i++) {
      const a = await pool.acquire("python");
      expect(a.coldStart).toBe(false);
      await settle(2);
      await pool.release(a.container, { reusable: true });
    }
    await settle();
    expect(context.calls.create).toBeLessThanOrEqual(3);
    expect(context.live.size).toBeLessThanOrEqual(2);
  });

  test("pools are per runtime", async () => {
    const { pool } = makePool({ clean: 1, dirty: 1 });
    await pool.prewarm(["python"]);
    const node = await pool.acquire("node");
    expect(node.coldStart).toBe(true);
    expect(node.container.runtime).toBe("node");
  });
});

describe("failures are replaced, not handed out", () => {
  test("a clean container that died while idle is destroyed and another one handed out", async () => {
    const { context, pool } = await prewarmedPool({ clean: 2, dirty: 1 }, ["python"]);
    const first = context.killFirst();
    const a = await pool.acquire("python");
    expect(a.coldStart).toBe(false);
    expect(a.container.id).not.toBe(first);
    await settle();
    expect(context.live.has(first)).toBe(false);
    expect(pool.stats().runtimes.python!.clean).toBe(2);
  });

  test("a released container whose wipe fails is destroyed; the waiter gets a new one", async () => {
    const { context, pool } = makePool({ clean: 0, dirty: 1 });
    const a = await pool.acquire("python");
    const gate = deferred();
    context.wipeGate = gate.promise;
    context.wipeErrors.push(new Error("container not running"));
    await pool.release(a.container, { reusable: true }); // its wipe starts (held)
    const b = pool.acquire("python"); // covered by that wipe
    await settle();
    gate.resolve(); // the wipe fails: a create serves the waiter
    const got = await b;
    expect(got.container.id).not.toBe(a.container.id);
    expect(got.coldStart).toBe(true);
    await settle();
    expect(context.live.has(a.container.id)).toBe(false);
    expect(context.logs.some((l) => l.level === "warn" && /wiping/.test(l.message))).toBe(true);
  });

  test("a wipe that hangs past wipeTimeoutMs counts as failed", async () => {
    const { context, pool } = makePool({ clean: 0, dirty: 1 }, { healthCheckIntervalMs: 0, wipeTimeoutMs: 20 });
    const a = await pool.acquire("python");
    context.wipeGate = new Promise(() => {});
    await pool.release(a.container, { reusable: true });
    const b = await pool.acquire("python");
    expect(b.container.id).not.toBe(a.container.id);
  });

  test("a failed background create is logged and retried after a back-off; a waiter it covered gets the error", async () => {
    const { context, pool } = makePool({ clean: 1, dirty: 0 });
    // The acquisition starts a create for itself and one to refill the clean pool: both fail.
    context.createErrors.push(new Error("boom"), new Error("boom"));
    await expect(pool.acquire("python")).rejects.toThrow("boom");
    expect(context.logs.some((l) => l.level === "warn" && l.fields?.error === "Error: boom")).toBe(true);
    expect(pool.stats().runtimes.python).toMatchObject({ clean: 0, creating: 0, waiters: 0 });
    // The background refill retries after the back-off (500 ms after two failures) and succeeds.
    await expect.poll(() => pool.stats().runtimes.python!.clean, { timeout: 10_000, interval: 20 }).toBe(1);
    expect(context.calls.create).toBe(3);
  });

  test("a failed create does not fail a waiter that another create is still on its way to", async () => {
    const { context, pool } = makePool({ clean: 1, dirty: 0 });
    context.createErrors.push(new Error("transient"));
    const a = await pool.acquire("python"); // its own create fails; the refill create serves it
    expect(a.coldStart).toBe(true);
    expect(context.calls.create).toBeGreaterThanOrEqual(2);
  });

  test("back-off doubles from 250 ms up to 30 s", () => {
    expect([0, 1, 2, 3, 10, 20].map(retryDelayMs)).toEqual([0, 250, 500, 1000, 30_000, 30_000]);
  });

  test("the health sweep replaces a clean container that died", async () => {
    const { context, pool } = await prewarmedPool({ clean: 1, dirty: 1 }, ["python"], { healthCheckIntervalMs: 10, wipeTimeoutMs: 1000 });
    const first = context.killFirst();
    await expect.poll(() => context.live.has(first), { timeout: 10_000, interval: 10 }).toBe(false);
    await expect.poll(() => pool.stats().runtimes.python!.clean, { timeout: 10_000, interval: 10 }).toBe(1);
    expect([...context.live.values()].every((e) => e.running)).toBe(true);
  });
});

describe("drain", () => {
  test("destroys every container: clean, dirty, in use, and creates still in flight", async () => {
    const { context, pool } = makePool({ clean: 2, dirty: 2 });
    await pool.prewarm(["python", "node"]);
    const a = await pool.acquire("python");
    const b = await pool.acquire("python");
    await settle();
    await pool.release(a.container, { reusable: true });
    const gate = deferred();
    context.createGate = gate.promise;
    const waiting = pool.acquire("bash"); // a create in flight
    await settle();
    expect(context.creating).toBeGreaterThan(0);
    const draining = pool.drain();
    await expect(waiting).rejects.toThrow(/drained/);
    let drained = false;
    void draining.then(() => (drained = true));
    await settle();
    expect(drained).toBe(false); // still waiting for the create
    gate.resolve();
    await draining;
    expect(context.live.size).toBe(0);
    expect(context.creating).toBe(0);
    expect(pool.stats().held).toBe(0);
    // After drain: a late release destroys, an acquire or prewarm fails clearly.
    await pool.release(b.container, { reusable: true });
    await expect(pool.acquire("python")).rejects.toThrow(/drained/);
    await expect(pool.prewarm(["python"])).rejects.toThrow(/drained/);
  });

  test("a prewarm in progress is rejected by drain, and nothing is left", async () => {
    const { context, pool } = makePool({ clean: 2, dirty: 2 });
    const { started: prewarm, draining, landCreates } = await drainWhileCreatesHeld(context, pool, () => pool.prewarm(["python"]));
    await expect(prewarm).rejects.toThrow(/drained/);
    landCreates();
    await draining;
    expect(context.live.size).toBe(0);
  });

  test("drain is idempotent", async () => {
    const { context, pool } = makePool();
    await pool.prewarm(["python"]);
    expect(context.calls.create).toBe(2);
    await Promise.all([pool.drain(), pool.drain()]);
    await pool.drain();
    // Each container destroyed exactly once, nothing left, nothing created again.
    expect(context.live.size).toBe(0);
    expect(context.calls.destroy).toBe(2);
    expect(context.calls.create).toBe(2);
  });
});
