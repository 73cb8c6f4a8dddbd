import { afterEach, describe, expect, test } from "vitest";
import type { Acquired, PoolContext, PooledContainer } from "../kit.js";
import { deferred, FakePoolContext, settle } from "../testing/fake-pool-context.js";
import { PoolSkeleton, poolRetryDelayMs } from "./pool-skeleton.js";

/** The smallest policy: reusable releases are wiped (wipeTimeoutMs), the rest destroyed; `keep` ready at rest. */
class TestPool extends PoolSkeleton {
  readonly #keep: number;
  readonly #wipeTimeoutMs: number;

  constructor(context: PoolContext, policy: { keep: number; wipeTimeoutMs?: number; healthCheckIntervalMs?: number }) {
    super(context, { healthCheckIntervalMs: policy.healthCheckIntervalMs ?? 0, readyPhrase: "an idle container" });
    this.#keep = policy.keep;
    this.#wipeTimeoutMs = policy.wipeTimeoutMs ?? 10_000;
  }

  async release(container: PooledContainer, { reusable }: { reusable: boolean }): Promise<void> {
    if (reusable && !this.draining && this.holds(container)) this.wipeForReuse(container, this.#wipeTimeoutMs);
    else this.destroy(container);
  }

  protected get keepReady(): number {
    return this.#keep;
  }

  stats() {
    return this.counts();
  }
}

/** A policy under which every waiter reports a cold start, whatever served it. */
class AlwaysColdPool extends TestPool {
  protected override coldStartOf(): boolean {
    return true;
  }
}

const pools: PoolSkeleton[] = [];
function makePool(size: { clean: number; dirty: number }, policy: ConstructorParameters<typeof TestPool>[1], Pool = TestPool) {
  const context = new FakePoolContext(size);
  const pool = new Pool(context, policy);
  pools.push(pool);
  return { context, pool };
}

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.drain()));
});

test("poolRetryDelayMs: none before a failure, then 250 ms doubling, at most 30 s", () => {
  expect([0, 1, 2, 3, 4, 8, 9, 30].map(poolRetryDelayMs)).toEqual([0, 250, 500, 1000, 2000, 30_000, 30_000, 30_000]);
});

describe("waiters", () => {
  test("are served oldest first, each with a container of its own", async () => {
    const { context, pool } = makePool({ clean: 0, dirty: 0 }, { keep: 0 });
    const gate = deferred();
    context.createGate = gate.promise;
    const order: string[] = [];
    const acquisitions = ["first", "second", "third"].map((name) => pool.acquire("python").then((a) => (order.push(name), a)));
    await settle();
    expect(pool.stats().runtimes.python).toEqual({ ready: 0, wiping: 0, creating: 3, waiters: 3 });
    gate.resolve();
    const acquired = await Promise.all(acquisitions);
    expect(order).toEqual(["first", "second", "third"]);
    expect(new Set(acquired.map((a) => a.container.id)).size).toBe(3);
    expect(pool.stats()).toMatchObject({ inUse: 3, held: 3, handedOut: 3 });
  });

  test("a failed create rejects the newest waiter it was covering; the older one keeps its place and gets the next container", async () => {
    const { context, pool } = makePool({ clean: 0, dirty: 0 }, { keep: 0 });
    context.createErrors.push(new Error("boom"));
    const older = pool.acquire("python");
    const newer = pool.acquire("python");
    await expect(newer).rejects.toThrow("boom");
    const got = await older;
    expect(got.coldStart).toBe(true);
    expect(context.live.has(got.container.id)).toBe(true);
    expect(context.calls.create).toBe(2);
  });
});

describe("delivery", () => {
  test("a container delivered beyond keepReady is destroyed as surplus; those within it are kept ready", async () => {
    const { context, pool } = makePool({ clean: 0, dirty: 0 }, { keep: 1 });
    const [a, b] = await Promise.all([pool.acquire("python"), pool.acquire("python")]);
    await pool.release(a!.container, { reusable: true });
    await pool.release(b!.container, { reusable: true });
    await settle();
    expect(context.calls.wipe).toBe(2);
    expect(pool.stats()).toMatchObject({ runtimes: { python: { ready: 1, wiping: 0 } }, held: 1, inUse: 0 });
    expect(context.live.size).toBe(1);
    expect(context.calls.destroy).toBe(1);
  });

  test("by default a waiter a wipe serves is no cold start, a waiter a create serves is one", async () => {
    const { context, pool } = makePool({ clean: 0, dirty: 0 }, { keep: 0 });
    const a = await pool.acquire("python");
    expect(a.coldStart).toBe(true);
    const gate = deferred();
    context.wipeGate = gate.promise;
    await pool.release(a.container, { reusable: true });
    const b = pool.acquire("python"); // covered by the wipe in flight: no create starts
    await settle();
    expect(pool.stats().runtimes.python).toMatchObject({ wiping: 1, creating: 0, waiters: 1 });
    gate.resolve();
    expect(await b).toEqual({ container: a.container, coldStart: false });
  });

  test("a policy's coldStartOf decides what a waiter reports", async () => {
    const { context, pool } = makePool({ clean: 0, dirty: 0 }, { keep: 0 }, AlwaysColdPool);
    const a = await pool.acquire("python");
    const gate = deferred();
    context.wipeGate = gate.promise;
    await pool.release(a.container, { reusable: true });
    const b = pool.acquire("python");
    await settle();
    gate.resolve();
    expect(await b).toEqual({ container: a.container, coldStart: true });
  });
});

describe("wipeForReuse", () => {
  test("a wipe that fails destroys the container with a warning naming the wipe; a create serves the waiter", async () => {
    const { context, pool } = makePool({ clean: 0, dirty: 0 }, { keep: 1 });
    const a = await pool.acquire("python");
    const gate = deferred();
    context.wipeGate = gate.promise;
    context.wipeErrors.push(new Error("residue left"));
    await pool.release(a.container, { reusable: true });
    const b = pool.acquire("python");
    await settle();
    expect(context.calls.create).toBe(1); // only a's: the waiter is covered by the wipe
    gate.resolve();
    const got = await b;
    expect(got.container.id).not.toBe(a.container.id);
    expect(got.coldStart).toBe(true);
    await settle();
    expect(context.live.has(a.container.id)).toBe(false);
    expect(context.logs).toContainEqual({
      level: "warn",
      message: "wiping a pool container failed; destroying it",
      fields: { runtime: "python", containerId: a.container.id, error: "Error: residue left" },
    });
  });

  test("a wipe that outlasts its timeout counts as failed", async () => {
    const { context, pool } = makePool({ clean: 0, dirty: 0 }, { keep: 1, wipeTimeoutMs: 20 });
    const a = await pool.acquire("python");
    context.wipeGate = new Promise(() => {});
    await pool.release(a.container, { reusable: true });
    const b = await pool.acquire("python");
    expect(b.container.id).not.toBe(a.container.id);
    await expect.poll(() => context.live.has(a.container.id), { timeout: 10_000, interval: 10 }).toBe(false);
    const warning = context.logs.find((l) => l.message === "wiping a pool container failed; destroying it");
    expect(warning?.fields?.error).toBe("Error: the wipe took longer than 20 ms");
  });
});

describe("background work", () => {
  test("a failed destroy is a warning, never a thrown error, an unhandled rejection or an error-level log", async () => {
    const { context, pool } = makePool({ clean: 0, dirty: 0 }, { keep: 0 });
    const a = await pool.acquire("python");
    context.destroyErrors.push(new Error("engine busy"));
    await pool.release(a.container, { reusable: false });
    await settle();
    expect(context.calls.destroy).toBe(1);
    expect(context.logs).toContainEqual({
      level: "warn",
      message: "destroying a pool container failed",
      fields: { containerId: a.container.id, error: "Error: engine busy" },
    });
    expect(context.logs.filter((l) => l.level === "error")).toEqual([]);
    expect(pool.stats()).toMatchObject({ inUse: 0, held: 0 });
  });

  test("an explicit prewarm tries at once, whatever the back-off of earlier failures says", async () => {
    const { context, pool } = makePool({ clean: 1, dirty: 0 }, { keep: 1 });
    context.createErrors.push(new Error("image missing"));
    await expect(pool.prewarm(["python"])).rejects.toThrow("image missing");
    expect(context.calls.create).toBe(1);
    // The back-off now says 250 ms; the prewarm starts its create before returning.
    const again = pool.prewarm(["python"]);
    expect(context.calls.create).toBe(2);
    await again;
    expect(pool.stats().runtimes.python).toMatchObject({ ready: 1 });
  });

  test("the health sweep replaces a ready container that died, naming it as the policy words it", async () => {
    const { context, pool } = makePool({ clean: 1, dirty: 0 }, { keep: 1, healthCheckIntervalMs: 10 });
    await pool.prewarm(["python"]);
    const [first] = [...context.live.keys()];
    expect(first).toBeDefined();
    context.kill(first!);
    await expect.poll(() => context.live.has(first!), { timeout: 10_000, interval: 10 }).toBe(false);
    await expect.poll(() => pool.stats().runtimes.python!.ready, { timeout: 10_000, interval: 10 }).toBe(1);
    expect(context.logs).toContainEqual({
      level: "warn",
      message: "an idle container is gone; replacing it",
      fields: { runtime: "python", containerId: first },
    });
  });
});

describe("drain", () => {
  test("destroys a container whose wipe is in flight at once, and waits for that wipe to end; later calls fail naming the drain", async () => {
    const { context, pool } = makePool({ clean: 0, dirty: 0 }, { keep: 1 });
    const a = await pool.acquire("python");
    const gate = deferred();
    context.wipeGate = gate.promise;
    await pool.release(a.container, { reusable: true });
    let drained = false;
    const draining = pool.drain().then(() => (drained = true));
    await settle();
    expect(context.live.has(a.container.id)).toBe(false);
    expect(drained).toBe(false);
    gate.resolve();
    await draining;
    expect(drained).toBe(true);
    expect(context.live.size).toBe(0);
    expect(pool.stats()).toMatchObject({ inUse: 0, held: 0 });
    await expect(pool.acquire("python")).rejects.toThrow("The container pool was drained: the engine is stopped.");
    await expect(pool.prewarm(["python"])).rejects.toThrow("The container pool was drained: the engine is stopped.");
  });

  test("rejects every waiter with the drain's error, then destroys what their creates made", async () => {
    const { context, pool } = makePool({ clean: 0, dirty: 0 }, { keep: 0 });
    const gate = deferred();
    context.createGate = gate.promise;
    const waiting: Promise<Acquired>[] = [pool.acquire("python"), pool.acquire("node")];
    await settle();
    const draining = pool.drain();
    expect(waiting).toHaveLength(2);
    for (const w of waiting) await expect(w).rejects.toThrow("The container pool was drained: the engine is stopping.");
    gate.resolve();
    await draining;
    expect(context.calls.create).toBe(2);
    expect(context.live.size).toBe(0);
  });
});
