import {
  ExecutionError,
  NotSupportedError,
  SANDBOX_DIR,
  type ExecContext,
  type ExecutionResult,
  type Kit,
  type Logger,
  type PooledContainer,
  type ResolvedEngineOptions,
  type RuntimeDefinition,
  type SandboxDriver,
  type StdinSource,
  type StreamEvent,
  type ValidatedRequest,
} from "@isol8/kit";
import { OutputStream, type SecretMasker } from "../output.js";
import { maskNetworkLogs } from "./masking.js";
import { FILE_READ_DEADLINE_MS, readOutputFiles } from "./output-files.js";
import { checkInstall, installPackages, type PackageInstall } from "./packages.js";
import { packTar, resolveSandboxPath, type TarEntry } from "./sandbox-files.js";
import { runtimeEnv, type Sandboxes } from "./sandboxes.js";

/** Where a request's stdin is unpacked for the program to read. */
export const STDIN_PATH = "/tmp/.isol8-stdin";
/** Why the exec path refuses interactive stdin. */
export const INTERACTIVE_STDIN_NEEDS_EXECUTOR =
  "options.stdin (interactive stdin) needs isol8's in-container executor, and this sandbox starts programs with one docker exec each " +
  "(ISOL8_LAUNCHER=exec, or an image without the executor), whose stdin carries the request's files: give the input up front with request.stdin instead";
/** Time the engine waits after killing a timed-out program before it destroys the container. */
const KILL_GRACE_MS = 2_000;
/** Buffered stream events before the backend's stream is paused (a slow consumer's back-pressure). */
const HIGH_WATER_EVENTS = 64;

/** What a run needs of its engine. */
export interface RunDeps {
  readonly options: ResolvedEngineOptions;
  readonly kit: Kit;
  readonly driver: SandboxDriver;
  readonly sandboxes: Sandboxes;
  readonly secrets: SecretMasker;
  readonly log: Logger;
  /** The configured CA bundle's content, for package installs. */
  readonly caBundle?: Buffer;
  /** Hands the container back (to the pool, or the persistent session). */
  release(container: PooledContainer, reusable: boolean): Promise<void>;
}

/** One execution, ready to run: the request after beforeExec, its argv and its payload. */
export interface RunJob {
  request: ValidatedRequest;
  coldStart: boolean;
  runtimeEnv: Readonly<Record<string, string>>;
  argv: string[];
  payload: Buffer;
  outputPaths: string[];
  install?: PackageInstall;
  ctx: ExecContext;
  /** Interactive stdin (ExecuteOptions.stdin), sent while the program runs. */
  stdinSource?: StdinSource;
}

/**
 * The parts of a run that need no container: the code file's path and argv, the payload (code,
 * request files, stdin) as a tar, the output paths resolved, the install checked. Path and
 * package errors fail here, before a container is taken.
 */
export async function prepareJob(
  runtime: RuntimeDefinition,
  request: ValidatedRequest,
  options: ResolvedEngineOptions,
): Promise<Pick<RunJob, "runtimeEnv" | "argv" | "payload" | "outputPaths" | "install">> {
  const codePath = `${SANDBOX_DIR}/main${request.fileExtension ?? runtime.extensions[0] ?? ""}`;
  const entries: TarEntry[] = [{ path: codePath, content: request.code }];
  for (const [path, content] of Object.entries(request.files ?? {})) entries.push({ path: resolveSandboxPath(path, `request.files["${path}"]`), content });
  if (request.stdin !== undefined) entries.push({ path: STDIN_PATH, content: request.stdin, mode: 0o600 });
  const outputPaths = (request.outputPaths ?? []).map((p, i) => resolveSandboxPath(p, `request.outputPaths[${i}]`));
  const install = request.installPackages?.length ? checkInstall(runtime, request.installPackages, options) : undefined;
  return { runtimeEnv: runtimeEnv(runtime), argv: runtime.command(codePath), payload: await packTar(entries), outputPaths, install };
}

/**
 * Runs one execution in an acquired container and yields its events: output through masking,
 * onOutput and the cap (with back-pressure), the time limit's kill and watchdog, OOM kills, the
 * output files and network logs; then releases the container, runs afterExec and yields the
 * exit event with the result. A consumer that stops early kills the run; the container is then
 * never reused.
 */
export async function* runInSandbox(deps: RunDeps, container: PooledContainer, job: RunJob): AsyncGenerator<StreamEvent> {
  const { request, ctx } = job;
  const launcher = deps.sandboxes.launcherOf(container.id);
  if (job.stdinSource && launcher.kind !== "executor") {
    // Nothing ran: the container goes back as it came.
    await deps.release(container, true).catch(() => undefined);
    throw new NotSupportedError(INTERACTIVE_STDIN_NEEDS_EXECUTOR);
  }
  const secrets = Object.values(deps.options.secrets);
  const onOutput = deps.kit.hooks.onOutput;
  // outputEncoding "base64": the streams hold the bytes as latin1 text (one char per byte; the
  // onOutput hook sees that too), turned into base64 on the way out.
  const raw = request.outputEncoding === "base64";
  const textEncoding = raw ? "latin1" : "utf8";
  const streams = {
    stdout: new OutputStream(
      secrets,
      deps.options.maxOutputSize,
      onOutput.isUsed() ? (data) => onOutput.call({ stream: "stdout", data }, ctx).data : undefined,
      textEncoding,
    ),
    stderr: new OutputStream(
      secrets,
      deps.options.maxOutputSize,
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

  const timeoutMs = request.timeoutMs ?? deps.options.timeoutMs;
  const timestamp = new Date().toISOString();
  let timedOut = false;
  let outputStopped = false;
  /** Bytes past the cap a program may still write before it is stopped. */
  const outputSlack = Math.max(16 * 1024 * 1024, 10 * deps.options.maxOutputSize);
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
      await installPackages(launcher, container.id, job.install, {
        env,
        timeoutMs,
        signal: runAbort.signal,
        caBundle: deps.caBundle,
        secrets: deps.secrets,
      }).catch((error) => {
        reusable = false;
        throw error;
      });
    }
    const started = performance.now();
    timer = setTimeout(() => {
      timedOut = true;
      reusable = false;
      launcher.killAll(container.id).catch(() => undefined);
      // If the kill does not end the run (a stuck exec), destroy the container: the stream ends with it.
      killTimer = setTimeout(() => {
        runAbort.abort();
        deps.driver.remove(container.id).catch(() => undefined);
      }, KILL_GRACE_MS);
    }, timeoutMs);

    const env = { ...job.runtimeEnv, ...request.env, ...deps.options.secrets };
    const run = launcher
      .run(container.id, {
        argv: job.argv,
        env,
        // After an install the executor has already ended the warm start (it ran another program).
        warm: deps.sandboxes.takeWarmStart(container, env) && !job.install,
        payload: job.payload,
        stdinPath: request.stdin !== undefined ? STDIN_PATH : undefined,
        ...(job.stdinSource && { stdinSource: job.stdinSource }),
        measureUsage: deps.options.resourceUsage,
        signal: runAbort.signal,
        onOutput: (stream, chunk) => {
          emit(stream, streams[stream].push(chunk));
          if (!outputStopped && streams[stream].discarded > outputSlack) {
            // Far past the cap: the rest would be thrown away anyway, so stop the program
            // rather than spend the time limit draining it.
            outputStopped = true;
            reusable = false;
            launcher.killAll(container.id).catch(() => undefined);
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
      emit("stderr", `\n[isol8] output went far past the limit of ${deps.options.maxOutputSize} bytes; the program was stopped\n`);
    }
    if (timedOut) {
      exitCode = 137;
      emit(
        "stderr",
        `${collected.stderr && !collected.stderr.endsWith("\n") ? "\n" : ""}[isol8] execution timed out after ${timeoutMs} ms; the program and every process it started were killed\n`,
      );
    }
    // Any OOM kill in the container during this execution, whatever the exit code (a grandchild
    // may be the victim): the launcher counts them. A container an OOM went through is never
    // handed out again.
    const oomKills = outcome.oomKills;
    if (oomKills > 0) {
      oomKilled = true;
      reusable = false;
      emit(
        "stderr",
        `[isol8] out of memory: the program exceeded the memory limit of ${deps.options.memoryLimit} bytes; the kernel killed ${oomKills === 1 ? "a process" : `${oomKills} processes`}\n`,
      );
    }
    if (exitCode === 125 && collected.stderr.includes("isol8: could not unpack")) {
      throw new ExecutionError(`Could not deliver the code and files to the container: ${collected.stderr.trim()}`);
    }

    const read =
      job.outputPaths.length && !timedOut
        ? await readOutputFiles(deps.driver, container.id, deps.sandboxes.userOf(container.id), job.outputPaths, {
            maxFileBytes: deps.options.maxOutputFileSize,
            maxTotalBytes: deps.options.maxOutputFilesSize,
            deadlineMs: FILE_READ_DEADLINE_MS,
          })
        : undefined;
    const files = read?.files;
    const networkMode = deps.kit.networkModes.get(deps.options.network);
    const networkLogs = maskNetworkLogs(
      deps.secrets,
      deps.options.logNetwork && networkMode.logsFor
        ? await networkMode.logsFor(container, { start: new Date(timestamp), end: new Date() }).catch((error) => {
            deps.log.warn("reading network logs failed", { error: String(error) });
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
      ...(deps.options.resourceUsage && outcome.usage ? { resourceUsage: outcome.usage } : {}),
      ...(networkLogs ? { networkLogs } : {}),
      ...(deps.options.persist ? { persisted: true } : {}),
    };
    // Events queued by the final flushes go out before the exit event.
    while (queue.length > 0) yield queue.shift()!;
    await deps.release(container, reusable).catch((error) => deps.log.warn("releasing a container failed", { error: String(error) }));
    released = true;
    await deps.kit.hooks.afterExec.promise(result, ctx).catch((error) => deps.log.error("an afterExec tap failed", { error: String(error) }));
    yield { type: "exit", data: String(result.exitCode), result };
  } finally {
    clearTimeout(timer);
    clearTimeout(killTimer);
    ctx.signal.removeEventListener("abort", onCancel);
    if (!released) {
      // The consumer stopped early or the engine failed: kill the run and never reuse the container.
      if (!finished || runAbort.signal.aborted) {
        runAbort.abort();
        await launcher.killAll(container.id).catch(() => undefined);
      }
      await deps.release(container, false).catch(() => undefined);
    }
  }
}
