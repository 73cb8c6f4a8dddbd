import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import type Docker from "dockerode";
import {
  AdmissionDeniedError,
  DockerUnavailableError,
  EngineStoppedError,
  ExecutionError,
  FileOperationError,
  InvalidOptionsError,
  InvalidRequestError,
  Isol8Error,
  SandboxGoneError,
  Kit,
  SANDBOX_DIR,
  applyPlugins,
  engineOptionsSchema,
  executionRequestSchema,
  formatZodError,
  resolvePlugins,
  type Acquired,
  type ContainerPool,
  type EngineOptions,
  type ExecContext,
  type ExecuteOptions,
  type ExecutionRequest,
  type ExecutionResult,
  type Isol8Engine,
  type Logger,
  type NetworkModeContext,
  type PluginOption,
  type PooledContainer,
  type ResolvedEngineOptions,
  type StartOptions,
  type StopReport,
  type StreamEvent,
  type ValidatedRequest,
} from "@isol8/kit";
import { createLogger, maskingLogger } from "@isol8/kit";
import { DockerDriver } from "../docker/driver.js";
import { runtimeImageTag } from "../images/tags.js";
import { SecretMasker } from "../output.js";
import { codeHash, tapAudit } from "./audit.js";
import { DockerExecLauncher } from "./exec-launcher.js";
import { ExecutorLauncher } from "./executor-launcher.js";
import { resolveLauncherMode } from "./launcher.js";
import { readSandboxFile, writeSandboxFile } from "./files.js";
import { maskError } from "./masking.js";
import { onDemandPool } from "./on-demand-pool.js";
import { checkInstall } from "./packages.js";
import { PersistentSandbox } from "./persistent.js";
import { cleanupDocker, reapOrphans, type CleanupReport } from "./reaper.js";
import { runInSandbox, STDIN_PATH } from "./run-in-sandbox.js";
import { packTar, resolveSandboxPath, type TarEntry } from "./sandbox-files.js";
import { ownerLabels, tapCoreSpec } from "./sandbox-spec.js";
import { Sandboxes, runtimeEnv } from "./sandboxes.js";

export type { CleanupReport } from "./reaper.js";

export interface EngineAssembly {
  /** Plugins that make up this engine (runtimes, pools, policies, sinks). */
  plugins?: readonly PluginOption[];
  /** A dockerode client; defaults to the local socket (DOCKER_HOST is honoured). */
  docker?: Docker;
  logger?: Logger;
}

/**
 * The engine that runs code in containers of the local Docker engine. Assembled from plugins:
 * the core knows no runtime, pool strategy, seccomp mode or audit sink by name. The rooms:
 * sandboxes.ts (create/remove, one record per sandbox), the launchers (run, kill, wipe, warm
 * start, liveness), run-in-sandbox.ts (one execution), persistent.ts, audit.ts, reaper.ts.
 */
export class DockerIsol8 implements Isol8Engine {
  readonly id = randomUUID();
  readonly options: ResolvedEngineOptions;
  readonly kit: Kit;
  readonly driver: DockerDriver;
  readonly #log: Logger;
  readonly #sandboxes: Sandboxes;
  readonly #persistent: PersistentSandbox;
  readonly #secrets: SecretMasker;
  #pool: ContainerPool | undefined;
  #started = false;
  #starting: Promise<void> | undefined;
  /** Set by stop(), cleared by start(): a stopped engine runs nothing until started again. */
  #stopped = false;
  /** Counts stop() calls: an execution that began before one (e.g. queued for the persistent container) must not run. */
  #generation = 0;
  readonly #running = new Set<AbortController>();
  #caBundle: Buffer | undefined;

  constructor(options: EngineOptions = {}, assembly: EngineAssembly = {}) {
    const parsed = engineOptionsSchema.safeParse(options ?? {});
    if (!parsed.success) throw new InvalidOptionsError(`Invalid engine options: ${formatZodError(parsed.error)}`);
    this.options = parsed.data;
    this.#secrets = new SecretMasker(Object.values(this.options.secrets));
    // Every line the engine and its plugins log is masked here, so no call site can forget it.
    this.#log = maskingLogger(assembly.logger ?? createLogger({ debug: this.options.debug }), (text) => this.#secrets.maskAnyCase(text));
    this.kit = new Kit(this.#log);
    applyPlugins(this.kit, resolvePlugins(assembly.plugins ?? []));
    this.kit.hooks.initialize.call(this.kit);
    this.kit.seal();
    this.#checkNames();
    this.driver = new DockerDriver(assembly.docker);
    const userOf = (id: string) => this.#sandboxes.userOf(id);
    this.#sandboxes = new Sandboxes({
      engineId: this.id,
      options: this.options,
      kit: this.kit,
      driver: this.driver,
      log: this.#log,
      launcherMode: resolveLauncherMode(this.options.launcher, process.env.ISOL8_LAUNCHER),
      launchers: { executor: new ExecutorLauncher(this.driver, this.#log, userOf), exec: new DockerExecLauncher(this.driver, userOf) },
      imageFor: (runtime) => this.imageFor(runtime),
    });
    this.#persistent = new PersistentSandbox(this.#sandboxes, this.#log);
    tapCoreSpec(this.kit, () => this.seccompMode);
    tapAudit(this.kit, this.options, this.#secrets, this.#log);
  }

  /** Every name an option refers to must be registered: fail at construction, naming the plugin to add. */
  #checkNames(): void {
    const o = this.options;
    try {
      this.kit.networkModes.get(o.network);
      if (o.poolStrategy) this.kit.poolStrategies.get(o.poolStrategy);
      if (o.security.seccomp) this.kit.seccompModes.get(o.security.seccomp);
      for (const sink of o.audit?.sinks ?? []) this.kit.auditSinks.get(sink);
    } catch (error) {
      if (Isol8Error.isInstance(error)) throw new InvalidOptionsError(error.message, { cause: error });
      throw error;
    }
  }

  async start(options: StartOptions = {}): Promise<void> {
    this.#stopped = false;
    // One start, however many callers (first executions racing each other, or start() itself).
    this.#starting ??= this.#start().catch((error) => {
      this.#starting = undefined; // a later start() tries again (e.g. once Docker is up)
      throw error;
    });
    await this.#starting;
    if (options.prewarm && this.options.mode === "ephemeral" && this.#pool) {
      const runtimes = options.prewarm === true ? this.kit.runtimes.names() : (options.prewarm.runtimes ?? this.kit.runtimes.names());
      await this.#pool.prewarm(runtimes);
    }
  }

  async #start(): Promise<void> {
    await this.driver.ping();
    if (this.options.caBundle) {
      this.#caBundle = await readFile(this.options.caBundle).catch((error: NodeJS.ErrnoException) => {
        throw new InvalidOptionsError(`caBundle: cannot read ${this.options.caBundle}: ${error.code === "ENOENT" ? "no such file" : error.message}`);
      });
    }
    if (this.options.ociRuntime) {
      const runtimes = await this.driver.ociRuntimes();
      if (!runtimes.includes(this.options.ociRuntime)) {
        throw new InvalidOptionsError(
          `ociRuntime: the Docker engine has no OCI runtime "${this.options.ociRuntime}" (it has ${runtimes.join(", ")}). ` +
            `For gVisor, install Debian's runsc package and register it in /etc/docker/daemon.json ("runtimes": {"runsc": {"path": "/usr/bin/runsc"}}), then reload Docker.`,
        );
      }
    }
    await reapOrphans(this.driver, this.#log);
    const seccompMode = this.seccompMode;
    if (seccompMode) await this.kit.seccompModes.get(seccompMode).start?.(this.#networkContext());
    const networkMode = this.kit.networkModes.get(this.options.network);
    await networkMode.start?.(this.#networkContext());
    try {
      await this.kit.hooks.ready.promise(this.kit);
      this.#pool = this.#createPool();
    } catch (error) {
      // Undo what the network mode made (proxies, networks): a failed start leaves nothing.
      await networkMode.stop?.(this.#networkContext()).catch(() => undefined);
      throw error;
    }
    this.#started = true;
  }

  async stop(): Promise<StopReport> {
    // From here on nothing new runs: executions waiting in line fail with EngineStoppedError.
    this.#stopped = true;
    this.#generation++;
    // A stop() that races a start() waits for it, then undoes it: nothing it made is left.
    const starting = this.#starting;
    if (!starting) return this.#stopReport();
    await starting.catch(() => undefined);
    if (this.#starting !== starting) return this.#stopReport(); // another stop() got here first
    this.#starting = undefined;
    if (!this.#started) return this.#stopReport();
    this.#started = false;
    for (const controller of this.#running) controller.abort();
    const persistent = this.#persistent.take();
    const work: Promise<unknown>[] = [this.#pool?.drain() ?? Promise.resolve()];
    if (persistent && !this.options.persist) work.push(persistent.then((c) => this.#sandboxes.remove(c.id)).catch(() => undefined));
    await Promise.allSettled(work);
    // Containers whose removal failed (Docker was down) go before the network mode's networks,
    // which Docker refuses to remove while a container is attached to them.
    if (this.driver.unremoved.length) await this.driver.retryRemovals();
    await this.kit.networkModes.get(this.options.network).stop?.(this.#networkContext());
    const sinks = (this.options.audit?.sinks ?? []).map((name) => this.kit.auditSinks.get(name));
    await Promise.allSettled(sinks.map((sink) => Promise.resolve(sink.close?.())));
    await this.kit.hooks.shutdown.promise(this.kit);
    return this.#stopReport();
  }

  /** Retries the removals that failed (Docker was down); reports, and logs, the containers still left. */
  async #stopReport(): Promise<StopReport> {
    const notRemoved = this.driver.unremoved.length ? await this.driver.retryRemovals() : [];
    if (notRemoved.length) {
      this.#log.warn("containers could not be removed (Docker does not answer); 'isol8 cleanup' removes them", { containers: notRemoved });
    }
    return { notRemoved };
  }

  /**
   * Removes every container (and network) isol8 made on this Docker engine, and with `images`
   * its images: only what carries isol8's labels, never anything else.
   */
  static cleanup(options: { docker?: Docker; images?: boolean } = {}): Promise<CleanupReport> {
    return cleanupDocker(options);
  }

  #networkContext(): NetworkModeContext {
    return {
      engineId: this.id,
      options: this.options,
      driver: this.driver,
      log: this.#log,
      imageFor: (runtime) => this.imageFor(runtime),
      ownerLabels: ownerLabels(this.id),
    };
  }

  /** The pool strategy in force: the option, else "fast" when a plugin provides it, else a fresh container per execution. */
  get poolStrategy(): string | undefined {
    return this.options.poolStrategy ?? (this.kit.poolStrategies.has("fast") ? "fast" : undefined);
  }

  /** The seccomp mode in force: the option, else "strict" when a plugin provides it, else Docker's default profile. */
  get seccompMode(): string | undefined {
    const { seccomp, seccompProfile } = this.options.security;
    if (seccomp) return seccomp;
    if (seccompProfile !== undefined && this.kit.seccompModes.has("custom")) return "custom"; // a profile given means that profile
    return this.kit.seccompModes.has("strict") ? "strict" : undefined;
  }

  #createPool(): ContainerPool {
    const size = this.options.poolSize;
    const strategy = this.poolStrategy ? this.kit.poolStrategies.get(this.poolStrategy) : onDemandPool;
    return strategy({
      create: (runtime) => this.#sandboxes.create(runtime),
      destroy: (container) => this.#sandboxes.remove(container.id),
      // Clean means ready to run: wiped, and the runtime's warm start (if any) waiting.
      wipe: (container) => this.#sandboxes.wipe(container),
      isAlive: (container) => this.#sandboxes.isAlive(container),
      size: typeof size === "number" ? { clean: size, dirty: size } : (size ?? { clean: 1, dirty: 1 }),
      log: this.#log,
    });
  }

  /** The image of a runtime: the `image` option, or the tag `isol8 setup` builds from the runtime's recipe. */
  imageFor(runtime: string): string {
    return this.options.image ?? runtimeImageTag(this.kit.runtimes.get(runtime));
  }

  async execute(request: ExecutionRequest, options: ExecuteOptions = {}): Promise<ExecutionResult> {
    for await (const event of this.#run(request, options.signal)) {
      if (event.type === "exit") return event.result;
    }
    throw new ExecutionError("The execution ended without a result.");
  }

  async *executeStream(request: ExecutionRequest, options: ExecuteOptions = {}): AsyncIterable<StreamEvent> {
    try {
      yield* this.#run(request, options.signal);
    } catch (error) {
      yield { type: "error", data: this.#secrets.mask((error as Error).message), code: (error as Isol8Error).code };
    }
  }

  /**
   * Writes a file into the persistent container (binary-safe). The path must resolve inside
   * /sandbox or /tmp: `..`, absolute paths elsewhere and paths through a symbolic link are refused.
   */
  async putFile(path: string, content: Buffer | string): Promise<void> {
    const target = resolveSandboxPath(path, "putFile path");
    await this.#withPersistent("putFile", (c) => writeSandboxFile(this.driver, c.id, this.#sandboxes.userOf(c.id), path, target, content));
  }

  /** Reads a regular file from the persistent container, byte-exact; the same path rules as putFile. */
  async getFile(path: string): Promise<Buffer> {
    const target = resolveSandboxPath(path, "getFile path");
    return this.#withPersistent("getFile", (c) =>
      readSandboxFile(this.driver, c.id, this.#sandboxes.userOf(c.id), path, target, this.options.maxOutputFileSize),
    );
  }

  #withPersistent<T>(method: string, work: (container: PooledContainer) => Promise<T>): Promise<T> {
    if (this.options.mode !== "persistent") {
      throw new FileOperationError(`${method}() works only in persistent mode (mode: "persistent"): an ephemeral engine keeps no container between executions.`);
    }
    if (this.#stopped) throw new EngineStoppedError(`${method}() was called after stop(); nothing was run`);
    return this.#persistent.withSandbox(method, work);
  }

  #validate(request: ExecutionRequest): ValidatedRequest {
    const parsed = executionRequestSchema.safeParse(request);
    if (!parsed.success) throw new InvalidRequestError(`Invalid execution request: ${formatZodError(parsed.error, "request")}`);
    return parsed.data;
  }

  /**
   * The one pipeline: validate → beforeExec → runtime → beforeAcquire → acquire → run (output
   * through masking, onOutput and the cap) → outputPaths → release → afterExec. `execute`
   * collects its events, `executeStream` yields them.
   */
  async *#run(rawRequest: ExecutionRequest, signal?: AbortSignal): AsyncGenerator<StreamEvent> {
    if (this.#stopped) throw new EngineStoppedError();
    const generation = this.#generation;
    if (!this.#started) await this.start();
    if (!this.#started || generation !== this.#generation) throw new EngineStoppedError("stop() was called while this execution was starting; nothing was run");
    const abort = new AbortController();
    if (signal?.aborted) throw new ExecutionError("The execution was aborted before it started.");
    const onAbort = () => abort.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#running.add(abort);
    const executionId = randomUUID();
    const ctx: ExecContext = { executionId, engineId: this.id, options: this.options, signal: abort.signal };
    let acquired: PooledContainer | undefined;
    try {
      let request = this.#validate(rawRequest);
      request = await this.kit.hooks.beforeExec.promise(request, ctx);
      ctx.request = request;
      const runtime = this.kit.runtimes.get(request.runtime);
      const image = this.imageFor(request.runtime);
      const denial = await this.kit.hooks.beforeAcquire.promise({ runtime: request.runtime, image, mode: this.options.mode, metadata: request.metadata ?? {} }, ctx);
      if (denial) throw new AdmissionDeniedError(denial.reason);

      const codePath = `${SANDBOX_DIR}/main${request.fileExtension ?? runtime.extensions[0] ?? ""}`;
      const entries: TarEntry[] = [{ path: codePath, content: request.code }];
      for (const [path, content] of Object.entries(request.files ?? {})) entries.push({ path: resolveSandboxPath(path, `request.files["${path}"]`), content });
      if (request.stdin !== undefined) entries.push({ path: STDIN_PATH, content: request.stdin, mode: 0o600 });
      const outputPaths = (request.outputPaths ?? []).map((p, i) => resolveSandboxPath(p, `request.outputPaths[${i}]`));
      const install = request.installPackages?.length ? checkInstall(runtime, request.installPackages, this.options) : undefined;
      const payload = await packTar(entries);

      const { container, coldStart } = await this.#acquire(request.runtime, abort.signal, generation);
      acquired = container;
      const deps = {
        options: this.options,
        kit: this.kit,
        driver: this.driver,
        sandboxes: this.#sandboxes,
        secrets: this.#secrets,
        log: this.#log,
        caBundle: this.#caBundle,
        release: (c: PooledContainer, reusable: boolean) => this.#release(c, reusable),
      };
      yield* runInSandbox(deps, container, { request, coldStart, runtimeEnv: runtimeEnv(runtime), argv: runtime.command(codePath), payload, outputPaths, install, ctx });
    } catch (caught) {
      // A cancelled run keeps its own error; any other is checked for its real cause. Either way
      // its message is masked: it may quote a secret (a plugin's error, a path the program chose).
      const error = maskError(this.#secrets, abort.signal.aborted ? this.#cancelled(caught, generation) : await this.#diagnose(caught, acquired));
      if (error instanceof Error) this.kit.hooks.failed.call(error, ctx);
      throw error;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.#running.delete(abort);
      abort.abort();
    }
  }

  /**
   * The error of a cancelled run: stop() during it says so (whatever the step it interrupted
   * threw: a pool's drain, an AbortError), a caller's abort keeps the run's typed error, and
   * anything untyped becomes an ExecutionError.
   */
  #cancelled(error: unknown, generation: number): unknown {
    if (generation !== this.#generation) {
      return Isol8Error.isInstance(error) && error.code === "ISOL8_ERR_ENGINE_STOPPED"
        ? error
        : new EngineStoppedError("stop() was called during this execution; the program and every process it started were killed", { cause: error });
    }
    if (Isol8Error.isInstance(error)) return error;
    return new ExecutionError("The execution was aborted; the program and every process it started were killed.", { cause: error });
  }

  /**
   * Names the real cause of a run that failed in the engine (not a typed refusal): the Docker
   * engine that stopped answering (rather than the container), or a persistent session's
   * container that is gone (killed or removed from outside; #release has removed what was left).
   */
  async #diagnose(error: unknown, container: PooledContainer | undefined): Promise<unknown> {
    if (Isol8Error.isInstance(error) && error.code !== "ISOL8_ERR_EXECUTION") return error;
    const detail = error instanceof Error ? error.message : String(error);
    if (!(await this.driver.answers())) return new DockerUnavailableError(`it stopped answering during the execution: ${detail}`, { cause: error });
    if (container && this.options.mode === "persistent" && !(await this.#sandboxes.isRunning(container.id))) {
      return new SandboxGoneError(container.id, `it stopped running: killed or removed outside isol8; ${detail}`, { cause: error });
    }
    return error;
  }

  async #acquire(runtime: string, signal: AbortSignal, generation: number): Promise<Acquired> {
    // One thing at a time in the persistent container: an execution holds it until released.
    if (this.options.mode === "persistent") return this.#persistent.acquire(runtime, signal, () => generation === this.#generation);
    const acquired = await this.#pool!.acquire(runtime, signal);
    if (generation !== this.#generation) {
      await this.#pool!.release(acquired.container, { reusable: false }).catch(() => undefined);
      throw new EngineStoppedError("stop() was called while this execution waited for a container; nothing was run");
    }
    return acquired;
  }

  async #release(container: PooledContainer, reusable: boolean): Promise<void> {
    if (!reusable) this.#sandboxes.dropWarmStart(container);
    if (this.options.mode === "persistent") return this.#persistent.release(container, reusable);
    if (this.options.persist) return; // left running for inspection
    await this.#pool!.release(container, { reusable });
  }

  /** SHA-256 of a program's code, as audit records carry it. */
  static codeHash(code: string | Uint8Array): string {
    return codeHash(code);
  }
}
