import {
  ExecutionError,
  InvalidRequestError,
  NotSupportedError,
  RICH_OUTPUTS_DIR,
  RICH_OUTPUTS_ENV,
  type ExecutionResult,
  type Kit,
  type Logger,
  type OutputPhase,
  type PooledContainer,
  type ResolvedEngineOptions,
  type ResourceUsage,
  type SandboxDriver,
  type SetupResult,
  type StdinSource,
  type StreamEvent,
} from "@isol8/kit";
import { OutputStream, type SecretMasker } from "../output.js";
import { maskNetworkLogs } from "./masking.js";
import { FILE_READ_DEADLINE_MS, readOutputFiles } from "./output-files.js";
import { launcherCommand, readRichOutputs } from "./rich-outputs.js";
import type { LaunchOutcome } from "./launcher.js";
import { STDIN_PATH, type RunJob } from "./job.js";
import { packTar } from "./sandbox-files.js";
import { installPackages } from "./packages.js";
import { WORKDIR_REFUSED } from "./program.js";
import type { Sandboxes } from "./sandboxes.js";

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

/** One part of a run, with its own output streams (cap, masking) and collected text: the setup or the code. */
interface PhaseState {
  readonly name: OutputPhase;
  readonly streams: Record<"stdout" | "stderr", OutputStream>;
  readonly collected: { stdout: string; stderr: string };
}

/** The usage of the setup and the code together: times and bytes added, the larger peak. */
function addUsage(a: ResourceUsage | undefined, b: ResourceUsage | undefined): ResourceUsage | undefined {
  if (!a || !b) return a ?? b;
  return {
    cpuTimeMs: a.cpuTimeMs + b.cpuTimeMs,
    peakMemoryBytes: Math.max(a.peakMemoryBytes, b.peakMemoryBytes),
    networkBytesIn: a.networkBytesIn + b.networkBytesIn,
    networkBytesOut: a.networkBytesOut + b.networkBytesOut,
  };
}

/**
 * Runs one execution in an acquired container and yields its events: the install, the
 * setupScript (its own phase: output events marked "setup", result.setup; a non-zero exit ends
 * the run before the code), then the code; output through masking, onOutput and the cap (with
 * back-pressure), the time limit's kill and watchdog (one limit for setup and code together),
 * OOM kills, the output files and network logs; then releases the container, runs afterExec and
 * yields the exit event with the result. A consumer that stops early kills the run; the
 * container is then never reused.
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
  const outputStream = (stream: "stdout" | "stderr") =>
    new OutputStream(secrets, deps.options.maxOutputSize, onOutput.isUsed() ? (data) => onOutput.call({ stream, data }, ctx).data : undefined, textEncoding);
  const phaseState = (name: OutputPhase): PhaseState => ({
    name,
    streams: { stdout: outputStream("stdout"), stderr: outputStream("stderr") },
    collected: { stdout: "", stderr: "" },
  });
  // Events carry their phase only when the request has a setup: without one all output is the code's.
  const phased = job.setupArgv !== undefined;
  const encodeOut = (text: string) => (raw ? Buffer.from(text, "latin1").toString("base64") : text);
  const queue: StreamEvent[] = [];
  let wake: (() => void) | undefined;
  let drained: (() => void) | undefined;
  const emit = (phase: PhaseState, type: "stdout" | "stderr", data: string) => {
    if (!data) return;
    phase.collected[type] += data;
    queue.push(phased ? { type, data: encodeOut(data), phase: phase.name } : { type, data: encodeOut(data) });
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

  const env = { ...job.runtimeEnv, ...request.env, ...deps.options.secrets };
  /** Starts one program of the run (the setup or the code); `finished` turns true when it ends. */
  const launch = (
    phase: PhaseState,
    program: { argv: string[]; payload: Buffer; stdinPath?: string; stdinSource?: StdinSource; warm: boolean; last: boolean },
  ) => {
    finished = false;
    const run = launcher
      .run(container.id, {
        argv: program.argv,
        env,
        warm: program.warm,
        payload: program.payload,
        stdinPath: program.stdinPath,
        ...(program.stdinSource && { stdinSource: program.stdinSource }),
        measureUsage: deps.options.resourceUsage,
        signal: runAbort.signal,
        onOutput: (stream, chunk) => {
          emit(phase, stream, phase.streams[stream].push(chunk));
          if (!outputStopped && phase.streams[stream].discarded > outputSlack) {
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
        if (program.last) {
          clearTimeout(timer);
          clearTimeout(killTimer);
        }
        wake?.();
      });
    run.catch(() => undefined); // observed by settle(); avoid an unhandled rejection while we yield
    return run;
  };
  /** Yields the events of the program in flight until it has ended and its events are out. */
  async function* drain(): AsyncGenerator<StreamEvent> {
    while (!finished || queue.length > 0) {
      if (queue.length > 0) {
        yield queue.shift()!;
        if (queue.length < HIGH_WATER_EVENTS / 2) drained?.();
        continue;
      }
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  }
  /** After a program ended: its streams flushed, isol8's notes on its stderr; its exit code and OOM kills. */
  const settle = async (phase: PhaseState, run: Promise<LaunchOutcome>, carriedPayload: boolean) => {
    const outcome = await run;
    if (runAbort.signal.aborted && !timedOut) throw new ExecutionError("The execution was aborted; the program and every process it started were killed.");
    let exitCode = outcome.exitCode;
    emit(phase, "stdout", phase.streams.stdout.end());
    emit(phase, "stderr", phase.streams.stderr.end());
    if (outputStopped) {
      emit(phase, "stderr", `\n[isol8] output went far past the limit of ${deps.options.maxOutputSize} bytes; the program was stopped\n`);
    }
    if (timedOut) {
      exitCode = 137;
      emit(
        phase,
        "stderr",
        `${phase.collected.stderr && !phase.collected.stderr.endsWith("\n") ? "\n" : ""}[isol8] execution timed out after ${timeoutMs} ms; the program and every process it started were killed\n`,
      );
    }
    // Any OOM kill in the container during this program, whatever the exit code (a grandchild
    // may be the victim): the launcher counts them. A container an OOM went through is never
    // handed out again.
    const oomKills = outcome.oomKills;
    if (oomKills > 0) {
      reusable = false;
      emit(
        phase,
        "stderr",
        `[isol8] out of memory: the program exceeded the memory limit of ${deps.options.memoryLimit} bytes; the kernel killed ${oomKills === 1 ? "a process" : `${oomKills} processes`}\n`,
      );
    }
    if (exitCode === 125 && carriedPayload && phase.collected.stderr.includes("isol8: could not unpack")) {
      throw new ExecutionError(`Could not deliver the code and files to the container: ${phase.collected.stderr.trim()}`);
    }
    const refused = exitCode === 125 ? phase.collected.stderr.split("\n").find((line) => line.startsWith(WORKDIR_REFUSED)) : undefined;
    if (refused)
      throw new InvalidRequestError(`request.workdir: ${refused.slice(WORKDIR_REFUSED.length)} (expected a directory, never through a symbolic link)`);
    return { exitCode, oomKills, usage: outcome.usage, richOutputs: outcome.richOutputs };
  };

  try {
    if (job.install) {
      await installPackages(launcher, container.id, job.install, {
        env: { ...job.runtimeEnv, ...request.env },
        timeoutMs,
        signal: runAbort.signal,
        caBundle: deps.caBundle,
        secrets: deps.secrets,
      }).catch((error) => {
        reusable = false;
        throw error;
      });
    }
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
    // After an install the executor has already ended the warm start (it ran another program);
    // the first program takes it (a warm start runs any argv: the setup's too).
    const warm = deps.sandboxes.takeWarmStart(container, env) && !job.install;

    let setup: SetupResult | undefined;
    let setupOutcome: Awaited<ReturnType<typeof settle>> | undefined;
    if (job.setupArgv) {
      const phase = phaseState("setup");
      const setupStarted = performance.now();
      const run = launch(phase, { argv: job.setupArgv, payload: job.payload, warm, last: false });
      yield* drain();
      setupOutcome = await settle(phase, run, true);
      if (setupOutcome.exitCode !== 0) {
        clearTimeout(timer);
        clearTimeout(killTimer);
        emit(phase, "stderr", `[isol8] setupScript exited with ${setupOutcome.exitCode}; the code was not run\n`);
      }
      setup = {
        stdout: encodeOut(phase.collected.stdout),
        stderr: encodeOut(phase.collected.stderr),
        exitCode: setupOutcome.exitCode,
        durationMs: Math.round(performance.now() - setupStarted),
        truncated: phase.streams.stdout.truncated || phase.streams.stderr.truncated,
      };
    }

    const code = phaseState("code");
    let exitCode = setupOutcome?.exitCode ?? 0;
    let durationMs = 0;
    let codeOutcome: Awaited<ReturnType<typeof settle>> | undefined;
    if (exitCode === 0) {
      const started = performance.now();
      const run = launch(code, {
        argv: job.argv,
        // After a setup the payload is already in place: the code's run unpacks an empty archive.
        payload: setup ? await packTar([]) : job.payload,
        stdinPath: request.stdin !== undefined ? STDIN_PATH : undefined,
        stdinSource: job.stdinSource,
        warm: warm && !setup,
        last: true,
      });
      yield* drain();
      codeOutcome = await settle(code, run, !setup);
      exitCode = codeOutcome.exitCode;
      durationMs = Math.round(performance.now() - started);
    }
    const oomKilled = (setupOutcome?.oomKills ?? 0) + (codeOutcome?.oomKills ?? 0) > 0;
    const usage = addUsage(setupOutcome?.usage, codeOutcome?.usage);

    const read =
      job.outputPaths.length && !timedOut
        ? await readOutputFiles(deps.driver, container.id, deps.sandboxes.userOf(container.id), job.outputPaths, {
            maxFileBytes: deps.options.maxOutputFileSize,
            maxTotalBytes: deps.options.maxOutputFilesSize,
            deadlineMs: FILE_READ_DEADLINE_MS,
          })
        : undefined;
    const files = read?.files;
    // Runtimes with display declare where their helper writes (after a time-out too: nothing is left for the next run).
    const richDir = job.runtimeEnv[RICH_OUTPUTS_ENV];
    // The executor says whether the directory exists when the program ended: a run that displayed
    // nothing (most) then skips the read-back, a second program in the sandbox.
    const noneLeft = (codeOutcome ?? setupOutcome)?.richOutputs === false && richDir === RICH_OUTPUTS_DIR;
    const rich = !richDir
      ? undefined
      : noneLeft
        ? { outputs: [], notes: [] }
        : await readRichOutputs(launcherCommand(launcher, container.id), richDir, deps.options);
    if (!timedOut) for (const note of rich?.notes ?? []) emit(code, "stderr", note);
    for (const output of rich?.outputs ?? []) queue.push({ type: "display", data: output.type, output });
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
    const truncated = code.streams.stdout.truncated || code.streams.stderr.truncated;
    const result: ExecutionResult = {
      stdout: encodeOut(code.collected.stdout),
      stderr: encodeOut(code.collected.stderr),
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
      ...(rich ? { outputs: rich.outputs } : {}),
      coldStart: job.coldStart,
      ...(deps.options.resourceUsage && usage ? { resourceUsage: usage } : {}),
      ...(networkLogs ? { networkLogs } : {}),
      ...(deps.options.persist ? { persisted: true } : {}),
      ...(setup ? { setup } : {}),
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
