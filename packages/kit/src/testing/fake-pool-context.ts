/**
 * Test helpers for plugin authors (`@isol8/kit/testing`): a Docker-free PoolContext and a bench of
 * pools over it to unit-test pool strategies, and a sample audit record to test audit sinks.
 */
import type { Acquired, ContainerPool, Logger, PoolContext, PooledContainer } from "../index.js";

export { sampleAuditRecord } from "./sample-audit-record.js";

/** A promise with its resolve/reject exposed. */
export function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every pending promise chain and zero-delay timer run. */
export async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve));
}

/**
 * A PoolContext without Docker, for unit tests of pool bookkeeping: containers are records;
 * creates and wipes can be held (gated) or made to fail; every call is counted.
 */
export class FakePoolContext implements PoolContext {
  readonly size: { clean: number; dirty: number };
  readonly logs: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
  readonly log: Logger = {
    debug: (message, fields) => this.logs.push({ level: "debug", message, fields }),
    info: (message, fields) => this.logs.push({ level: "info", message, fields }),
    warn: (message, fields) => this.logs.push({ level: "warn", message, fields }),
    error: (message, fields) => this.logs.push({ level: "error", message, fields }),
  };
  /** Containers that exist (created, not destroyed), by id, with whether they still run. */
  readonly live = new Map<string, { container: PooledContainer; running: boolean }>();
  readonly calls = { create: 0, destroy: 0, wipe: 0, isAlive: 0 };
  /** Containers that existed at once, at most (live + creates in flight). */
  maxExisting = 0;
  creating = 0;
  /** When set, creates wait for it. */
  createGate: Promise<void> | undefined;
  /** When set, wipes wait for it. */
  wipeGate: Promise<void> | undefined;
  /** Errors the next creates throw, in order. */
  readonly createErrors: Error[] = [];
  /** Errors the next wipes throw, in order. */
  readonly wipeErrors: Error[] = [];
  /** Errors the next destroys throw, in order (the container is left as it was). */
  readonly destroyErrors: Error[] = [];
  #next = 0;

  constructor(size: { clean: number; dirty: number }) {
    this.size = size;
  }

  async create(runtime: string): Promise<PooledContainer> {
    this.calls.create++;
    this.creating++;
    this.#noteExisting();
    try {
      await this.createGate;
      await Promise.resolve();
      const error = this.createErrors.shift();
      if (error) throw error;
      const container: PooledContainer = { id: `c${++this.#next}`, runtime, image: `img-${runtime}` };
      this.live.set(container.id, { container, running: true });
      return container;
    } finally {
      this.creating--;
    }
  }

  async destroy(container: PooledContainer): Promise<void> {
    this.calls.destroy++;
    await Promise.resolve();
    const error = this.destroyErrors.shift();
    if (error) throw error;
    this.live.delete(container.id);
  }

  async wipe(container: PooledContainer): Promise<void> {
    this.calls.wipe++;
    await this.wipeGate;
    await Promise.resolve();
    const error = this.wipeErrors.shift();
    if (error) throw error;
    if (!this.live.get(container.id)?.running) throw new Error(`container ${container.id} is not running`);
  }

  async isAlive(container: PooledContainer): Promise<boolean> {
    this.calls.isAlive++;
    return this.live.get(container.id)?.running === true;
  }

  /** Kills a container out of band (it stays, stopped, until destroyed). */
  kill(id: string): void {
    const entry = this.live.get(id);
    if (entry) entry.running = false;
  }

  /** Kills the oldest container that exists (see `kill`) and returns its id; throws when there is none. */
  killFirst(): string {
    const [first] = this.live.keys();
    if (first === undefined) throw new Error("FakePoolContext.killFirst: no container exists to kill");
    this.kill(first);
    return first;
  }

  #noteExisting(): void {
    this.maxExisting = Math.max(this.maxExisting, this.live.size + this.creating);
  }

  get existing(): number {
    return this.live.size + this.creating;
  }
}

/** The pool sizes a FakePoolContext is made with (poolSize as { clean, dirty }). */
export type FakePoolSize = { clean: number; dirty: number };

/** A pool strategy's class; its options type comes from the class alone (defaults may name fewer). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type PoolClass = new (context: PoolContext, options: any) => ContainerPool;

/**
 * Makes pools of one strategy, each over a fresh FakePoolContext, and drains every pool it made:
 * call `drainPools` after each test (`afterEach(drainPools)`) so no pool's timers outlive it.
 *
 * @param Pool the strategy's pool class, constructed as `new Pool(context, options)` (one built on PoolSkeleton, say).
 * @param defaultSize the size `makePool` uses when a test names none.
 * @param defaultOptions the options `makePool` and `prewarmedPool` use when a test names none.
 */
export function fakePools<C extends PoolClass>(Pool: C, defaultSize: FakePoolSize, defaultOptions: ConstructorParameters<C>[1]) {
  type P = InstanceType<C>;
  type O = ConstructorParameters<C>[1];
  const made: P[] = [];
  /** A pool of the given size and options, with the FakePoolContext it runs on. */
  const makePool = (size: FakePoolSize = defaultSize, options: O = defaultOptions): { context: FakePoolContext; pool: P } => {
    const context = new FakePoolContext(size);
    const pool = new Pool(context, options) as P;
    made.push(pool);
    return { context, pool };
  };
  /** A pool made as `makePool` does, whose `prewarm(runtimes)` has resolved. */
  const prewarmedPool = async (
    size: FakePoolSize,
    runtimes: readonly string[],
    options: O = defaultOptions,
  ): Promise<{ context: FakePoolContext; pool: P }> => {
    const bench = makePool(size, options);
    await bench.pool.prewarm(runtimes);
    return bench;
  };
  /** Drains every pool made since the last call. */
  const drainPools = async (): Promise<void> => {
    await Promise.all(made.splice(0).map((pool) => pool.drain()));
  };
  return { makePool, prewarmedPool, drainPools };
}

/**
 * Acquires `count` containers of `runtime` all at once, then releases every one with `state` and
 * lets the pool settle; resolves to what each acquisition got, in call order.
 */
export async function acquireAtOnce(pool: ContainerPool, runtime: string, count: number, state: { reusable: boolean }): Promise<Acquired[]> {
  const acquired = await Promise.all(Array.from({ length: count }, () => pool.acquire(runtime)));
  await Promise.all(acquired.map((a) => pool.release(a.container, state)));
  await settle();
  return acquired;
}

/**
 * Starts an acquisition of `runtime` while the context holds its creates, aborts it with `reason`
 * once it waits, then lets the held creates land and the pool settle. Settles as the acquisition
 * did: a pool that honours the signal rejects with `reason` while the create is still held; one
 * that ignores it keeps waiting for the create, which is then let through (rather than hang) and
 * hands the acquisition a container.
 */
export async function abortWaitingAcquisition(context: FakePoolContext, pool: ContainerPool, runtime: string, reason: Error): Promise<Acquired> {
  const gate = deferred();
  context.createGate = gate.promise;
  const controller = new AbortController();
  const acquiring = pool.acquire(runtime, controller.signal);
  try {
    await settle();
    controller.abort(reason);
    const settledWhileHeld = await Promise.race([
      acquiring.then(
        () => true,
        () => true,
      ),
      settle().then(() => false),
    ]);
    if (!settledWhileHeld) gate.resolve();
    return await acquiring;
  } finally {
    gate.resolve();
    await settle();
  }
}

/**
 * Holds the context's creates, calls `start` (an acquisition or a prewarm that needs a create),
 * lets it reach the held create, then starts `pool.drain()` while that create is in flight.
 * Returns what `start` returned (a pool that drains rejects it), the drain in progress, and
 * `landCreates`, which lets the held creates finish: a drain must wait for them.
 */
export async function drainWhileCreatesHeld<T>(
  context: FakePoolContext,
  pool: ContainerPool,
  start: () => Promise<T>,
): Promise<{ started: Promise<T>; draining: Promise<void>; landCreates: () => void }> {
  const gate = deferred();
  context.createGate = gate.promise;
  const started = start();
  await settle();
  const draining = pool.drain();
  return { started, draining, landCreates: () => gate.resolve() };
}
