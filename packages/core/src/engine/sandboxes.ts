import { randomInt } from "node:crypto";
import {
  ExecutionError,
  ImageMissingError,
  InvalidOptionsError,
  type Kit,
  type Logger,
  type PoolContext,
  type PooledContainer,
  type ResolvedEngineOptions,
  type RuntimeDefinition,
  type SandboxDriver,
  type SpecContext,
} from "@isol8/kit";
import { DockerExecLauncher } from "./exec-launcher.js";
import { ExecutorLauncher } from "./executor-launcher.js";
import { EXECUTOR_LABEL, EXECUTOR_PROTOCOL_VERSION, SANDBOX_UID_RANGE } from "./executor-protocol.js";
import type { LauncherMode, ProcessLauncher } from "./launcher.js";
import { baseSandboxSpec } from "./sandbox-spec.js";
import { refuseExecLauncher } from "./assemble.js";

/** The environment every execution of a runtime gets before the request's own. */
export function runtimeEnv(runtime: RuntimeDefinition): Record<string, string> {
  return { ...runtime.env, ...runtime.packages?.runEnv };
}

/** Whether two environments agree on every variable the interpreter reads at start-up. */
export function sameStartupEnv(startupEnv: RegExp, a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const names = new Set([...Object.keys(a), ...Object.keys(b)].filter((name) => startupEnv.test(name)));
  for (const name of names) if (a[name] !== b[name]) return false;
  return true;
}

/** What the engine holds for one live sandbox, from its creation to its removal. */
interface SandboxRecord {
  readonly container: PooledContainer;
  /** The launcher chosen at creation: the only one that ever speaks to this sandbox. */
  readonly launcher: ProcessLauncher;
  /** Undoes what the network mode made for this sandbox (PreparedSandbox.release). */
  readonly release?: () => Promise<void>;
  /** The environment its prepared warm start was started with; the next run takes it. */
  warmEnv?: Readonly<Record<string, string>>;
  /** The backend removes it once the engine's connection closes (SandboxSpec.removeWhenDetached). */
  readonly removedWhenDetached?: boolean;
}

export interface SandboxesDeps {
  readonly engineId: string;
  readonly options: ResolvedEngineOptions;
  readonly kit: Kit;
  readonly driver: SandboxDriver;
  readonly log: Logger;
  readonly launcherMode: LauncherMode;
  imageFor(runtime: string): string;
}

/**
 * The engine's sandboxes: creates them hardened (the base spec, shaped by the sandboxSpec hook,
 * given a network by the network mode), keeps one record per live sandbox, and removes them with
 * everything made for them. Pools and the persistent session get their containers from here.
 */
export class Sandboxes {
  readonly #records = new Map<string, SandboxRecord>();
  readonly #launchers: { readonly executor: ProcessLauncher; readonly exec: ProcessLauncher };

  constructor(private readonly deps: SandboxesDeps) {
    const userOf = (id: string) => this.userOf(id);
    this.#launchers = { executor: new ExecutorLauncher(deps.driver, deps.log, userOf), exec: new DockerExecLauncher(deps.driver, userOf) };
  }

  /** The launcher of a live sandbox. */
  launcherOf(containerId: string): ProcessLauncher {
    return this.#record(containerId).launcher;
  }

  /** "uid:gid" of a sandbox's own user, for execs as that user. */
  userOf(containerId: string): string {
    const uid = this.#records.get(containerId)?.container.uid;
    if (uid === undefined) throw new ExecutionError(`container ${containerId.slice(0, 12)} is not one of this engine's live containers (no sandbox uid)`);
    return `${uid}:${uid}`;
  }

  /** Creates and starts one hardened sandbox for the runtime, its warm start (if any) waiting. */
  async create(runtime: string): Promise<PooledContainer> {
    const { options, kit, driver, engineId } = this.deps;
    const image = this.deps.imageFor(runtime);
    const usesExecutor = await this.#usesExecutor(image, runtime);
    if (!usesExecutor) refuseExecLauncher(driver, options, image);
    const launcher = usesExecutor ? this.#launchers.executor : this.#launchers.exec;
    // The sandbox's own uid: per-user kernel limits (inotify, keyrings, RLIMIT_NPROC, System V
    // IPC) are then per sandbox, and no host account shares them.
    const uid = this.#newSandboxUid();
    const context: SpecContext = { runtime, image, engineId, options };
    // endWithProcess: the executor exits when the engine's connection ends, and the backend then
    // removes the sandbox, however this process ends (killed too).
    const removedWhenDetached = options.endWithProcess && usesExecutor && driver.limits?.removeWhenDetached !== false;
    const base = baseSandboxSpec(options, image, uid, launcher.mainProcess(uid));
    const shaped = await kit.hooks.sandboxSpec.promise(removedWhenDetached ? { ...base, removeWhenDetached: true } : base, context);
    // What the network mode makes for this one sandbox (a network of its own) goes with it.
    const prepared = await kit.networkModes.get(options.network).prepare?.(shaped, context);
    try {
      const id = await driver.create(prepared?.spec ?? shaped, { beforeStart: (id) => launcher.beforeStart(id) });
      try {
        await prepared?.created?.(id);
        await launcher.afterStart(id, uid);
      } catch (error) {
        launcher.forget(id);
        await driver.remove(id).catch(() => undefined);
        throw error;
      }
      const container = { id, runtime, image, uid };
      this.#records.set(id, { container, launcher, ...(prepared && { release: prepared.release }), ...(removedWhenDetached && { removedWhenDetached }) });
      await this.prepareWarmStart(container);
      return container;
    } catch (error) {
      await prepared?.release();
      if ((error as { statusCode?: number }).statusCode === 404 && /image/i.test((error as Error).message)) throw new ImageMissingError(runtime, image);
      throw error;
    }
  }

  /**
   * Removes a sandbox, then what its network mode made for it; forgets it. One the backend
   * removes itself (removedWhenDetached) ends when its connection closes: nothing to wait for,
   * unless its network mode made something that can go only once the sandbox is gone.
   */
  async remove(containerId: string): Promise<void> {
    const record = this.#records.get(containerId);
    this.#records.delete(containerId);
    record?.launcher.forget(containerId);
    if (!record?.removedWhenDetached || record.release) await this.deps.driver.remove(containerId);
    await record?.release?.();
  }

  /** Returns a used sandbox to a clean state, its warm start waiting; throws when something is left. */
  async wipe(container: PooledContainer): Promise<void> {
    await this.launcherOf(container.id).wipe(container.id);
    await this.prepareWarmStart(container);
  }

  /** What a pool strategy gets: the only way a pool touches sandboxes. */
  poolContext(): PoolContext {
    const size = this.deps.options.poolSize;
    return {
      create: (runtime) => this.create(runtime),
      destroy: (container) => this.remove(container.id),
      // Clean means ready to run: wiped, and the runtime's warm start (if any) waiting.
      wipe: (container) => this.wipe(container),
      isAlive: (container) => this.isAlive(container),
      size: typeof size === "number" ? { clean: size, dirty: size } : (size ?? { clean: 1, dirty: 1 }),
      log: this.deps.log,
    };
  }

  /** Whether the backend reports the sandbox running (false when it cannot tell). */
  async isRunning(containerId: string): Promise<boolean> {
    return (await this.deps.driver.inspect(containerId).catch(() => undefined))?.running === true;
  }

  isAlive(container: PooledContainer): Promise<boolean> {
    return this.launcherOf(container.id).isAlive(container.id);
  }

  /**
   * Starts the runtime's warm start in a clean sandbox: the runtime's waiting program, which the
   * next execution may use instead of a fresh interpreter. Resolves when it is ready (never
   * rejects: without it a run is only slower).
   */
  async prepareWarmStart(container: PooledContainer): Promise<void> {
    const record = this.#records.get(container.id);
    const runtime = this.deps.kit.runtimes.get(container.runtime);
    if (!record || !runtime.warmStart || !this.deps.options.warmStart) return;
    // The engine's secrets are in every run's environment: the waiting program starts with them, so
    // a runtime whose start-up reads the whole environment (bun) can still take the run.
    const env = { ...runtimeEnv(runtime), ...this.deps.options.secrets };
    record.warmEnv = env;
    if (!(await record.launcher.prepareWarmStart(container.id, { argv: runtime.warmStart.command, env }))) record.warmEnv = undefined;
  }

  /** Whether the sandbox's prepared warm start can run a program with this environment (and forgets it: one run takes it). */
  takeWarmStart(container: PooledContainer, env: Readonly<Record<string, string>>): boolean {
    const record = this.#records.get(container.id);
    const prepared = record?.warmEnv;
    if (record) record.warmEnv = undefined;
    const warmStart = this.deps.kit.runtimes.get(container.runtime).warmStart;
    return prepared !== undefined && warmStart !== undefined && sameStartupEnv(warmStart.startupEnv, prepared, env);
  }

  /** A used sandbox will not be reused: its warm start must not be taken. */
  dropWarmStart(container: PooledContainer): void {
    const record = this.#records.get(container.id);
    if (record) record.warmEnv = undefined;
  }

  #record(containerId: string): SandboxRecord {
    const record = this.#records.get(containerId);
    if (!record) throw new ExecutionError(`container ${containerId.slice(0, 12)} is not one of this engine's live containers`);
    return record;
  }

  /** A sandbox uid no live sandbox of this engine has, drawn from SANDBOX_UID_RANGE. */
  #newSandboxUid(): number {
    const taken = new Set([...this.#records.values()].map((r) => r.container.uid));
    for (;;) {
      const uid = randomInt(SANDBOX_UID_RANGE.min, SANDBOX_UID_RANGE.max + 1);
      if (!taken.has(uid)) return uid;
    }
  }

  /**
   * Whether sandboxes of `image` run code through the in-container executor: never with the
   * exec launcher, always with "executor" (an image without one is an error), and with "auto"
   * when the image's isol8.executor label names this engine's protocol version.
   */
  async #usesExecutor(image: string, runtime: string): Promise<boolean> {
    const mode = this.deps.launcherMode;
    if (mode === "exec") return false;
    const labels = await this.deps.driver.imageLabels(image);
    const version = labels?.[EXECUTOR_LABEL];
    const fits = version === String(EXECUTOR_PROTOCOL_VERSION);
    if (mode === "executor" && !fits) {
      if (!labels) throw new ImageMissingError(runtime, image);
      throw new InvalidOptionsError(
        `launcher "executor": the image ${image} ${version ? `carries executor protocol ${version}; this engine speaks ${EXECUTOR_PROTOCOL_VERSION}` : `has no isol8 executor (no ${EXECUTOR_LABEL} label)`}. ` +
          `Build the images with 'isol8 setup', or use launcher "auto" (or "exec") for a custom image.`,
      );
    }
    return fits;
  }
}
