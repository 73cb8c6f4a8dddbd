import { createHash, randomInt, randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { hostname } from "node:os";
import type Docker from "dockerode";
import { DockerDriver } from "../docker/driver.js";
import {
  AdmissionDeniedError,
  DockerUnavailableError,
  EngineStoppedError,
  ExecutionError,
  FileOperationError,
  ImageMissingError,
  InvalidOptionsError,
  InvalidRequestError,
  Isol8Error,
  PackageInstallError,
  SandboxGoneError,
} from "@isol8/kit";
import type { PackageInstaller, RuntimeDefinition } from "@isol8/kit";
import type { ExecContext, SpecContext } from "@isol8/kit";
import { CONTAINER_MAIN_USER, IMAGE_LABELS, runtimeImageTag } from "../images/tags.js";
import {
  CONTAINER_LABELS,
  Kit,
  type SandboxSpec,
  type Acquired,
  type AuditRecord,
  type ContainerPool,
  type Logger,
  type NetworkModeContext,
  type PooledContainer,
  type SecurityEvent,
} from "@isol8/kit";
import { createLogger, maskingLogger } from "@isol8/kit";
import { OutputStream, SecretMasker } from "../output.js";
import { applyPlugins, resolvePlugins, type PluginOption } from "@isol8/kit";
import {
  SANDBOX_DIR,
  engineOptionsSchema,
  executionRequestSchema,
  formatZodError,
  type EngineOptions,
  type ExecutionRequest,
  type ExecutionResult,
  type NetworkLogEntry,
  type ResolvedEngineOptions,
  type StreamEvent,
  type ValidatedRequest,
} from "@isol8/kit";
import { STAGE_OBSERVE, STAGE_SPEC_LABELS, STAGE_SPEC_NETWORK, STAGE_SPEC_SECURITY } from "@isol8/kit";
import type { ExecuteOptions, Isol8Engine, StartOptions, StopReport } from "@isol8/kit";
import { DockerExecLauncher, type ProcessLauncher } from "./launcher.js";
import { ExecutorLauncher, RoutingLauncher, resolveLauncherMode, type LauncherMode } from "./executor-launcher.js";
import { EXECUTOR_CAPABILITIES, EXECUTOR_LABEL, EXECUTOR_PATH, EXECUTOR_PROTOCOL_VERSION, SANDBOX_UID_RANGE } from "./executor-protocol.js";
import { Mutex } from "./mutex.js";
import { onDemandPool } from "./on-demand-pool.js";
import { FILE_READ_DEADLINE_MS, readOutputFiles, readTarFromContainer, type FileReadLimits } from "./output-files.js";
import { packTar, resolveSandboxPath, type TarEntry } from "./sandbox-files.js";

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"; // alive, owned by someone else
  }
}

export interface CleanupReport {
  /** Containers removed. */
  removed: number;
  /** Containers (or networks, images) that could not be removed. */
  failed: number;
  errors: string[];
  removedNetworks: number;
  /** With `images: true`. */
  removedImages?: number;
}

export interface EngineAssembly {
  /** Plugins that make up this engine (runtimes, pools, policies, sinks). */
  plugins?: readonly PluginOption[];
  /** A dockerode client; defaults to the local socket (DOCKER_HOST is honoured). */
  docker?: Docker;
  logger?: Logger;
}

const STDIN_PATH = "/tmp/.isol8-stdin";
/** Threads an OCI runtime such as gVisor adds to the container's pids cgroup. */
const OCI_RUNTIME_PIDS_HEADROOM = 256;
/** How long an audit sink's write may hold the result of an execution. */
const AUDIT_WRITE_DEADLINE_MS = 5_000;
/**
 * putFile/getFile scripts (isol8's own; the path is an argument, the content comes on stdin).
 * The program may have planted symbolic links: the real path must be the path asked for.
 */
const PATH_CHECK = [
  'real=$(realpath -m -- "$1") || exit 2',
  'case "$real" in /sandbox/*|/tmp/*) ;; *) echo "$1 resolves to $real, outside /sandbox and /tmp" >&2; exit 3;; esac',
  '[ "$real" = "$1" ] || { echo "$1 goes through a symbolic link (to $real): refused" >&2; exit 3; }',
].join("\n");
const PUT_FILE_SCRIPT = `${PATH_CHECK}\ntar -x -f - -C /`;
const GET_FILE_SCRIPT = [
  '[ -e "$1" ] || [ -L "$1" ] || { echo "$1: no such file" >&2; exit 2; }',
  PATH_CHECK,
  '[ -f "$1" ] || { echo "$1 is not a regular file" >&2; exit 4; }',
  // $2: maxOutputFileSize. A file past it is never sent (a sparse file takes no space, yet reads whole).
  'size=$(stat -c %s -- "$1") || exit 4',
  '[ "$size" -le "$2" ] || { echo "$1 is $size bytes, past maxOutputFileSize ($2 bytes)" >&2; exit 5; }',
  'tar -c -f - -C / -- "${1#/}"',
].join("\n");

/**
 * Wipes a used container on the exec path, as the sandbox user, with the executor binary's wipe
 * mode (every process, every file, IPC objects, the extended attributes and ACLs a program set
 * on the roots, the roots' modes; then it checks: anything left fails the wipe). isol8's images
 * carry the binary whether or not the executor launches programs. An image without it cannot
 * be wiped completely (a shell has no portable way to list and remove extended attributes), so
 * the wipe fails and the pool destroys the container instead of reusing it.
 */
const WIPE_SCRIPT = [
  `[ -x ${EXECUTOR_PATH} ] && exec ${EXECUTOR_PATH} --wipe`,
  `echo "isol8-wipe: this image has no ${EXECUTOR_PATH} to wipe with; the container is not reused" >&2`,
  "exit 1",
].join("\n");

/** The environment every execution of a runtime gets before the request's own. */
function runtimeEnv(runtime: RuntimeDefinition): Record<string, string> {
  return { ...runtime.env, ...runtime.packages?.runEnv };
}

/** Whether two environments agree on every variable the interpreter reads at start-up. */
export function sameStartupEnv(startupEnv: RegExp, a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const names = new Set([...Object.keys(a), ...Object.keys(b)].filter((name) => startupEnv.test(name)));
  for (const name of names) if (a[name] !== b[name]) return false;
  return true;
}

/** Where the configured CA bundle is placed for package managers. */
const CA_BUNDLE_PATH = "/tmp/.isol8-ca.pem";
/** Time the engine waits after killing a timed-out program before it destroys the container. */
const KILL_GRACE_MS = 2_000;
/** Buffered stream events before the Docker stream is paused (a slow consumer's back-pressure). */
const HIGH_WATER_EVENTS = 64;

/**
 * The engine that runs code in containers of the local Docker engine. Assembled from plugins:
 * the core knows no runtime, pool strategy, seccomp mode or audit sink by name.
 */
export class DockerIsol8 implements Isol8Engine {
  readonly id = randomUUID();
  readonly options: ResolvedEngineOptions;
  readonly kit: Kit;
  readonly driver: DockerDriver;
  readonly #log: Logger;
  readonly #launcher: ProcessLauncher;
  /** The in-container executor's connections; the launcher routes a container to it when it has one. */
  readonly #executor: ExecutorLauncher;
  /** "auto": the executor when the image carries one; the option, else ISOL8_LAUNCHER, else "auto". */
  readonly #launcherMode: LauncherMode;
  #pool: ContainerPool | undefined;
  #started = false;
  #starting: Promise<void> | undefined;
  /** Set by stop(), cleared by start(): a stopped engine runs nothing until started again. */
  #stopped = false;
  /** Counts stop() calls: an execution that began before one (e.g. queued for the persistent container) must not run. */
  #generation = 0;
  #persistent: Promise<PooledContainer> | undefined;
  readonly #running = new Set<AbortController>();
  readonly #secrets: SecretMasker;
  #caBundle: Buffer | undefined;
  readonly #persistentLock = new Mutex();
  #persistentRelease: (() => void) | undefined;

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
    this.#launcherMode = resolveLauncherMode(this.options.launcher, process.env.ISOL8_LAUNCHER);
    this.#executor = new ExecutorLauncher(this.driver, this.#log);
    this.#launcher = new RoutingLauncher(this.#executor, new DockerExecLauncher(this.driver, (id) => this.#sandboxUserOf(id)));
    this.#tapContainerSpec();
    this.#tapAudit();
  }

  #auditSinks() {
    return (this.options.audit?.sinks ?? []).map((name) => ({ name, sink: this.kit.auditSinks.get(name) })).map((e) => e.sink);
  }

  /** With `audit.sinks`, every result becomes an AuditRecord sent to each sink; a failing sink is logged, never fatal. */
  #tapAudit(): void {
    const audit = this.options.audit;
    if (!audit?.sinks.length) return;
    const sinks = audit.sinks.map((name) => ({ name, sink: this.kit.auditSinks.get(name) }));
    this.kit.hooks.afterExec.tapPromise({ name: "isol8:audit", stage: STAGE_OBSERVE }, async (result, ctx) => {
      const record = this.#auditRecord(result, ctx, audit);
      // Each sink on its own: a sink that throws, or never answers, neither stops the others nor
      // holds the user's result longer than AUDIT_WRITE_DEADLINE_MS.
      await Promise.all(
        sinks.map(({ name, sink }) => {
          let timer: NodeJS.Timeout | undefined;
          const deadline = new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no answer within ${AUDIT_WRITE_DEADLINE_MS} ms`)), AUDIT_WRITE_DEADLINE_MS);
          });
          return Promise.race([Promise.resolve().then(() => sink.write(record)), deadline])
            .catch((error) => this.#log.error("an audit sink failed", { sink: name, error: this.#secrets.mask(String(error)) }))
            .finally(() => clearTimeout(timer));
        }),
      );
    });
  }

  #auditRecord(result: ExecutionResult, ctx: ExecContext, audit: NonNullable<ResolvedEngineOptions["audit"]>): AuditRecord {
    const code = ctx.request?.code ?? "";
    const events: SecurityEvent[] = [];
    if (result.timedOut) events.push({ type: "timeout", detail: "the time limit killed the program" });
    if (result.oomKilled) events.push({ type: "oom", detail: "the memory limit killed a process" });
    if (result.truncated) events.push({ type: "output-truncated", detail: `output was cut at ${this.options.maxOutputSize} bytes` });
    const mask = (text: string) => this.#secrets.mask(text);
    const networkLogs = this.#maskNetworkLogs(result.networkLogs);
    for (const entry of networkLogs ?? []) {
      if (entry.action === "BLOCK") events.push({ type: "network-blocked", detail: `${entry.method} ${entry.host}${entry.reason ? `: ${entry.reason}` : ""}` });
    }
    return {
      executionId: ctx.executionId,
      engineId: this.id,
      timestamp: result.timestamp,
      runtime: result.runtime,
      codeSha256: DockerIsol8.codeHash(code),
      exitCode: result.exitCode,
      durationMs: result.durationMs,
      timedOut: result.timedOut,
      oomKilled: result.oomKilled,
      truncated: result.truncated,
      containerId: result.containerId,
      metadata: Object.fromEntries(Object.entries(ctx.request?.metadata ?? {}).map(([key, value]) => [key, mask(value)])),
      ...(result.resourceUsage && { resourceUsage: result.resourceUsage }),
      ...(networkLogs && { networkLogs }),
      securityEvents: events.map((event) => ({ ...event, detail: this.#secrets.maskAnyCase(event.detail) })),
      ...(audit.includeCode && { code: this.#secrets.mask(typeof code === "string" ? code : Buffer.from(code).toString("utf8")) }),
      ...(audit.includeOutput && { stdout: result.stdout, stderr: result.stderr }),
    };
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

  /** The core's own shaping of every container: hardening first, network and seccomp by registry, labels last. */
  #tapContainerSpec(): void {
    const hooks = this.kit.hooks;
    const name = "isol8:core";
    hooks.sandboxSpec.tapPromise({ name, stage: STAGE_SPEC_SECURITY }, async (spec, ctx) => {
      const mode = this.seccompMode;
      return mode ? this.kit.seccompModes.get(mode).shapeSpec(spec, ctx) : spec;
    });
    hooks.sandboxSpec.tap({ name, stage: STAGE_SPEC_SECURITY }, (spec, ctx) =>
      ctx.options.ociRuntime
        ? {
            ...spec,
            ociRuntime: ctx.options.ociRuntime,
            // A user-space kernel (gVisor) runs its own threads inside the container's pids cgroup:
            // without headroom the sandbox itself dies at the limit.
            pidsLimit: spec.pidsLimit + OCI_RUNTIME_PIDS_HEADROOM,
          }
        : spec,
    );
    hooks.sandboxSpec.tapPromise({ name, stage: STAGE_SPEC_NETWORK }, async (spec, ctx) =>
      this.kit.networkModes.get(ctx.options.network).shapeSpec(spec, ctx),
    );
    hooks.sandboxSpec.tap({ name, stage: STAGE_SPEC_LABELS }, (spec, ctx) => ({
      ...spec,
      labels: {
        ...spec.labels,
        [CONTAINER_LABELS.managed]: "true",
        [CONTAINER_LABELS.engine]: ctx.engineId,
        [CONTAINER_LABELS.runtime]: ctx.runtime,
        [CONTAINER_LABELS.mode]: ctx.options.mode,
        [CONTAINER_LABELS.ownerPid]: String(process.pid),
        [CONTAINER_LABELS.ownerHost]: hostname(),
        ...(ctx.options.persist ? { [CONTAINER_LABELS.persist]: "true" } : {}),
      },
    }));
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
      const info = (await this.driver.docker.info()) as { Runtimes?: Record<string, unknown> };
      const runtimes = Object.keys(info.Runtimes ?? {});
      if (!runtimes.includes(this.options.ociRuntime)) {
        throw new InvalidOptionsError(
          `ociRuntime: the Docker engine has no OCI runtime "${this.options.ociRuntime}" (it has ${runtimes.join(", ")}). ` +
            `For gVisor, install Debian's runsc package and register it in /etc/docker/daemon.json ("runtimes": {"runsc": {"path": "/usr/bin/runsc"}}), then reload Docker.`,
        );
      }
    }
    await this.#reapOrphans();
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
    const persistent = this.#persistent;
    this.#persistent = undefined;
    const work: Promise<unknown>[] = [this.#pool?.drain() ?? Promise.resolve()];
    if (persistent && !this.options.persist) work.push(persistent.then((c) => this.#removeContainer(c.id)).catch(() => undefined));
    await Promise.allSettled(work);
    // Containers whose removal failed (Docker was down) go before the network mode's networks,
    // which Docker refuses to remove while a container is attached to them.
    if (this.driver.unremoved.length) await this.driver.retryRemovals();
    await this.kit.networkModes.get(this.options.network).stop?.(this.#networkContext());
    await Promise.allSettled(this.#auditSinks().map((sink) => Promise.resolve(sink.close?.())));
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
   * Removes containers and networks left by isol8 engines of this host whose process is gone
   * (a crash, a kill -9). Containers of `persist: true` engines are left for inspection.
   */
  async #reapOrphans(): Promise<void> {
    const host = hostname();
    const orphaned = (labels: Record<string, string> | undefined) => {
      if (!labels || labels[CONTAINER_LABELS.ownerHost] !== host || labels[CONTAINER_LABELS.persist] === "true") return false;
      const pid = Number(labels[CONTAINER_LABELS.ownerPid]);
      return Number.isInteger(pid) && pid > 0 && !processAlive(pid);
    };
    const containers = (await this.driver.listContainers({ [CONTAINER_LABELS.managed]: "true" })).filter((c) => orphaned(c.Labels));
    const networks = (await this.driver.docker.listNetworks({ filters: { label: [`${CONTAINER_LABELS.managed}=true`] } })).filter((n) => orphaned(n.Labels));
    if (containers.length === 0 && networks.length === 0) return;
    await Promise.allSettled(containers.map((c) => this.driver.removeContainer(c.Id)));
    await Promise.allSettled(networks.map((n) => this.driver.docker.getNetwork(n.Id).remove()));
    this.#log.info("reaped what dead isol8 engines left", { containers: containers.length, networks: networks.length });
  }

  /**
   * Removes every container (and network) isol8 made on this Docker engine, and with `images`
   * its images: only what carries isol8's labels, never anything else.
   */
  static async cleanup(options: { docker?: Docker; images?: boolean } = {}): Promise<CleanupReport> {
    const driver = new DockerDriver(options.docker);
    await driver.ping();
    const report: CleanupReport = { removed: 0, failed: 0, errors: [], removedNetworks: 0 };
    const attempt = async (what: string, work: () => Promise<unknown>, count: "removed" | "removedNetworks" | "removedImages") => {
      try {
        await work();
        report[count] = (report[count] ?? 0) + 1;
      } catch (error) {
        report.failed++;
        report.errors.push(`${what}: ${(error as Error).message}`);
      }
    };
    // The engine label, not isol8.managed: images carry isol8.managed too, and a container a user
    // started from an isol8 image inherits it without being isol8's.
    const containers = await driver.listContainers({ [CONTAINER_LABELS.engine]: true });
    await Promise.all(containers.map((c) => attempt(`container ${c.Id.slice(0, 12)}`, () => driver.removeContainer(c.Id), "removed")));
    const networks = await driver.docker.listNetworks({ filters: { label: [`${CONTAINER_LABELS.managed}=true`] } });
    await Promise.all(networks.map((n) => attempt(`network ${n.Name}`, () => driver.docker.getNetwork(n.Id).remove(), "removedNetworks")));
    if (options.images) {
      report.removedImages = 0;
      const images = await driver.docker.listImages({ filters: { label: [`${IMAGE_LABELS.managed}=true`] } });
      // Runtime images first: the base is their parent.
      images.sort(
        (a, b) =>
          Number(Object.keys(a.Labels ?? {}).includes(IMAGE_LABELS.runtime) ? 0 : 1) -
          Number(Object.keys(b.Labels ?? {}).includes(IMAGE_LABELS.runtime) ? 0 : 1),
      );
      for (const image of images) {
        await attempt(`image ${image.RepoTags?.[0] ?? image.Id}`, () => driver.docker.getImage(image.Id).remove({ force: true }), "removedImages");
      }
    }
    return report;
  }

  #networkContext(): NetworkModeContext {
    return {
      engineId: this.id,
      options: this.options,
      driver: this.driver,
      log: this.#log,
      imageFor: (runtime) => this.imageFor(runtime),
      ownerLabels: {
        [CONTAINER_LABELS.managed]: "true",
        [CONTAINER_LABELS.engine]: this.id,
        [CONTAINER_LABELS.ownerPid]: String(process.pid),
        [CONTAINER_LABELS.ownerHost]: hostname(),
      },
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

  /** Per container, what its network mode made for it (PreparedSandbox.release), undone when it is removed. */
  readonly #sandboxReleases = new Map<string, () => Promise<void>>();

  /** Removes a sandbox container, then what its network mode made for it. */
  async #removeContainer(id: string): Promise<void> {
    await this.driver.removeContainer(id);
    const release = this.#sandboxReleases.get(id);
    this.#sandboxReleases.delete(id);
    await release?.();
  }

  #createPool(): ContainerPool {
    const size = this.options.poolSize;
    const context = {
      create: (runtime: string) => this.#createContainer(runtime),
      destroy: (container: PooledContainer) => {
        this.#uids.delete(container.id);
        this.#oomKills.delete(container.id);
        this.#warmStarts.delete(container.id);
        return this.#removeContainer(container.id);
      },
      // Clean means ready to run: wiped, and the runtime's warm start (if any) waiting.
      wipe: async (container: PooledContainer) => {
        await this.#wipe(container);
        await this.#prepareWarmStart(container);
      },
      // An executor's attach connection ends with its container: no Docker API call needed.
      isAlive: async (container: PooledContainer) =>
        this.#executor.has(container.id) || (await this.driver.inspectContainer(container.id))?.State?.Running === true,
      size: typeof size === "number" ? { clean: size, dirty: size } : (size ?? { clean: 1, dirty: 1 }),
      log: this.#log,
    };
    const name = this.poolStrategy;
    const strategy = name ? this.kit.poolStrategies.get(name) : onDemandPool;
    return strategy(context);
  }

  /** The image of a runtime: the `image` option, or the tag `isol8 setup` builds from the runtime's recipe. */
  imageFor(runtime: string): string {
    return this.options.image ?? runtimeImageTag(this.kit.runtimes.get(runtime));
  }

  /**
   * Whether containers of `image` run code through the in-container executor: never with the
   * exec launcher, always with "executor" (an image without one is an error), and with "auto"
   * when the image's isol8.executor label names this engine's protocol version.
   */
  async #usesExecutor(image: string, runtime: string): Promise<boolean> {
    if (this.#launcherMode === "exec") return false;
    const labels = await this.driver.imageLabels(image);
    const version = labels?.[EXECUTOR_LABEL];
    const fits = version === String(EXECUTOR_PROTOCOL_VERSION);
    if (this.#launcherMode === "executor" && !fits) {
      if (!labels) throw new ImageMissingError(runtime, image);
      throw new InvalidOptionsError(
        `launcher "executor": the image ${image} ${version ? `carries executor protocol ${version}; this engine speaks ${EXECUTOR_PROTOCOL_VERSION}` : `has no isol8 executor (no ${EXECUTOR_LABEL} label)`}. ` +
          `Build the images with 'isol8 setup', or use launcher "auto" (or "exec") for a custom image.`,
      );
    }
    return fits;
  }

  /** Creates and starts one hardened container (DESIGN.md §5), shaped by the containerSpec hook. */
  async #createContainer(runtime: string): Promise<PooledContainer> {
    const image = this.imageFor(runtime);
    const o = this.options;
    const executor = await this.#usesExecutor(image, runtime);
    // The container's own sandbox uid: per-user kernel limits (inotify, keyrings, RLIMIT_NPROC,
    // System V IPC) are then per sandbox, and no host account shares them.
    const uid = this.#newSandboxUid();
    const base: SandboxSpec = {
      image,
      // The executor is the main process: uid 0 holding only CAP_SETUID, CAP_SETGID and
      // CAP_SETPCAP, which it needs to start each program as the sandbox user with no capability
      // at all (packages/core/executor). Its stdin and stdout are the channel the engine talks
      // over; the sandbox user can neither signal nor read it. Without it the container idles as
      // "nobody" and code runs in execs as the sandbox user, who cannot signal it.
      command: executor ? [EXECUTOR_PATH] : ["sleep", "infinity"],
      user: executor ? "0:0" : CONTAINER_MAIN_USER,
      attachStdio: executor,
      workdir: SANDBOX_DIR,
      // The executor takes (and removes from its environment) the container's sandbox uid.
      env: { HOME: "/sandbox", ...(executor ? { ISOL8_SANDBOX_UID: String(uid) } : {}) },
      labels: { "isol8.launcher": executor ? "executor" : "exec", [CONTAINER_LABELS.uid]: String(uid) },
      init: true,
      readonlyRootFs: o.readonlyRootFs,
      tmpfs: {
        [SANDBOX_DIR]: { sizeBytes: o.sandboxSize, mode: 0o700, owner: uid, exec: true },
        "/tmp": { sizeBytes: o.tmpSize, mode: 0o1777, exec: false },
        // The sandbox user's /etc/passwd and /etc/group entries (the image links them here;
        // root's, written at start: by the executor, or on the exec path by one exec as root).
        "/run/isol8": { sizeBytes: 1024 * 1024, mode: 0o755, exec: false },
      },
      capabilities: executor ? [...EXECUTOR_CAPABILITIES] : [],
      noNewPrivileges: true,
      memoryBytes: o.memoryLimit,
      cpus: o.cpuLimit,
      pidsLimit: o.pidsLimit,
      seccomp: { kind: "default" },
      network: { kind: "none" },
      // Program output must never land in the backend's log files on the host.
      logs: "none",
    };
    const context: SpecContext = { runtime, image, engineId: this.id, options: o };
    const shaped = await this.kit.hooks.sandboxSpec.promise(base, context);
    // What the network mode makes for this one sandbox (a network of its own) goes with the container.
    const prepared = await this.kit.networkModes.get(o.network).prepare?.(shaped, context);
    const spec = prepared?.spec ?? shaped;
    try {
      // The executor's HELLO is its first write: attach before the start so it cannot be missed.
      const id = await this.driver.create(spec, executor ? { beforeStart: (id) => this.#executor.attach(id) } : {});
      if (executor) {
        const hello = await this.#executor.ready(id).catch(async (error) => {
          this.#executor.detach(id);
          await this.driver.removeContainer(id).catch(() => undefined);
          throw error;
        });
        if (hello.uid !== uid || hello.gid !== uid) {
          this.#executor.detach(id);
          await this.driver.removeContainer(id).catch(() => undefined);
          throw new ExecutionError(
            `the executor in container ${id.slice(0, 12)} runs programs as ${hello.uid}:${hello.gid}, not the ${uid}:${uid} it was given`,
          );
        }
      } else {
        await this.#writeSandboxUser(id, uid).catch(async (error) => {
          await this.driver.removeContainer(id).catch(() => undefined);
          throw error;
        });
      }
      this.#uids.set(id, uid);
      const container = { id, runtime, image, uid };
      if (prepared) this.#sandboxReleases.set(id, prepared.release);
      await this.#prepareWarmStart(container);
      return container;
    } catch (error) {
      await prepared?.release();
      if ((error as { statusCode?: number }).statusCode === 404 && /image/i.test((error as Error).message)) {
        throw new ImageMissingError(runtime, image);
      }
      throw error;
    }
  }

  /** The sandbox uid of each live container (PooledContainer.uid), by container id. */
  readonly #uids = new Map<string, number>();

  /** A sandbox uid no live container of this engine has, drawn from SANDBOX_UID_RANGE. */
  #newSandboxUid(): number {
    const taken = new Set(this.#uids.values());
    for (;;) {
      const uid = randomInt(SANDBOX_UID_RANGE.min, SANDBOX_UID_RANGE.max + 1);
      if (!taken.has(uid)) return uid;
    }
  }

  /** "uid:gid" of a container's sandbox user, for Docker execs. */
  #sandboxUserOf(containerId: string): string {
    const uid = this.#uids.get(containerId);
    if (uid === undefined) throw new ExecutionError(`container ${containerId.slice(0, 12)} is not one of this engine's live containers (no sandbox uid)`);
    return `${uid}:${uid}`;
  }

  /**
   * The exec path's container has no root process to write the sandbox user's passwd and group
   * entries: one exec as root (no capability) runs the executor binary's `--users` mode (an image
   * without the binary keeps its own files).
   */
  async #writeSandboxUser(id: string, uid: number): Promise<void> {
    let stderr = "";
    const { exitCode } = await this.driver.exec(id, {
      argv: ["sh", "-c", `[ -x ${EXECUTOR_PATH} ] || exit 0; exec ${EXECUTOR_PATH} --users "$1"`, "isol8-users", String(uid)],
      user: "0:0",
      onOutput: (_stream, chunk) => void (stderr = (stderr + chunk.toString()).slice(-1024)),
    });
    if (exitCode !== 0)
      throw new ExecutionError(`giving the sandbox user of container ${id.slice(0, 12)} its name failed (exit ${exitCode}): ${stderr.trim()}`);
  }

  /** Per container, the environment its prepared warm start was started with; the next run takes it. */
  readonly #warmStarts = new Map<string, Readonly<Record<string, string>>>();

  /**
   * Starts the runtime's warm start in a clean container (executor PROTOCOL.md, "The standby"): it runs the
   * runtime's waiting program, which the next execution may use instead of a fresh interpreter.
   * Resolves when it is ready (never rejects: without it a run is only slower). The PREPARE frame
   * goes out at once, ahead of any later request on the connection, so a caller need not wait.
   */
  async #prepareWarmStart(container: PooledContainer): Promise<void> {
    const runtime = this.kit.runtimes.get(container.runtime);
    const warmStart = runtime.warmStart;
    if (!warmStart || !this.options.warmStart || !this.#executor.has(container.id)) return;
    const env = runtimeEnv(runtime);
    this.#warmStarts.set(container.id, env);
    await this.#executor
      .prepare(container.id, { argv: warmStart.command, env })
      .catch((error) => this.#log.warn("starting a warm start failed", { container: container.id, error: String(error) }));
  }

  /** Whether the container's prepared warm start can run a program with this environment (and forgets it: one run takes it). */
  #takeWarmStart(container: PooledContainer, env: Readonly<Record<string, string>>): boolean {
    const prepared = this.#warmStarts.get(container.id);
    this.#warmStarts.delete(container.id);
    const warmStart = this.kit.runtimes.get(container.runtime).warmStart;
    return prepared !== undefined && warmStart !== undefined && sameStartupEnv(warmStart.startupEnv, prepared, env);
  }

  /** Returns a used container to a clean state, or throws (the pool then destroys it). */
  async #wipe(container: PooledContainer): Promise<void> {
    let output = "";
    const { exitCode, oomKills }: { exitCode: number; oomKills?: number } = this.#executor.has(container.id)
      ? // The executor binary's wipe mode (the same steps in C, no program started per step), one
        // round trip; the executor then kills whatever is left.
        await this.#executor.run(container.id, {
          argv: [EXECUTOR_PATH, "--wipe"],
          env: {},
          payload: Buffer.alloc(0),
          onOutput: (_stream, chunk) => void (output = (output + chunk.toString()).slice(-2048)),
        })
      : await this.driver.exec(container.id, { argv: ["sh", "-c", WIPE_SCRIPT], user: this.#sandboxUserOf(container.id) });
    if (exitCode !== 0)
      throw new ExecutionError(`wiping container ${container.id.slice(0, 12)} left something behind (exit ${exitCode})${output ? `: ${output.trim()}` : ""}`);
    if (oomKills) throw new ExecutionError(`wiping container ${container.id.slice(0, 12)}: the OOM killer ended ${oomKills} process(es) during the wipe`);
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
    await this.#withPersistentContainer("putFile", async (container) => {
      const payload = await packTar([{ path: target, content }]);
      const { exitCode, stderr } = await this.#fileExec(container, PUT_FILE_SCRIPT, target, payload);
      if (exitCode !== 0) throw new FileOperationError(`putFile(${JSON.stringify(path)}): ${stderr.trim() || `failed (exit ${exitCode})`}`);
    });
  }

  /** Reads a regular file from the persistent container, byte-exact; the same path rules as putFile. */
  async getFile(path: string): Promise<Buffer> {
    const target = resolveSandboxPath(path, "getFile path");
    return this.#withPersistentContainer("getFile", async (container) => {
      const bound = this.options.maxOutputFileSize;
      // Bounded like outputPaths: checked in the container, and again as the tar streams in.
      const read = await readTarFromContainer(
        this.driver,
        container.id,
        this.#sandboxUserOf(container.id),
        ["sh", "-c", GET_FILE_SCRIPT, "isol8-file", target, String(bound)],
        {
          maxFileBytes: bound,
          maxTotalBytes: bound,
          deadlineMs: FILE_READ_DEADLINE_MS,
        },
      );
      const stderr = read.stderr.toString();
      if (read.omitted.length)
        throw new FileOperationError(
          `getFile(${JSON.stringify(path)}): ${target} is ${read.omitted[0]!.sizeBytes} bytes, past maxOutputFileSize (${bound} bytes)`,
        );
      if (read.abandoned) throw new FileOperationError(`getFile(${JSON.stringify(path)}): reading ${target} did not finish within ${FILE_READ_DEADLINE_MS} ms`);
      if (read.exitCode !== 0)
        throw new FileOperationError(`getFile(${JSON.stringify(path)}): ${stderr.trim().slice(-4096) || `failed (exit ${read.exitCode})`}`);
      const content = read.files.get(target);
      if (!content) throw new FileOperationError(`getFile(${JSON.stringify(path)}): the file could not be read`);
      return content;
    });
  }

  async #withPersistentContainer<T>(method: string, work: (container: PooledContainer) => Promise<T>): Promise<T> {
    if (this.options.mode !== "persistent") {
      throw new FileOperationError(
        `${method}() works only in persistent mode (mode: "persistent"): an ephemeral engine keeps no container between executions.`,
      );
    }
    if (this.#stopped) throw new EngineStoppedError(`${method}() was called after stop(); nothing was run`);
    if (!this.#persistent) {
      throw new FileOperationError(
        `${method}() needs the persistent container, which the first execute() creates (it fixes the runtime): call execute() first.`,
      );
    }
    const release = await this.#persistentLock.acquire();
    try {
      return await work(await this.#persistent);
    } finally {
      release();
    }
  }

  async #fileExec(container: PooledContainer, script: string, path: string, stdin?: Buffer): Promise<{ exitCode: number; stdout: Buffer; stderr: string }> {
    const stdout: Buffer[] = [];
    let stderr = "";
    const { exitCode } = await this.driver.exec(container.id, {
      argv: ["sh", "-c", script, "isol8-file", path],
      user: this.#sandboxUserOf(container.id),
      stdin,
      onOutput: (stream, chunk) => {
        if (stream === "stdout") stdout.push(chunk);
        else stderr = (stderr + chunk.toString()).slice(-4096);
      },
    });
    return { exitCode, stdout: Buffer.concat(stdout), stderr };
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
      const denial = await this.kit.hooks.beforeAcquire.promise(
        { runtime: request.runtime, image, mode: this.options.mode, metadata: request.metadata ?? {} },
        ctx,
      );
      if (denial) throw new AdmissionDeniedError(denial.reason);

      const codePath = `${SANDBOX_DIR}/main${request.fileExtension ?? runtime.extensions[0] ?? ""}`;
      const entries: TarEntry[] = [{ path: codePath, content: request.code }];
      for (const [path, content] of Object.entries(request.files ?? {})) entries.push({ path: resolveSandboxPath(path, `request.files["${path}"]`), content });
      if (request.stdin !== undefined) entries.push({ path: STDIN_PATH, content: request.stdin, mode: 0o600 });
      const outputPaths = (request.outputPaths ?? []).map((p, i) => resolveSandboxPath(p, `request.outputPaths[${i}]`));
      const install = request.installPackages?.length ? this.#checkInstall(runtime, request.installPackages) : undefined;
      const payload = await packTar(entries);

      const { container, coldStart } = await this.#acquire(request.runtime, abort.signal, generation);
      acquired = container;
      yield* this.#runInContainer(container, {
        request,
        coldStart,
        runtimeEnv: runtimeEnv(runtime),
        argv: runtime.command(codePath),
        payload,
        outputPaths,
        install,
        ctx,
      });
    } catch (caught) {
      // A cancelled run keeps its own error; any other is checked for its real cause. Either way
      // its message is masked: it may quote a secret (a plugin's error, a path the program chose).
      const error = this.#maskError(abort.signal.aborted ? this.#cancelled(caught, generation) : await this.#diagnose(caught, acquired));
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
   * The text fields of network logs with secrets masked, whatever their case: the proxy
   * lowercases host names (and a reason quotes the host), so a literal match would miss them.
   */
  #maskNetworkLogs(entries: NetworkLogEntry[] | undefined): NetworkLogEntry[] | undefined {
    if (!entries || !this.#secrets.active) return entries;
    const mask = (text: string) => this.#secrets.maskAnyCase(text);
    return entries.map((entry) => ({
      ...entry,
      method: mask(entry.method),
      host: mask(entry.host),
      path: entry.path === null ? null : mask(entry.path),
      ...(entry.reason !== undefined && { reason: mask(entry.reason) }),
      ...(entry.error !== undefined && { error: mask(entry.error) }),
    }));
  }

  /** Masks secrets in an error's message and stack (and its causes'), in place: callers see the same error, masked. */
  #maskError(error: unknown, depth = 0): unknown {
    if (!(error instanceof Error) || !this.#secrets.active || depth > 3) return error;
    const mask = (text: string) => this.#secrets.maskAnyCase(text);
    try {
      if (mask(error.message) !== error.message) error.message = mask(error.message);
      if (error.stack) error.stack = mask(error.stack);
    } catch {
      // a frozen error: left as it is (executeStream still masks what it sends)
    }
    this.#maskError(error.cause, depth + 1);
    return error;
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
    if (container && this.options.mode === "persistent") {
      const info = await this.driver.inspectContainer(container.id).catch(() => undefined);
      if (!info?.State?.Running) return new SandboxGoneError(container.id, `it stopped running: killed or removed outside isol8; ${detail}`, { cause: error });
    }
    return error;
  }

  async #acquire(runtime: string, signal: AbortSignal, generation: number): Promise<Acquired> {
    if (this.options.mode === "persistent") {
      // One thing at a time in the persistent container: an execution holds it until released.
      const release = await this.#persistentLock.acquire();
      try {
        // stop() was called while this execution waited in line: it must not create a container.
        if (generation !== this.#generation)
          throw new EngineStoppedError("stop() was called while this execution waited for the persistent container; nothing was run");
        // Aborted while it waited in line: it must not run once its turn comes.
        if (signal.aborted) throw new ExecutionError("The execution was aborted while it waited for the persistent container; nothing was run.");
        const coldStart = this.#persistent === undefined;
        this.#persistent ??= this.#createContainer(runtime);
        const container = await this.#persistent.catch((error) => {
          this.#persistent = undefined;
          throw error;
        });
        if (container.runtime !== runtime) {
          throw new InvalidRequestError(`request.runtime: this persistent engine runs "${container.runtime}"; got "${runtime}". Use one engine per runtime.`);
        }
        this.#persistentRelease = release;
        return { container, coldStart };
      } catch (error) {
        release();
        throw error;
      }
    }
    const acquired = await this.#pool!.acquire(runtime, signal);
    if (generation !== this.#generation) {
      await this.#pool!.release(acquired.container, { reusable: false }).catch(() => undefined);
      throw new EngineStoppedError("stop() was called while this execution waited for a container; nothing was run");
    }
    return acquired;
  }

  async #release(container: PooledContainer, reusable: boolean): Promise<void> {
    if (!reusable) this.#warmStarts.delete(container.id);
    if (this.options.mode === "persistent") {
      // The next execution finds the persistent container as this one left it, with a warm start
      // (not awaited: the result goes out now; the next execution's request waits in line).
      if (reusable) void this.#prepareWarmStart(container);
      // A container the watchdog had to destroy is replaced by the next execution.
      if (!reusable && !(await this.driver.inspectContainer(container.id).catch(() => undefined))?.State?.Running) {
        this.#persistent = undefined;
        // Dead (killed from outside, or destroyed by the watchdog): remove what is left of it.
        await this.#removeContainer(container.id).catch((error) =>
          this.#log.warn("removing a dead persistent container failed; retried later", { container: container.id, error: String(error) }),
        );
        this.#oomKills.delete(container.id);
      }
      const release = this.#persistentRelease;
      this.#persistentRelease = undefined;
      release?.();
      return;
    }
    if (this.options.persist) return; // left running for inspection
    await this.#pool!.release(container, { reusable });
  }

  async *#runInContainer(
    container: PooledContainer,
    job: {
      request: ValidatedRequest;
      coldStart: boolean;
      runtimeEnv: Readonly<Record<string, string>>;
      argv: string[];
      payload: Buffer;
      outputPaths: string[];
      install?: { installer: PackageInstaller; packages: string[] };
      ctx: ExecContext;
    },
  ): AsyncGenerator<StreamEvent> {
    const { request, ctx } = job;
    const secrets = Object.values(this.options.secrets);
    const onOutput = this.kit.hooks.onOutput;
    // outputEncoding "base64": the streams hold the bytes as latin1 text (one char per byte; the
    // onOutput hook sees that too), turned into base64 on the way out.
    const raw = request.outputEncoding === "base64";
    const textEncoding = raw ? "latin1" : "utf8";
    const streams = {
      stdout: new OutputStream(
        secrets,
        this.options.maxOutputSize,
        onOutput.isUsed() ? (data) => onOutput.call({ stream: "stdout", data }, ctx).data : undefined,
        textEncoding,
      ),
      stderr: new OutputStream(
        secrets,
        this.options.maxOutputSize,
        onOutput.isUsed() ? (data) => onOutput.call({ stream: "stderr", data }, ctx).data : undefined,
        textEncoding,
      ),
    };
    const encodeOut = (text: string) => (raw ? Buffer.from(text, "latin1").toString("base64") : text);
    const collected = { stdout: "", stderr: "" };
    const queue: StreamEvent[] = [];
    let wake: (() => void) | undefined;
    let drained: (() => void) | undefined;
    const emit = (type: "stdout" | "stderr", data: string) => {
      if (!data) return;
      collected[type] += data;
      queue.push({ type, data: encodeOut(data) });
      wake?.();
    };

    const timeoutMs = request.timeoutMs ?? this.options.timeoutMs;
    const timestamp = new Date().toISOString();
    let timedOut = false;
    let outputStopped = false;
    /** Bytes past the cap a program may still write before it is stopped. */
    const outputSlack = Math.max(16 * 1024 * 1024, 10 * this.options.maxOutputSize);
    let finished = false;
    let reusable = true;
    let released = false;
    let timer: NodeJS.Timeout | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const runAbort = new AbortController();
    const onCancel = () => runAbort.abort();
    // A signal that is already aborted never fires its listeners again.
    if (ctx.signal.aborted) runAbort.abort();
    else ctx.signal.addEventListener("abort", onCancel, { once: true });

    try {
      if (job.install) {
        const env = { ...job.runtimeEnv, ...request.env };
        await this.#installPackages(container, job.install, env, timeoutMs, runAbort.signal).catch((error) => {
          reusable = false;
          throw error;
        });
      }
      const started = performance.now();
      timer = setTimeout(() => {
        timedOut = true;
        reusable = false;
        this.#launcher.killAll(container.id).catch(() => undefined);
        // If the kill does not end the run (a stuck exec), destroy the container: the stream ends with it.
        killTimer = setTimeout(() => {
          runAbort.abort();
          this.driver.removeContainer(container.id).catch(() => undefined);
        }, KILL_GRACE_MS);
      }, timeoutMs);

      const env = { ...job.runtimeEnv, ...request.env, ...this.options.secrets };
      const run = this.#launcher
        .run(container.id, {
          argv: job.argv,
          env,
          // After an install the executor has already ended the warm start (it ran another program).
          warm: this.#takeWarmStart(container, env) && !job.install,
          payload: job.payload,
          stdinPath: request.stdin !== undefined ? STDIN_PATH : undefined,
          measureUsage: this.options.resourceUsage,
          signal: runAbort.signal,
          onOutput: (stream, chunk) => {
            emit(stream, streams[stream].push(chunk));
            if (!outputStopped && streams[stream].discarded > outputSlack) {
              // Far past the cap: the rest would be thrown away anyway, so stop the program
              // rather than spend the time limit draining it.
              outputStopped = true;
              reusable = false;
              this.#launcher.killAll(container.id).catch(() => undefined);
            }
            if (queue.length < HIGH_WATER_EVENTS) return;
            return new Promise<void>((resolve) => (drained = resolve));
          },
        })
        .finally(() => {
          finished = true;
          clearTimeout(timer);
          clearTimeout(killTimer);
          wake?.();
        });
      run.catch(() => undefined); // observed below; avoid an unhandled rejection while we yield

      while (!finished || queue.length > 0) {
        if (queue.length > 0) {
          yield queue.shift()!;
          if (queue.length < HIGH_WATER_EVENTS / 2) drained?.();
          continue;
        }
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
      const outcome = await run;
      if (runAbort.signal.aborted && !timedOut) throw new ExecutionError("The execution was aborted; the program and every process it started were killed.");
      let exitCode = outcome.exitCode;
      const durationMs = Math.round(performance.now() - started);
      emit("stdout", streams.stdout.end());
      emit("stderr", streams.stderr.end());

      let oomKilled = false;
      if (outputStopped) {
        emit("stderr", `\n[isol8] output went far past the limit of ${this.options.maxOutputSize} bytes; the program was stopped\n`);
      }
      if (timedOut) {
        exitCode = 137;
        emit(
          "stderr",
          `${collected.stderr && !collected.stderr.endsWith("\n") ? "\n" : ""}[isol8] execution timed out after ${timeoutMs} ms; the program and every process it started were killed\n`,
        );
      }
      // Any OOM kill in the container during this execution, whatever the exit code (a grandchild
      // may be the victim): both launchers count them per run; when the exec path's runner was
      // killed first (a timeout), the engine reads the counter. A container an OOM went through
      // is never handed out again.
      if (outcome.oomKillCounter !== undefined) this.#oomKills.set(container.id, outcome.oomKillCounter);
      const oomKills = outcome.oomKills ?? (await this.#oomKillsSinceLastCheck(container));
      if (oomKills > 0) {
        oomKilled = true;
        reusable = false;
        emit(
          "stderr",
          `[isol8] out of memory: the program exceeded the memory limit of ${this.options.memoryLimit} bytes; the kernel killed ${oomKills === 1 ? "a process" : `${oomKills} processes`}\n`,
        );
      }
      if (exitCode === 125 && collected.stderr.includes("isol8: could not unpack")) {
        throw new ExecutionError(`Could not deliver the code and files to the container: ${collected.stderr.trim()}`);
      }

      const read =
        job.outputPaths.length && !timedOut
          ? await readOutputFiles(this.driver, container.id, this.#sandboxUserOf(container.id), job.outputPaths, this.#fileReadLimits())
          : undefined;
      const files = read?.files;
      const networkMode = this.kit.networkModes.get(this.options.network);
      const networkLogs = this.#maskNetworkLogs(
        this.options.logNetwork && networkMode.logsFor
          ? await networkMode.logsFor(container, { start: new Date(timestamp), end: new Date() }).catch((error) => {
              this.#log.warn("reading network logs failed", { error: String(error) });
              return [];
            })
          : undefined,
      );
      const truncated = streams.stdout.truncated || streams.stderr.truncated;
      const result: ExecutionResult = {
        stdout: encodeOut(collected.stdout),
        stderr: encodeOut(collected.stderr),
        exitCode,
        durationMs,
        truncated,
        timedOut,
        oomKilled,
        executionId: ctx.executionId,
        runtime: request.runtime,
        timestamp,
        containerId: container.id,
        ...(files ? { files } : {}),
        ...(read?.omitted.length ? { omittedFiles: read.omitted } : {}),
        coldStart: job.coldStart,
        ...(this.options.resourceUsage && outcome.usage ? { resourceUsage: outcome.usage } : {}),
        ...(networkLogs ? { networkLogs } : {}),
        ...(this.options.persist ? { persisted: true } : {}),
      };
      // Events queued by the final flushes go out before the exit event.
      while (queue.length > 0) yield queue.shift()!;
      await this.#release(container, reusable).catch((error) => this.#log.warn("releasing a container failed", { error: String(error) }));
      released = true;
      await this.kit.hooks.afterExec.promise(result, ctx).catch((error) => this.#log.error("an afterExec tap failed", { error: String(error) }));
      yield { type: "exit", data: String(result.exitCode), result };
    } finally {
      clearTimeout(timer);
      clearTimeout(killTimer);
      ctx.signal.removeEventListener("abort", onCancel);
      if (!released) {
        // The consumer stopped early or the engine failed: kill the run and never reuse the container.
        if (!finished || runAbort.signal.aborted) {
          runAbort.abort();
          await this.#launcher.killAll(container.id).catch(() => undefined);
        }
        await this.#release(container, false).catch(() => undefined);
      }
    }
  }

  /** Refuses installPackages that cannot work before anything runs: no installer, bad names, no network. */
  #checkInstall(runtime: RuntimeDefinition, packages: string[]): { installer: PackageInstaller; packages: string[] } {
    const installer = runtime.packages;
    if (!installer) throw new InvalidRequestError(`request.installPackages: runtime "${runtime.name}" has no package installer`);
    packages.forEach((name, i) => {
      if (!installer.validName.test(name) || name.startsWith("-")) {
        throw new InvalidRequestError(
          `request.installPackages[${i}]: ${JSON.stringify(name)} is not a valid ${runtime.name} package name (expected a name with an optional version, matching ${installer.validName}; no spaces, shell characters or flags)`,
        );
      }
    });
    if (this.options.network === "none") {
      throw new InvalidRequestError(
        `request.installPackages: the engine's network is "none", so no registry can be reached. Use network "filtered" (with the registry's host allowed) or "host".`,
      );
    }
    return { installer, packages };
  }

  /** Runs the runtime's package manager in the container, as the sandbox user, with its own time budget. */
  async #installPackages(
    container: PooledContainer,
    install: { installer: PackageInstaller; packages: string[] },
    env: Record<string, string>,
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<void> {
    const caBundle = this.#caBundle ? CA_BUNDLE_PATH : undefined;
    const payload = await packTar(this.#caBundle ? [{ path: CA_BUNDLE_PATH, content: this.#caBundle }] : []);
    let output = "";
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.#launcher.killAll(container.id).catch(() => undefined);
    }, timeoutMs);
    try {
      const { exitCode } = await this.#launcher.run(container.id, {
        argv: install.installer.command(install.packages, { caBundle }),
        env: { ...env, ...install.installer.env?.({ caBundle }) },
        payload,
        signal,
        onOutput: (_stream, chunk) => {
          output = (output + chunk.toString()).slice(-8192);
        },
      });
      const tail = this.#secrets.mask(output.trim().split("\n").slice(-15).join("\n"));
      if (timedOut) throw new PackageInstallError(`installPackages timed out after ${timeoutMs} ms installing ${install.packages.join(", ")}:\n${tail}`);
      if (exitCode !== 0) throw new PackageInstallError(`installPackages failed (exit ${exitCode}) installing ${install.packages.join(", ")}:\n${tail}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The OOM kill counter per container as last seen on the exec path (a container's memory
   * cgroup starts at 0): after every execution, from its runner or read by the engine, so an
   * increase belongs to the execution that just ended (or to the wipe before it, which the
   * engine cannot tell apart: it counts against the execution, and the container is not reused
   * either way).
   */
  readonly #oomKills = new Map<string, number>();

  /**
   * How many processes the kernel's OOM killer ended in the container since the last check.
   * Docker's own OOMKilled flag is not set when the victim is not the container's main process,
   * so read the cgroup's counter (v1: memory.oom_control, v2: memory.events). 0 when it cannot be
   * read (the container is gone).
   */
  async #oomKillsSinceLastCheck(container: PooledContainer): Promise<number> {
    const chunks: Buffer[] = [];
    const read = await this.driver
      .exec(container.id, {
        argv: ["sh", "-c", "cat /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null || cat /sys/fs/cgroup/memory.events"],
        user: this.#sandboxUserOf(container.id),
        onOutput: (stream, chunk) => void (stream === "stdout" && chunks.push(chunk)),
      })
      .catch((error) => this.#log.warn("reading the OOM kill counter failed", { container: container.id, error: String(error) }));
    const count = /^oom_kill (\d+)$/m.exec(Buffer.concat(chunks).toString())?.[1];
    if (!read || read.exitCode !== 0 || count === undefined) return 0;
    const before = this.#oomKills.get(container.id) ?? 0;
    this.#oomKills.set(container.id, Number(count));
    return Math.max(0, Number(count) - before);
  }

  #fileReadLimits(): FileReadLimits {
    return { maxFileBytes: this.options.maxOutputFileSize, maxTotalBytes: this.options.maxOutputFilesSize, deadlineMs: FILE_READ_DEADLINE_MS };
  }

  /** SHA-256 of a program's code, as audit records carry it. */
  static codeHash(code: string | Uint8Array): string {
    return createHash("sha256").update(code).digest("hex");
  }
}
