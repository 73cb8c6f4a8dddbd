import { afterEach, describe, expect, test } from "vitest";
import { Kit, silentLogger } from "@isol8/kit";
import { abortWaitingAcquisition, acquireAtOnce, deferred, drainWhileCreatesHeld, fakePools, settle } from "@isol8/kit/testing";
import { SecurePool, retryDelayMs } from "./secure-pool.js";
import { securePool } from "./index.js";

describe("the plugin", () => {
  test("registers the secure strategy under its own name", () => {
    const kit = new Kit(silentLogger);
    securePool().apply(kit);
    expect(kit.poolStrategies.owner("secure")).toBe("isol8:pool-secure");
  });

  test("bad options fail when the factory is called, naming the plugin", () => {
    expect(() => securePool({ healthCheckIntervalMs: -5 })).toThrow(/isol8:pool-secure.*healthCheckIntervalMs/s);
  });
});

const { makePool, prewarmedPool, drainPools } = fakePools(SecurePool, { clean: 2, dirty: 2 }, { healthCheckIntervalMs: 0 });
afterEach(drainPools);

describe("every acquisition gets a container no execution has used", () => {
  test("released containers are destroyed, never handed out again, whatever reusable says", async () => {
    const { context, pool } = makePool({ clean: 2, dirty: 2 });
    await pool.prewarm(["python"]);
    const seen = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const a = await pool.acquire("python");
      expect(seen.has(a.container.id)).toBe(false);
      seen.add(a.container.id);
      await pool.release(a.container, { reusable: i % 2 === 0 });
      if (i % 3 === 0) await settle();
    }
    await settle();
    expect(context.calls.wipe).toBe(0);
    for (const id of seen) expect(context.live.has(id)).toBe(false);
    expect(pool.stats().runtimes.python!.ready).toBe(2);
  });

  test("a ready container is handed out at once (no cold start); the ready pool is refilled in the background", async () => {
    const { context, pool } = makePool({ clean: 2, dirty: 0 });
    await pool.prewarm(["python"]);
    const a = await pool.acquire("python");
    expect(a.coldStart).toBe(false);
    await settle();
    expect(pool.stats().runtimes.python!.ready).toBe(2);
    expect(context.calls.create).toBe(3);
  });

  test("with none ready, acquire waits for a create: a cold start", async () => {
    const { context, pool } = makePool({ clean: 1, dirty: 0 });
    const gate = deferred();
    context.createGate = gate.promise;
    let got = false;
    const acquiring = pool.acquire("python").then((a) => ((got = true), a));
    await settle();
    expect(got).toBe(false);
    gate.resolve();
    expect((await acquiring).coldStart).toBe(true);
  });

  test("concurrent acquisitions beyond what is ready all succeed; at rest only size.clean remain", async () => {
    const { context, pool } = await prewarmedPool({ clean: 2, dirty: 2 }, ["python"]);
    const acquired = await acquireAtOnce(pool, "python", 20, { reusable: true });
    expect(new Set(acquired.map((a) => a.container.id)).size).toBe(20);
    expect(acquired.filter((a) => !a.coldStart)).toHaveLength(2);
    expect(context.live.size).toBe(2);
    expect(pool.stats()).toMatchObject({ runtimes: { python: { ready: 2, creating: 0, waiters: 0 } }, inUse: 0, held: 2, handedOut: 20 });
  });

  test("background creation never overshoots size.clean", async () => {
    const { context, pool } = makePool({ clean: 3, dirty: 3 });
    const gate = deferred();
    context.createGate = gate.promise;
    const prewarm = pool.prewarm(["python", "python"]);
    await settle();
    expect(context.creating).toBe(3);
    gate.resolve();
    await prewarm;
    expect(context.maxExisting).toBe(3);
  });

  test("prewarm fills only the runtimes named", async () => {
    const { context, pool } = makePool({ clean: 1, dirty: 0 });
    await pool.prewarm(["python", "node"]);
    expect([...context.live.values()].map((e) => e.container.runtime).sort()).toEqual(["node", "python"]);
  });
});

describe("failures are replaced, not handed out", () => {
  test("a ready container that died is destroyed and another one handed out", async () => {
    const { context, pool } = await prewarmedPool({ clean: 2, dirty: 0 }, ["python"]);
    const first = context.killFirst();
    const a = await pool.acquire("python");
    expect(a.container.id).not.toBe(first);
    await settle();
    expect(context.live.has(first)).toBe(false);
  });

  test("a failed create reaches the waiter it was for; the background retries after a back-off", async () => {
    const { context, pool } = makePool({ clean: 1, dirty: 0 });
    context.createErrors.push(new Error("boom"), new Error("boom"));
    await expect(pool.acquire("python")).rejects.toThrow("boom");
    await expect.poll(() => pool.stats().runtimes.python!.ready, { timeout: 10_000, interval: 20 }).toBe(1);
    expect(context.logs.filter((l) => l.level === "warn")).toHaveLength(2);
    expect(retryDelayMs(1)).toBe(250);
  });

  test("prewarm rejects with the create error", async () => {
    const { context, pool } = makePool({ clean: 1, dirty: 0 });
    context.createErrors.push(new Error("image missing"));
    await expect(pool.prewarm(["python"])).rejects.toThrow("image missing");
  });

  test("the health sweep replaces a ready container that died", async () => {
    const { context, pool } = await prewarmedPool({ clean: 1, dirty: 0 }, ["python"], { healthCheckIntervalMs: 10 });
    const first = context.killFirst();
    await expect.poll(() => context.live.has(first), { timeout: 10_000, interval: 10 }).toBe(false);
    await expect.poll(() => pool.stats().runtimes.python!.ready, { timeout: 10_000, interval: 10 }).toBe(1);
  });
});

describe("drain", () => {
  test("destroys ready and in-use containers and creates still in flight; later calls fail clearly", async () => {
    const { context, pool } = makePool({ clean: 2, dirty: 0 });
    await pool.prewarm(["python"]);
    const a = await pool.acquire("python");
    const { started: waiting, draining, landCreates } = await drainWhileCreatesHeld(context, pool, () => pool.acquire("node"));
    await expect(waiting).rejects.toThrow(/drained/);
    landCreates();
    await draining;
    expect(context.live.size).toBe(0);
    expect(context.creating).toBe(0);
    await pool.release(a.container, { reusable: true });
    await expect(pool.acquire("python")).rejects.toThrow(/drained/);
  });

  test("an aborted acquisition leaves the queue and its fresh container stays ready", async () => {
    const { context, pool } = makePool({ clean: 1, dirty: 0 });
    await expect(abortWaitingAcquisition(context, pool, "python", new Error("stop"))).rejects.toThrow("stop");
    expect(pool.stats().runtimes.python).toMatchObject({ ready: 1, waiters: 0 });
    expect(context.live.size).toBe(1);
  });
});
