import {
  EngineStoppedError,
  ExecutionError,
  FileOperationError,
  InvalidRequestError,
  type Acquired,
  type Logger,
  type PooledContainer,
  type ResolvedEngineOptions,
  type SandboxDriver,
} from "@isol8/kit";
import { readSandboxFile, writeSandboxFile } from "./files.js";
import { Mutex } from "./mutex.js";
import { resolveSandboxPath } from "./sandbox-files.js";
import type { Sandboxes } from "./sandboxes.js";

/**
 * The one sandbox of a `mode: "persistent"` engine: created by the first execution (which fixes
 * its runtime), kept between executions, one thing at a time in it (an execution or a file
 * operation holds it until released).
 */
export class PersistentSandbox {
  #container: Promise<PooledContainer> | undefined;
  readonly #lock = new Mutex();
  #unlock: (() => void) | undefined;

  constructor(
    private readonly sandboxes: Sandboxes,
    private readonly driver: SandboxDriver,
    private readonly log: Logger,
    private readonly mode: ResolvedEngineOptions["mode"],
  ) {}

  /**
   * Waits its turn, then gives the sandbox (creating it the first time). `stillCurrent` says
   * whether stop() was called meanwhile: then nothing is created or run.
   */
  async acquire(runtime: string, signal: AbortSignal, stillCurrent: () => boolean): Promise<Acquired> {
    const unlock = await this.#lock.acquire();
    try {
      if (!stillCurrent()) throw new EngineStoppedError("stop() was called while this execution waited for the persistent container; nothing was run");
      // Aborted while it waited in line: it must not run once its turn comes.
      if (signal.aborted) throw new ExecutionError("The execution was aborted while it waited for the persistent container; nothing was run.");
      const coldStart = this.#container === undefined;
      this.#container ??= this.sandboxes.create(runtime);
      const container = await this.#container.catch((error) => {
        this.#container = undefined;
        throw error;
      });
      if (container.runtime !== runtime) {
        throw new InvalidRequestError(`request.runtime: this persistent engine runs "${container.runtime}"; got "${runtime}". Use one engine per runtime.`);
      }
      this.#unlock = unlock;
      return { container, coldStart };
    } catch (error) {
      unlock();
      throw error;
    }
  }

  /**
   * Ends an execution's hold. The next one finds the sandbox as this one left it, with a warm
   * start (not awaited: the result goes out now; the next request waits in line). A sandbox that
   * no longer runs (killed from outside, or destroyed by the watchdog) is removed, and the next
   * execution creates a fresh one.
   */
  async release(container: PooledContainer, reusable: boolean, warmStart = true): Promise<void> {
    // A context cell or a context's start ran no program: the warm start prepared before is still there.
    if (reusable && warmStart) void this.sandboxes.prepareWarmStart(container);
    else if (!(await this.sandboxes.isRunning(container.id))) {
      this.#container = undefined;
      await this.sandboxes
        .remove(container.id)
        .catch((error) => this.log.warn("removing a dead persistent container failed; retried later", { container: container.id, error: String(error) }));
    }
    const unlock = this.#unlock;
    this.#unlock = undefined;
    unlock?.();
  }

  /** Writes a file into the sandbox, in line with executions (see DockerIsol8.putFile). */
  putFile(path: string, content: Buffer | string, engineStopped: boolean): Promise<void> {
    this.#checkFileOperation("putFile", engineStopped);
    const target = resolveSandboxPath(path, "putFile path");
    return this.#withSandbox("putFile", (c) => writeSandboxFile(this.driver, c.id, this.sandboxes.userOf(c.id), path, target, content));
  }

  /** Reads a regular file of the sandbox, at most `maxBytes`, in line with executions. */
  getFile(path: string, maxBytes: number, engineStopped: boolean): Promise<Buffer> {
    this.#checkFileOperation("getFile", engineStopped);
    const target = resolveSandboxPath(path, "getFile path");
    return this.#withSandbox("getFile", (c) => readSandboxFile(this.driver, c.id, this.sandboxes.userOf(c.id), path, target, maxBytes));
  }

  /** File operations need a persistent engine that was not stopped. */
  #checkFileOperation(method: string, engineStopped: boolean): void {
    if (this.mode !== "persistent") {
      throw new FileOperationError(
        `${method}() works only in persistent mode (mode: "persistent"): an ephemeral engine keeps no container between executions.`,
      );
    }
    if (engineStopped) throw new EngineStoppedError(`${method}() was called after stop(); nothing was run`);
  }

  async #withSandbox<T>(method: string, work: (container: PooledContainer) => Promise<T>): Promise<T> {
    if (!this.#container) {
      throw new FileOperationError(
        `${method}() needs the persistent container, which the first execute() creates (it fixes the runtime): call execute() first.`,
      );
    }
    const unlock = await this.#lock.acquire();
    try {
      return await work(await this.#container);
    } finally {
      unlock();
    }
  }

  /** Whether the first execution (or createContext) has made the sandbox. */
  get exists(): boolean {
    return this.#container !== undefined;
  }

  /** Runs `work` in line with executions, with the sandbox if there is one (it creates none). */
  async withLock<T>(work: (container: PooledContainer | undefined) => Promise<T>): Promise<T> {
    const unlock = await this.#lock.acquire();
    try {
      return await work(await this.#container?.catch(() => undefined));
    } finally {
      unlock();
    }
  }

  /** Forgets the sandbox (stop()); resolves with it, for removal, if there was one. */
  take(): Promise<PooledContainer> | undefined {
    const container = this.#container;
    this.#container = undefined;
    return container;
  }
}
