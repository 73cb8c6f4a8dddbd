import { randomUUID } from "node:crypto";
import type Docker from "dockerode";
import {
  AdmissionDeniedError,
  EngineStoppedError,
  ExecutionError,
  InvalidOptionsError,
  InvalidRequestError,
  Isol8Error,
  NotSupportedError,
  ContextNotFoundError,
  type ContextInfo,
  type CreateContextOptions,
  createLogger,
  describeRuntimes,
  maskingLogger,
  Kit,
  engineOptionsSchema,
  executionRequestSchema,
  formatZodError,
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
  type RuntimeInfo,
  type SandboxDriver,
  type StartOptions,
  type StopReport,
  type StreamEvent,
  type ValidatedRequest,
} from "@isol8/kit";
import { DockerDriver } from "../docker/driver.js";
import { resolveImage } from "../images/derived-image.js";
import { SecretMasker } from "../output.js";
import { closeAuditSinks, tapAudit } from "./audit.js";
import { resolveLauncherMode, type LauncherMode } from "./launcher.js";
import { maskError } from "./masking.js";
import { onDemandPool } from "./on-demand-pool.js";
import { PersistentSandbox } from "./persistent.js";
import { assembleKit, checkDriverLimits, checkOptionPairs, seccompModeOf } from "./assemble.js";
import { cleanupDocker, type CleanupReport } from "../docker/cleanup.js";
import { reapOrphans, retryRemovals } from "./reaper.js";
import { prepareJob } from "./job.js";
import { runInSandbox } from "./run-in-sandbox.js";
import { resolveCodeUrl } from "./code-url.js";
import { checkOciRuntime, readCaBundle } from "./start-checks.js";
import { cancelledError, diagnoseFailure } from "./failures.js";
import { networkModeContext, tapCoreSpec } from "./sandbox-spec.js";
import { Sandboxes } from "./sandboxes.js";
import { checkStdinSource } from "./stdin-source.js";
import { Contexts } from "./contexts.js";

/** Why an ephemeral engine has no contexts. */
const CONTEXTS_NEED_PERSISTENT =
  'interpreter contexts live in a persistent sandbox: use an engine with mode: "persistent" (or a session of isol8 serve); this engine is ephemeral';

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
  /** The sandbox backend the `driver` option chose (kit.drivers): every sandbox call goes through it. */
  readonly driver: SandboxDriver;
  /** The local Docker engine, for what stays on it whatever the backend: building images (isol8 setup, build). */
  readonly docker: DockerDriver;
  readonly #launcherMode: LauncherMode;
  readonly #log: Logger;
  readonly #sandboxes: Sandboxes;
  readonly #persistent: PersistentSandbox;
  readonly #contexts: Contexts;
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
  /** The sweep of what dead engines left: start() waits for it, an execution runs beside it, stop() waits for it. */
  #reaping: Promise<void> | undefined;

  constructor(options: EngineOptions = {}, assembly: EngineAssembly = {}) {
    const parsed = engineOptionsSchema.safeParse(options ?? {});
    if (!parsed.success) throw new InvalidOptionsError(`Invalid engine options: ${formatZodError(parsed.error)}`);
    this.options = parsed.data;
    checkOptionPairs(this.options);
    this.#secrets = new SecretMasker(Object.values(this.options.secrets));
    // Every line the engine and its plugins log is masked here, so no call site can forget it.
    this.#log = maskingLogger(assembly.logger ?? createLogger({ debug: this.options.debug }), (text) => this.#secrets.maskAnyCase(text));
    this.docker = new DockerDriver(assembly.docker);
    this.kit = assembleKit(this.options, assembly.plugins ?? [], this.#log, this.docker);
    this.driver = this.kit.drivers.get(this.options.driver)({ engineId: this.id, options: this.options, log: this.#log });
    this.#launcherMode = resolveLauncherMode(this.options.launcher, process.env.ISOL8_LAUNCHER);
    this.#sandboxes = new Sandboxes({
      engineId: this.id,
      options: this.options,
      kit: this.kit,
      driver: this.driver,
      log: this.#log,
      launcherMode: this.#launcherMode,
      imageFor: (runtime) => this.imageFor(runtime),
    });
    this.#persistent = new PersistentSandbox(this.#sandboxes, this.driver, this.#log, this.options.mode);
    this.#contexts = new Contexts({ options: this.options, kit: this.kit, sandboxes: this.#sandboxes });
    tapCoreSpec(this.kit, () => this.seccompMode);
    tapAudit(this.kit, this.options, this.#secrets, this.#log);
  }

  async start(options: StartOptions = {}): Promise<void> {
    await this.#startOnce();
    await this.#reaping;
    if (options.prewarm && this.options.mode === "ephemeral" && this.#pool) {
      const runtimes = options.prewarm === true ? this.kit.runtimes.names() : (options.prewarm.runtimes ?? this.kit.runtimes.names());
      await this.#pool.prewarm(runtimes);
    }
  }

  /** One start, however many callers (first executions racing each other, or start() itself). */
  #startOnce(): Promise<void> {
    this.#stopped = false;
    this.#starting ??= this.#start().catch(async (error) => {
      this.#starting = undefined; // a later start() tries again (e.g. once Docker is up)
      await this.#releaseClaim(); // a failed start holds no claim
      throw error;
    });
    return this.#starting;
  }

  async #start(): Promise<void> {
    checkDriverLimits(this.driver, this.options, this.#launcherMode);
    await this.driver.ping();
    await this.driver.ownership?.claim(this.id); // before any sandbox: other engines' reapers see it alive
    // The reaper removes only what dead engines left, never this engine's sandboxes: the first
    // execution need not wait for its list calls (a one-shot CLI run).
    this.#reaping = reapOrphans(this.driver, this.#log, this.id).catch((error) =>
      this.#log.warn("removing what dead isol8 engines left failed", { error: String(error) }),
    );
    this.#caBundle = await readCaBundle(this.options);
    await checkOciRuntime(this.driver, this.options);
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
    this.#contexts.clear();
    const work: Promise<unknown>[] = [this.#pool?.drain() ?? Promise.resolve()];
    if (persistent && !this.options.persist) work.push(persistent.then((c) => this.#sandboxes.remove(c.id)).catch(() => undefined));
    await Promise.allSettled(work);
    // Containers whose removal failed (Docker was down) go before the network mode's networks,
    // which Docker refuses to remove while a container is attached to them.
    if (this.driver.unremoved.length) await this.driver.retryRemovals();
    await this.kit.networkModes.get(this.options.network).stop?.(this.#networkContext());
    await closeAuditSinks(this.kit, this.options);
    await this.kit.hooks.shutdown.promise(this.kit);
    await this.#releaseClaim();
    return this.#stopReport();
  }

  #releaseClaim(): Promise<void> | undefined {
    return this.driver.ownership?.release(this.id).catch((error) => this.#log.warn("claim not released (it expires)", { error: String(error) }));
  }

  /** Retries the removals that failed (Docker was down); reports, and logs, the containers still left. */
  async #stopReport(): Promise<StopReport> {
    await this.#reaping;
    return retryRemovals(this.driver, this.#log);
  }

  /** Removes what isol8 made on the local Docker engine (cleanupDocker: only what carries its labels). */
  static cleanup(options: { docker?: Docker; images?: boolean } = {}): Promise<CleanupReport> {
    return cleanupDocker(options);
  }

  #networkContext(): NetworkModeContext {
    return networkModeContext(this.id, this.options, this.driver, this.#log, (runtime) => this.imageFor(runtime));
  }

  /** The pool strategy in force: the option, else "fast" when a plugin provides it, else a fresh container per execution. */
  get poolStrategy(): string | undefined {
    return this.options.poolStrategy ?? (this.kit.poolStrategies.has("fast") ? "fast" : undefined);
  }

  /** The seccomp mode in force: the option, else "strict" when a plugin provides it, else Docker's default profile. */
  get seccompMode(): string | undefined {
    return seccompModeOf(this.kit, this.options);
  }

  #createPool(): ContainerPool {
    const strategy = this.poolStrategy ? this.kit.poolStrategies.get(this.poolStrategy) : onDemandPool;
    return strategy(this.#sandboxes.poolContext());
  }

  /**
   * The image of a runtime: the derived image `image` names in `images` (for its runtime), the
   * Docker image `image` names, or the tag `isol8 setup` builds from the runtime's recipe.
   */
  imageFor(runtime: string): string {
    return resolveImage(this.options, this.kit.runtimes, runtime);
  }

  /** The registered runtimes: name, recipe version, extensions, packages and contexts support. Needs no start. */
  async runtimes(): Promise<RuntimeInfo[]> {
    return describeRuntimes(this.kit.runtimes.values());
  }

  async execute(request: ExecutionRequest, options: ExecuteOptions = {}): Promise<ExecutionResult> {
    for await (const event of this.#run(request, options.signal, options.stdin)) {
      if (event.type === "exit") return event.result;
    }
    throw new ExecutionError("The execution ended without a result.");
  }

  async *executeStream(request: ExecutionRequest, options: ExecuteOptions = {}): AsyncIterable<StreamEvent> {
    try {
      yield* this.#run(request, options.signal, options.stdin);
    } catch (error) {
      yield { type: "error", data: this.#secrets.mask((error as Error).message), code: (error as Isol8Error).code };
    }
  }

  /**
   * Writes a file into the persistent container (binary-safe). The path must resolve inside
   * /sandbox or /tmp: `..`, absolute paths elsewhere and paths through a symbolic link are refused.
   */
  async putFile(path: string, content: Buffer | string): Promise<void> {
    await this.#persistent.putFile(path, content, this.#stopped);
  }

  /** Reads a regular file from the persistent container, byte-exact; the same path rules as putFile. */
  async getFile(path: string): Promise<Buffer> {
    return this.#persistent.getFile(path, this.options.maxOutputFileSize, this.#stopped);
  }

  /**
   * Starts an interpreter context in the persistent sandbox (creating the sandbox, for this
   * runtime, if no execution has yet): see Isol8Engine.createContext.
   */
  async createContext(options: CreateContextOptions): Promise<ContextInfo> {
    const generation = await this.#contextsReady("createContext");
    return this.#contexts.createIn(this.#persistent, options, () => generation === this.#generation);
  }

  async listContexts(): Promise<ContextInfo[]> {
    await this.#contextsReady("listContexts");
    return this.#persistent.withLock(async (container) => (container ? this.#contexts.list(container.id) : []));
  }

  async restartContext(id: string): Promise<ContextInfo> {
    await this.#contextsReady("restartContext");
    return this.#persistent.withLock((container) => this.#contexts.restart(id, container));
  }

  async deleteContext(id: string): Promise<void> {
    await this.#contextsReady("deleteContext");
    return this.#persistent.withLock((container) => this.#contexts.delete(id, container));
  }

  /** Contexts need a persistent engine, started and not stopped; resolves with the engine's generation. */
  async #contextsReady(method: string): Promise<number> {
    if (this.options.mode !== "persistent") throw new NotSupportedError(`${method}(): ${CONTEXTS_NEED_PERSISTENT}`);
    if (this.#stopped) throw new EngineStoppedError(`${method}() was called after stop(); nothing was run`);
    const generation = this.#generation;
    if (!this.#started) await this.#startOnce();
    if (generation !== this.#generation) throw new EngineStoppedError(`stop() was called while ${method}() was starting; nothing was run`);
    return generation;
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
  async *#run(rawRequest: ExecutionRequest, signal?: AbortSignal, stdin?: ExecuteOptions["stdin"]): AsyncGenerator<StreamEvent> {
    if (this.#stopped) throw new EngineStoppedError();
    const generation = this.#generation;
    if (!this.#started) await this.#startOnce();
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
      const stdinSource = checkStdinSource(stdin, rawRequest?.stdin);
      // Code from a URL is fetched (and its hash checked) here, so every hook sees the code that runs.
      const validated = this.#validate(rawRequest);
      if (validated.context !== undefined && this.options.mode !== "persistent") throw new NotSupportedError(`request.context: ${CONTEXTS_NEED_PERSISTENT}`);
      let request = await resolveCodeUrl(validated, this.options.codeUrl, abort.signal);
      request = await this.kit.hooks.beforeExec.promise(request, ctx);
      ctx.request = request;
      const runtime = this.kit.runtimes.get(request.runtime);
      const image = this.imageFor(request.runtime);
      const denial = await this.kit.hooks.beforeAcquire.promise(
        { runtime: request.runtime, image, mode: this.options.mode, metadata: request.metadata ?? {} },
        ctx,
      );
      if (denial) throw new AdmissionDeniedError(denial.reason);
      if (request.context !== undefined) {
        // No sandbox yet: no context either (none is made just to say so).
        if (!this.#persistent.exists) throw new ContextNotFoundError(request.context);
        const cellDeps = { options: this.options, kit: this.kit, log: this.#log };
        const { container } = await this.#acquire(request.runtime, abort.signal, generation);
        acquired = container;
        yield* this.#contexts.cellIn(this.#persistent, container, cellDeps, request, ctx);
        return;
      }

      const job = await prepareJob(runtime, request, this.options);
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
      yield* runInSandbox(deps, container, { ...job, request, coldStart, ctx, ...(stdinSource && { stdinSource }) });
    } catch (caught) {
      // A cancelled run keeps its own error; any other is checked for its real cause. Either way
      // its message is masked: it may quote a secret (a plugin's error, a path the program chose).
      const error = maskError(
        this.#secrets,
        abort.signal.aborted
          ? cancelledError(caught, generation !== this.#generation)
          : await diagnoseFailure(caught, {
              driver: this.driver,
              sandboxes: this.#sandboxes,
              persistent: this.options.mode === "persistent",
              container: acquired,
            }),
      );
      if (error instanceof Error) this.kit.hooks.failed.call(error, ctx);
      throw error;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.#running.delete(abort);
      abort.abort();
    }
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
}
