import { describe, expect, test } from "vitest";
import type { Acquired, ContainerPool, PoolContext, PooledContainer } from "../index.js";
import { abortWaitingAcquisition, acquireAtOnce, drainWhileCreatesHeld, FakePoolContext, fakePools, sampleAuditRecord, settle } from "./fake-pool-context.js";

/** The least a pool can be: every acquisition creates, a release destroys, a drain waits for creates; it may ignore abort signals. */
class CreateEachTime implements ContainerPool {
  drains = 0;
  readonly #creates = new Set<Promise<PooledContainer>>();
  constructor(
    readonly context: PoolContext,
    readonly options: { honourAbort: boolean },
  ) {}

  async acquire(runtime: string, signal?: AbortSignal): Promise<Acquired> {
    const creating = this.#create(runtime).then((container) => ({ container, coldStart: true }));
    if (!this.options.honourAbort || !signal) return creating;
    const aborted = new Promise<never>((_, reject) => signal.addEventListener("abort", () => reject(signal.reason as Error)));
    return Promise.race([creating, aborted]);
  }

  async release(container: PooledContainer): Promise<void> {
    await this.context.destroy(container);
  }

  async prewarm(runtimes: readonly string[]): Promise<void> {
    await Promise.all(runtimes.map((runtime) => this.#create(runtime)));
  }

  async drain(): Promise<void> {
    this.drains++;
    await Promise.allSettled(this.#creates);
  }

  #create(runtime: string): Promise<PooledContainer> {
    const creating = this.context.create(runtime);
    this.#creates.add(creating);
    void creating.finally(() => this.#creates.delete(creating)).catch(() => {});
    return creating;
  }
}

describe("FakePoolContext.killFirst", () => {
  test("kills the oldest container and returns its id; with none, throws saying so", async () => {
    const context = new FakePoolContext({ clean: 1, dirty: 0 });
    expect(() => context.killFirst()).toThrow(/killFirst: no container exists/);
    const first = await context.create("python");
    await context.create("python");
    expect(context.killFirst()).toBe(first.id);
    expect(await context.isAlive(first)).toBe(false);
    expect([...context.live.values()].map((e) => e.running)).toEqual([false, true]);
  });
});

describe("fakePools", () => {
  test("makes pools with the defaults or the given size and options, and drains each one it made once", async () => {
    const { makePool, prewarmedPool, drainPools } = fakePools(CreateEachTime, { clean: 2, dirty: 1 }, { honourAbort: true });
    const a = makePool();
    expect(a.context.size).toEqual({ clean: 2, dirty: 1 });
    expect(a.pool.options).toEqual({ honourAbort: true });
    const b = await prewarmedPool({ clean: 1, dirty: 0 }, ["python", "node"], { honourAbort: false });
    expect(b.context.size).toEqual({ clean: 1, dirty: 0 });
    expect(b.pool.options).toEqual({ honourAbort: false });
    expect(b.context.calls.create).toBe(2);
    await drainPools();
    await drainPools();
    expect([a.pool.drains, b.pool.drains]).toEqual([1, 1]);
  });
});

describe("pool helpers", () => {
  test("acquireAtOnce acquires them all, releases them all, and resolves to what each got", async () => {
    const context = new FakePoolContext({ clean: 0, dirty: 0 });
    const acquired = await acquireAtOnce(new CreateEachTime(context, { honourAbort: true }), "node", 3, { reusable: true });
    expect(acquired.map((a) => a.container.id)).toEqual(["c1", "c2", "c3"]);
    expect(context.calls).toMatchObject({ create: 3, destroy: 3 });
    expect(context.live.size).toBe(0);
  });

  test("abortWaitingAcquisition rejects with the reason when the pool honours it, resolves when it does not; the held create lands either way", async () => {
    const honouring = new FakePoolContext({ clean: 0, dirty: 0 });
    await expect(abortWaitingAcquisition(honouring, new CreateEachTime(honouring, { honourAbort: true }), "python", new Error("stop"))).rejects.toThrow("stop");
    expect(honouring.live.size).toBe(1);
    const ignoring = new FakePoolContext({ clean: 0, dirty: 0 });
    const got = await abortWaitingAcquisition(ignoring, new CreateEachTime(ignoring, { honourAbort: false }), "python", new Error("stop"));
    expect(got.container.runtime).toBe("python");
    expect(ignoring.live.size).toBe(1);
  });

  test("drainWhileCreatesHeld starts the drain while the create is held; landCreates lets both finish", async () => {
    const context = new FakePoolContext({ clean: 0, dirty: 0 });
    const pool = new CreateEachTime(context, { honourAbort: false });
    const { started, draining, landCreates } = await drainWhileCreatesHeld(context, pool, () => pool.acquire("bash"));
    expect([pool.drains, context.creating]).toEqual([1, 1]);
    let drained = false;
    void draining.then(() => (drained = true));
    await settle();
    expect(drained).toBe(false);
    landCreates();
    await draining;
    expect((await started).container.runtime).toBe("bash");
  });
});

describe("sampleAuditRecord", () => {
  test("is execution exec-<n>, a bash run at the epoch that exited 0, with no output; overrides replace or add fields", () => {
    const record = sampleAuditRecord(3);
    expect(record).toMatchObject({ executionId: "exec-3", timestamp: "1970-01-01T00:00:00.000Z", runtime: "bash", exitCode: 0, securityEvents: [] });
    expect(record.stdout).toBeUndefined();
    expect(sampleAuditRecord(1, { stdout: "out", metadata: { user: "u" } })).toMatchObject({ executionId: "exec-1", stdout: "out", metadata: { user: "u" } });
  });
});
