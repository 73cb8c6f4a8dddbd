/** Test helpers for plugin authors: a Docker-free PoolContext to unit-test pool strategies. */
import type { Logger, PoolContext, PooledContainer } from "../index.js";

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

  #noteExisting(): void {
    this.maxExisting = Math.max(this.maxExisting, this.live.size + this.creating);
  }

  get existing(): number {
    return this.live.size + this.creating;
  }
}
