import { ExecutionError, silentLogger, type Logger, type SandboxDriver } from "@isol8/kit";
import { ExecutorConnection } from "./executor-connection.js";
import { KernelHost } from "./executor-contexts.js";
import { EXECUTOR_CAPABILITIES, EXECUTOR_PATH, type Hello } from "./executor-protocol.js";
import type { ExecutorLaunchOutcome, ExecutorLaunchRequest, MainProcess, PrepareRequest, ProcessLauncher } from "./launcher.js";
import { OomCounters } from "./oom.js";

/** The executor as a sandbox's main process, for sandbox uid (= gid) `uid` (see ExecutorLauncher.mainProcess). */
export function executorMainProcess(uid: number): MainProcess {
  return {
    command: [EXECUTOR_PATH],
    user: "0:0",
    attachStdio: true,
    capabilities: [...EXECUTOR_CAPABILITIES],
    env: { ISOL8_SANDBOX_UID: String(uid) },
    labels: { "isol8.launcher": "executor" },
  };
}

/**
 * Starts programs through the executor inside the container (packages/core/executor): one
 * attach connection per container, one round trip per execution, no exec of the backend.
 */
export class ExecutorLauncher implements ProcessLauncher {
  readonly kind = "executor";
  readonly #connections = new Map<string, ExecutorConnection>();
  readonly #kernels = new WeakMap<ExecutorConnection, KernelHost>();
  readonly #oom: OomCounters;

  /** `userOf` gives a container's sandbox user ("uid:gid"), to read its OOM counter when a run ends without a report. */
  constructor(
    private readonly driver: SandboxDriver,
    private readonly log: Logger = silentLogger,
    private readonly userOf?: (containerId: string) => string,
  ) {
    this.#oom = new OomCounters(driver);
  }

  /**
   * The executor is the main process: uid 0 holding only CAP_SETUID, CAP_SETGID and CAP_SETPCAP,
   * which it needs to start each program as the sandbox user with no capability at all. Its stdin
   * and stdout are the channel the engine talks over; the sandbox user can neither signal nor
   * read it. It takes (and removes from its environment) the container's sandbox uid.
   */
  mainProcess(uid: number): MainProcess {
    return executorMainProcess(uid);
  }

  /** The executor's HELLO is its first write: attach before the start so it cannot be missed. */
  beforeStart(containerId: string): Promise<void> {
    return this.attach(containerId);
  }

  /** Waits for the HELLO and checks the executor runs programs as the container's own uid. */
  async afterStart(containerId: string, uid: number): Promise<void> {
    try {
      const hello = await this.ready(containerId);
      if (hello.uid !== uid || hello.gid !== uid) {
        throw new ExecutionError(
          `the executor in container ${containerId.slice(0, 12)} runs programs as ${hello.uid}:${hello.gid}, not the ${uid}:${uid} it was given`,
        );
      }
    } catch (error) {
      this.detach(containerId);
      throw error;
    }
  }

  /**
   * Attaches to a created container before it starts (so the HELLO is not missed): the
   * container must have been created with attachStdio.
   */
  async attach(containerId: string): Promise<void> {
    const stdio = await this.driver.attach(containerId);
    const connection = new ExecutorConnection(containerId, stdio, this.log, () => {
      if (this.#connections.get(containerId) === connection) this.#connections.delete(containerId);
    });
    if (connection.closed) throw new ExecutionError(`the attach connection to container ${containerId.slice(0, 12)} closed at once`);
    this.#connections.set(containerId, connection);
  }

  /** Waits for the executor's HELLO after the container started. */
  async ready(containerId: string, timeoutMs?: number): Promise<Hello> {
    return this.#connection(containerId).ready(timeoutMs);
  }

  /** Whether the container is served by an executor connection. */
  has(containerId: string): boolean {
    return this.#connections.has(containerId);
  }

  async run(containerId: string, request: ExecutorLaunchRequest): Promise<ExecutorLaunchOutcome> {
    const connection = this.#connections.get(containerId);
    if (!connection) throw new ExecutionError(`container ${containerId.slice(0, 12)} has no executor connection (it was removed, or never had an executor)`);
    const outcome = await connection.run(request);
    if (outcome.oomKills !== undefined) return { ...outcome, oomKills: outcome.oomKills };
    // No EXIT frame came (the run was aborted): read the container's counter instead.
    const user = this.userOf?.(containerId);
    return { ...outcome, oomKills: user ? await this.#oom.readSinceLastCheck(containerId, user) : 0 };
  }

  async killAll(containerId: string): Promise<void> {
    await this.#connections.get(containerId)?.killAll();
  }

  /**
   * The executor binary's wipe mode (the same steps as the exec path's, in C, no program started
   * per step), one round trip; the executor then kills whatever is left.
   */
  async wipe(containerId: string): Promise<void> {
    let output = "";
    const { exitCode, oomKills } = await this.run(containerId, {
      argv: [EXECUTOR_PATH, "--wipe"],
      env: {},
      payload: Buffer.alloc(0),
      onOutput: (_stream, chunk) => void (output = (output + chunk.toString()).slice(-2048)),
    });
    if (exitCode !== 0)
      throw new ExecutionError(`wiping container ${containerId.slice(0, 12)} left something behind (exit ${exitCode})${output ? `: ${output.trim()}` : ""}`);
    if (oomKills) throw new ExecutionError(`wiping container ${containerId.slice(0, 12)}: the OOM killer ended ${oomKills} process(es) during the wipe`);
  }

  /**
   * Starts the runtime's warm-start program in the container (PROTOCOL.md, "The standby"), for
   * the next run that asks for it. The PREPARE frame goes out at once, ahead of any later request
   * on the connection, so a caller need not wait for the answer.
   */
  async prepareWarmStart(containerId: string, request: PrepareRequest): Promise<boolean> {
    const connection = this.#connections.get(containerId);
    if (!connection) return false;
    await connection.prepare(request).catch((error) => this.log.warn("starting a warm start failed", { container: containerId, error: String(error) }));
    return true;
  }

  /** An executor's attach connection ends with its container: no backend call needed. */
  async isAlive(containerId: string): Promise<boolean> {
    return this.#connections.has(containerId) || (await this.driver.inspect(containerId))?.running === true;
  }

  /** Measures nothing but one round trip to the executor. */
  async ping(containerId: string): Promise<void> {
    await this.#connection(containerId).ping();
  }

  /** The interpreter contexts' kernels of a container (one host per executor connection). */
  kernels(containerId: string): KernelHost {
    const connection = this.#connection(containerId);
    let host = this.#kernels.get(connection);
    if (!host) {
      host = new KernelHost(connection, this.log);
      this.#kernels.set(connection, host);
    }
    return host;
  }

  /** Drops the connection (the container is being removed, or the engine stops). */
  detach(containerId: string): void {
    this.#connections.get(containerId)?.destroy();
    this.#connections.delete(containerId);
  }

  forget(containerId: string): void {
    this.detach(containerId);
    this.#oom.forget(containerId);
  }

  #connection(containerId: string): ExecutorConnection {
    const connection = this.#connections.get(containerId);
    if (!connection) throw new ExecutionError(`container ${containerId.slice(0, 12)} has no executor connection`);
    return connection;
  }
}
