import { UnknownRuntimeError } from "./errors.js";
import { createHooks, type Hooks, type SpecContext } from "./hooks.js";
import { NamedRegistry } from "./registry.js";
import type { RuntimeDefinition } from "./runtime.js";
import type { SandboxDriver, SandboxSpec } from "./sandbox.js";
import type { ExecutionResult, NetworkLogEntry, ResolvedEngineOptions } from "./schemas.js";

/** A container the pool hands out: started, hardened, running nothing of the user's. */
export interface PooledContainer {
  readonly id: string;
  readonly runtime: string;
  readonly image: string;
  /** The container's own sandbox uid (= gid), which its code runs as; the engine sets it. */
  readonly uid?: number;
}

/** What the engine gives a pool strategy: the only way a pool touches containers. */
export interface PoolContext {
  /** Creates and starts a hardened container for the runtime. */
  create(runtime: string): Promise<PooledContainer>;
  /** Force-removes a container; never throws for one already gone. */
  destroy(container: PooledContainer): Promise<void>;
  /**
   * Returns a used container to a clean state, ready to run: every process of the sandbox user
   * killed, /sandbox, /tmp, /dev/shm and /dev/mqueue emptied, IPC objects removed, and the
   * runtime's warm start (if any) waiting. Throws when something is left (destroy it then).
   */
  wipe(container: PooledContainer): Promise<void>;
  /** Whether the container still runs. */
  isAlive(container: PooledContainer): Promise<boolean>;
  /** Configured sizes (poolSize as { clean, dirty }). */
  readonly size: { clean: number; dirty: number };
  readonly log: Logger;
}

/** What acquire gives: the container, and whether the caller had to wait for a new one. */
export interface Acquired {
  container: PooledContainer;
  /** true when no ready container was there and one was created for this acquisition. */
  coldStart: boolean;
}

export interface ContainerPool {
  acquire(runtime: string, signal?: AbortSignal): Promise<Acquired>;
  /** `reusable: false` means the container must not be handed out again (timed out, OOM, secure mode). */
  release(container: PooledContainer, state: { reusable: boolean }): Promise<void>;
  prewarm(runtimes: readonly string[]): Promise<void>;
  /** Removes every container the pool holds. */
  drain(): Promise<void>;
}

/** A pool strategy plugin registers a factory of pools. */
export type PoolStrategy = (context: PoolContext) => ContainerPool;

/** What the engine gives a driver factory when it is assembled. */
export interface DriverContext {
  readonly engineId: string;
  readonly options: ResolvedEngineOptions;
  readonly log: Logger;
}

/**
 * A driver plugin registers a factory of sandbox drivers (`kit.drivers`); an engine chooses one
 * with its `driver` option ("docker", the core's own, by default) and calls it once, when built.
 */
export type DriverFactory = (context: DriverContext) => SandboxDriver;

/** A network mode shapes the container spec; modes that need helpers (an egress proxy) start them. */
export interface NetworkModeDefinition {
  shapeSpec(spec: SandboxSpec, context: SpecContext): SandboxSpec | Promise<SandboxSpec>;
  /** Called by engine.start() when the engine uses this mode, before any container is created. */
  start?(context: NetworkModeContext): Promise<void>;
  /** Called by engine.stop(): remove what start() made (proxies, networks). */
  stop?(context: NetworkModeContext): Promise<void>;
  /** The requests a container made between two instants (for `logNetwork`), oldest first. */
  logsFor?(container: PooledContainer, window: { start: Date; end: Date }): Promise<NetworkLogEntry[]>;
  /**
   * Per sandbox, after the containerSpec hook and before the container is created: make what this
   * one sandbox needs (a network of its own). The engine creates the container from the returned
   * spec and calls `release` once that container is removed, or at once when creating it failed.
   */
  prepare?(spec: SandboxSpec, context: SpecContext): Promise<PreparedSandbox>;
}

/** What a network mode made for one sandbox. */
export interface PreparedSandbox {
  spec: SandboxSpec;
  /**
   * Called once the sandbox exists and before any program runs in it (a policy driver's mode
   * learns the sandbox's address here and tells its proxy); a throw removes the sandbox.
   */
  created?: (sandboxId: string) => Promise<void>;
  /** Undoes what prepare made; never throws (what it cannot remove, the mode's stop() removes). */
  release: () => Promise<void>;
}

export interface NetworkModeContext {
  readonly engineId: string;
  readonly options: ResolvedEngineOptions;
  /** The engine's sandbox driver (every backend call goes through it). */
  readonly driver: SandboxDriver;
  /** The image the engine runs a runtime in (a helper sandbox may reuse one, e.g. node's). */
  imageFor(runtime: string): string;
  /** The labels that mark a sandbox or network as this engine's (CONTAINER_LABELS: managed, engine, owner): the reaper and cleanup find what carries them. */
  readonly ownerLabels: Readonly<Record<string, string>>;
  readonly log: Logger;
}

/** A seccomp mode sets the spec's system-call filter. */
export interface SeccompModeDefinition {
  shapeSpec(spec: SandboxSpec, context: SpecContext): SandboxSpec | Promise<SandboxSpec>;
  /** Called by engine.start() for the mode in force, before any container: check options (a custom profile) early. */
  start?(context: NetworkModeContext): Promise<void>;
}

export interface SecurityEvent {
  type: "timeout" | "oom" | "network-blocked" | "output-truncated";
  detail: string;
}

/** One execution, as audit sinks receive it. Secrets are masked in every text field. */
export interface AuditRecord {
  executionId: string;
  engineId: string;
  /** ISO time the execution started. */
  timestamp: string;
  runtime: string;
  /** SHA-256 of the code that ran (after beforeExec taps, which may rewrite it). */
  codeSha256: string;
  exitCode: number;
  durationMs: number;
  timedOut: boolean;
  oomKilled: boolean;
  truncated: boolean;
  containerId?: string;
  metadata: Record<string, string>;
  resourceUsage?: ExecutionResult["resourceUsage"];
  networkLogs?: NetworkLogEntry[];
  securityEvents: SecurityEvent[];
  /** With audit.includeCode. */
  code?: string;
  /** With audit.includeOutput. */
  stdout?: string;
  stderr?: string;
}

/**
 * An audit sink receives every record of the engines that select it (`audit.sinks`). One sink
 * may serve several engines, so `write` may follow a `close` (by another engine's stop()). `write`
 * must not throw for a passing fault it can retry; when it does throw, the engine logs it and
 * the execution still succeeds. `close` flushes (engine.stop()).
 */
export interface AuditSink {
  write(record: AuditRecord): Promise<void>;
  close?(): Promise<void>;
}

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/**
 * The object every plugin's apply() receives: the hooks and the registries. One kit per engine.
 */
export class Kit {
  readonly hooks: Hooks = createHooks();
  readonly runtimes = new NamedRegistry<RuntimeDefinition>(
    "runtime",
    (name) => `Add a runtime plugin for "${name}" to isol8.config.ts.`,
    (name, registered) => new UnknownRuntimeError(name, registered),
  );
  readonly poolStrategies = new NamedRegistry<PoolStrategy>("pool strategy", (name) => `Add @isol8/plugin-pool-${name} to isol8.config.ts.`);
  readonly networkModes = new NamedRegistry<NetworkModeDefinition>("network mode", (name) =>
    name === "filtered" ? "Add @isol8/plugin-network-filter to isol8.config.ts." : `Add a plugin that registers network mode "${name}".`,
  );
  readonly seccompModes = new NamedRegistry<SeccompModeDefinition>("seccomp mode", () => "Add @isol8/plugin-seccomp to isol8.config.ts.");
  readonly auditSinks = new NamedRegistry<AuditSink>("audit sink", (name) => `Add @isol8/plugin-audit-${name} to isol8.config.ts.`);
  /** Sandbox backends by name; the core registers "docker". */
  readonly drivers = new NamedRegistry<DriverFactory>("driver", (name) =>
    name === "kubernetes"
      ? "Add kubernetesDriver({...}) of @isol8/plugin-driver-kubernetes to the config's plugins."
      : `Add a plugin that registers driver "${name}".`,
  );

  /** The plugin this view of the kit was given to (see forPlugin); undefined on the engine's own kit. */
  readonly plugin: string | undefined = undefined;

  constructor(readonly log: Logger) {
    // "none" and "host" need no helper process: every driver has them, so the kit provides them
    // and a trimmed build still has a safe default.
    this.networkModes.register("none", { shapeSpec: (spec) => ({ ...spec, network: { kind: "none" } }) }, "isol8:core");
    this.networkModes.register("host", { shapeSpec: (spec) => ({ ...spec, network: { kind: "host" } }) }, "isol8:core");
  }

  /**
   * The kit as one plugin sees it: the same hooks and registries, but what it registers is owned
   * by `plugin` without naming it again (`kit.runtimes.register("python", def)`), and
   * `kit.plugin` is its name (the name its taps go by).
   */
  forPlugin(plugin: string): Kit {
    const registries = new Set<unknown>([this.runtimes, this.poolStrategies, this.networkModes, this.seccompModes, this.auditSinks, this.drivers]);
    const scoped = new Map<unknown, unknown>();
    return new Proxy(this, {
      get: (target, property) => {
        if (property === "plugin") return plugin;
        const value: unknown = Reflect.get(target, property, target);
        if (registries.has(value)) {
          if (!scoped.has(value)) scoped.set(value, (value as NamedRegistry<unknown>).scoped(plugin));
          return scoped.get(value);
        }
        return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  /** Called once all plugins are applied: later registrations are refused. */
  seal(): void {
    for (const registry of [this.runtimes, this.poolStrategies, this.networkModes, this.seccompModes, this.auditSinks, this.drivers]) registry.seal();
  }
}
