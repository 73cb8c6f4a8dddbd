import { DockerIsol8, type EngineAssembly } from "@isol8/core";
import { STAGE_SPEC_LABELS, type EngineOptions, type Isol8Plugin, type PluginOption } from "@isol8/kit";

/** Labels the server adds to every container its engines create, so it (and its tests) find exactly its own. */
export const SERVER_LABELS = {
  server: "isol8.server",
  tenant: "isol8.tenant",
  session: "isol8.session",
} as const;

/** A plugin that adds labels to every sandbox an engine creates (after the core's own labels, in the neutral spec). */
export function labelsPlugin(labels: Record<string, string>): Isol8Plugin {
  const name = "isol8:server-labels";
  return {
    name,
    apply(kit) {
      kit.hooks.sandboxSpec.tap({ name, stage: STAGE_SPEC_LABELS + 1 }, (spec) => ({ ...spec, labels: { ...spec.labels, ...labels } }));
    },
  };
}

export interface EngineFactoryOptions {
  plugins: readonly PluginOption[];
  defaults: EngineOptions;
  assembly?: Omit<EngineAssembly, "plugins">;
  serverId: string;
}

/** Builds the server's engines: the config's plugins and defaults, the client's overrides, the server's labels. */
export class EngineFactory {
  readonly #options: EngineFactoryOptions;

  constructor(options: EngineFactoryOptions) {
    this.#options = options;
  }

  create(overrides: EngineOptions, labels: Record<string, string> = {}): DockerIsol8 {
    const { plugins, defaults, assembly, serverId } = this.#options;
    return new DockerIsol8(
      { ...defaults, ...overrides },
      { ...assembly, plugins: [...plugins, labelsPlugin({ [SERVER_LABELS.server]: serverId, ...labels })] },
    );
  }
}

interface ProfileEngine {
  engine: DockerIsol8;
  busy: number;
  lastUsed: number;
  starting: Promise<void>;
}

/**
 * Engines for ephemeral requests: one long-lived main engine (the defaults, with its warm pool),
 * plus one engine per distinct set of client options that differ from the defaults (an engine's
 * options fix its containers' limits). Those are kept for reuse up to `max`, least recently used
 * idle ones stopped first; an engine is never made per request.
 */
export class EphemeralEngines {
  readonly main: DockerIsol8;
  readonly #factory: EngineFactory;
  readonly #profiles = new Map<string, ProfileEngine>();
  readonly #max: number;
  readonly #idleMs: number;

  constructor(factory: EngineFactory, options: { max: number; idleMs: number }) {
    this.#factory = factory;
    this.main = factory.create({});
    this.#max = options.max;
    this.#idleMs = options.idleMs;
  }

  get size(): number {
    return this.#profiles.size;
  }

  /** The engine for these overrides, held until release() is called. */
  async acquire(profile: string, overrides: EngineOptions): Promise<{ engine: DockerIsol8; release: () => void }> {
    if (profile === "") return { engine: this.main, release: () => undefined };
    let entry = this.#profiles.get(profile);
    if (!entry) {
      const engine = this.#factory.create(overrides); // throws InvalidOptionsError for names no plugin registered
      entry = { engine, busy: 0, lastUsed: Date.now(), starting: engine.start() };
      this.#profiles.set(profile, entry);
      this.#evict();
    }
    entry.busy++;
    const held = entry;
    try {
      await held.starting;
    } catch (error) {
      held.busy--;
      if (this.#profiles.get(profile) === held) this.#profiles.delete(profile);
      void held.engine.stop().catch(() => undefined);
      throw error;
    }
    let released = false;
    return {
      engine: held.engine,
      release: () => {
        if (released) return;
        released = true;
        held.busy--;
        held.lastUsed = Date.now();
        this.#evict();
      },
    };
  }

  /** Stops idle profile engines beyond the cap, and those idle for longer than idleMs. */
  #evict(now = Date.now()): void {
    const idle = [...this.#profiles.entries()].filter(([, e]) => e.busy === 0).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    let excess = this.#profiles.size - this.#max;
    for (const [key, entry] of idle) {
      if (excess > 0 || now - entry.lastUsed > this.#idleMs) {
        this.#profiles.delete(key);
        excess--;
        void entry.engine.stop().catch(() => undefined);
      }
    }
  }

  sweep(): void {
    this.#evict();
  }

  /** Every engine, for shutdown. */
  all(): DockerIsol8[] {
    return [this.main, ...[...this.#profiles.values()].map((e) => e.engine)];
  }

  async stopAll(): Promise<void> {
    const engines = this.all();
    this.#profiles.clear();
    await Promise.allSettled(engines.map((e) => e.stop()));
  }
}
