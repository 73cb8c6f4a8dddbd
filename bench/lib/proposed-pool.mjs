// A what-if for the profile, not a product: a prototype of the cut the profile points at, so its
// gain is measured rather than guessed. Like the "fast" pool it reuses wiped containers, but it
// wipes a container as soon as it is released (instead of parking it dirty until a later acquire
// starts its wipe, which then runs during that acquire's program), and keeps all C + D
// containers clean at rest: the same number of containers as the fast pool holds.
import { importWorkspace } from "./workspace.mjs";

const { ExecutionError } = await importWorkspace("isol8");

class State {
  clean = [];
  waiters = [];
  creating = 0;
  wiping = 0;
  inUse = 0;
}

export class WipeOnReleasePool {
  #ctx;
  #states = new Map();
  #held = new Map();
  #inflight = new Set();
  #draining = false;

  constructor(ctx) {
    this.#ctx = ctx;
  }

  get #target() {
    return this.#ctx.size.clean + this.#ctx.size.dirty;
  }

  #state(runtime) {
    let s = this.#states.get(runtime);
    if (!s) this.#states.set(runtime, (s = new State()));
    return s;
  }

  async acquire(runtime) {
    if (this.#draining) throw new ExecutionError("drained");
    const s = this.#state(runtime);
    while (s.clean.length > 0) {
      const container = s.clean.shift();
      if (!(await this.#ctx.isAlive(container).catch(() => false))) {
        this.#destroy(container);
        continue;
      }
      s.inUse++;
      this.#pump(runtime);
      return { container, coldStart: false };
    }
    return new Promise((resolve, reject) => {
      s.waiters.push({ resolve, reject, needsCreate: false });
      this.#pump(runtime);
    });
  }

  async release(container, { reusable }) {
    const s = this.#state(container.runtime);
    s.inUse--;
    if (!reusable || this.#draining) {
      this.#destroy(container);
      this.#pump(container.runtime);
      return;
    }
    s.wiping++;
    this.#track(
      this.#ctx.wipe(container).then(
        () => {
          s.wiping--;
          this.#deliver(container.runtime, container, false);
        },
        () => {
          s.wiping--;
          this.#destroy(container);
          this.#pump(container.runtime);
        },
      ),
    );
  }

  async prewarm(runtimes) {
    await Promise.all(
      runtimes.map(async (runtime) => {
        const s = this.#state(runtime);
        this.#pump(runtime);
        while (s.clean.length < this.#target && !this.#draining) await new Promise((r) => setTimeout(r, 10));
      }),
    );
  }

  async drain() {
    this.#draining = true;
    for (const s of this.#states.values()) {
      for (const w of s.waiters.splice(0)) w.reject(new ExecutionError("drained"));
      s.clean.length = 0;
    }
    for (const c of [...this.#held.values()]) this.#destroy(c);
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
  }

  stats() {
    const runtimes = {};
    for (const [r, s] of this.#states) runtimes[r] = { clean: s.clean.length, dirty: 0, wiping: s.wiping, creating: s.creating, waiters: s.waiters.length };
    return { runtimes, held: this.#held.size };
  }

  #pump(runtime) {
    if (this.#draining) return;
    const s = this.#state(runtime);
    // Waiters not covered by a wipe or a create in flight get a create of their own.
    while (s.waiters.length > s.wiping + s.creating) this.#create(runtime, true);
    while (s.clean.length + s.wiping + s.creating + s.inUse < this.#target) this.#create(runtime, false);
  }

  #create(runtime, forWaiter) {
    const s = this.#state(runtime);
    s.creating++;
    if (forWaiter) s.waiters[s.waiters.length - 1].needsCreate = true;
    this.#track(
      this.#ctx.create(runtime).then(
        (c) => {
          s.creating--;
          this.#held.set(c.id, c);
          this.#deliver(runtime, c, true);
        },
        (error) => {
          s.creating--;
          s.waiters.shift()?.reject(error);
        },
      ),
    );
  }

  #deliver(runtime, container, created) {
    if (this.#draining) return this.#destroy(container);
    const s = this.#state(runtime);
    const w = s.waiters.shift();
    if (w) {
      s.inUse++;
      w.resolve({ container, coldStart: created && w.needsCreate });
    } else if (s.clean.length + s.inUse < this.#target) s.clean.push(container);
    else this.#destroy(container);
  }

  #destroy(container) {
    this.#held.delete(container.id);
    this.#track(this.#ctx.destroy(container).catch(() => undefined));
  }

  #track(promise) {
    const p = promise.finally(() => this.#inflight.delete(p));
    this.#inflight.add(p);
  }
}
