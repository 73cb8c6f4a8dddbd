import {
  ExecutionError,
  type ExecContext,
  type ExecutionResult,
  type Kit,
  type Logger,
  type ResolvedEngineOptions,
  type RichOutput,
  type StreamEvent,
  type ValidatedRequest,
} from "@isol8/kit";
import { OutputStream } from "../output.js";
import { describeExit, type CellOutcome, type CellSink, type InterpreterContext } from "./context.js";
import { isBinaryType, MAX_RICH_OUTPUTS } from "./rich-outputs.js";

/** What a cell needs of its engine. */
export interface CellDeps {
  readonly options: ResolvedEngineOptions;
  readonly kit: Kit;
  readonly log: Logger;
}

/** Buffered stream events before the kernel's output is held back (a slow consumer's back-pressure). */
const HIGH_WATER_EVENTS = 64;

/**
 * A cell's rich outputs within the engine's bounds (maxOutputFileSize each, maxOutputFilesSize
 * in all, MAX_RICH_OUTPUTS of them), as plain executions have them; one left out keeps its type
 * and says why.
 */
class CellOutputs {
  readonly list: RichOutput[] = [];
  #total = 0;

  constructor(private readonly options: ResolvedEngineOptions) {}

  add(line: Parameters<CellSink["display"]>[0]): RichOutput {
    const type = (line.type === "display" ? line.mime : (line.mime ?? "application/octet-stream")).toLowerCase();
    const result = line.type === "display" && line.result ? { result: true as const } : {};
    const omit = (omitted: NonNullable<RichOutput["omitted"]>, sizeBytes: number, limitBytes?: number): RichOutput => ({
      type,
      data: "",
      ...result,
      truncated: true,
      omitted,
      sizeBytes,
      ...(limitBytes !== undefined && { limitBytes }),
    });
    let output: RichOutput;
    if (this.list.length >= MAX_RICH_OUTPUTS) {
      output = omit("too-many", line.type === "display" ? Buffer.byteLength(line.data, "base64") : line.bytes);
    } else if (line.type === "oversized") {
      output = omit("output-too-large", Math.floor((line.bytes * 3) / 4), this.options.maxOutputFileSize);
    } else {
      const bytes = Buffer.from(line.data, "base64");
      if (bytes.length > this.options.maxOutputFileSize) output = omit("output-too-large", bytes.length, this.options.maxOutputFileSize);
      else if (this.#total + bytes.length > this.options.maxOutputFilesSize) output = omit("total-too-large", bytes.length, this.options.maxOutputFilesSize);
      else {
        this.#total += bytes.length;
        output = { type, data: isBinaryType(type) ? bytes.toString("base64") : bytes.toString("utf8"), ...result };
      }
    }
    this.list.push(output);
    return output;
  }
}

/**
 * Runs one cell in a context and yields its events: stdout/stderr (masking, onOutput, the cap,
 * back-pressure), each display as it comes, then afterExec and the exit event. The time limit
 * interrupts the cell (a kill when the interrupt does not end it: the context then starts afresh
 * for the next cell, and the result says `contextRestarted`).
 */
export async function* runCell(deps: CellDeps, context: InterpreterContext, request: ValidatedRequest, ctx: ExecContext): AsyncGenerator<StreamEvent> {
  const secrets = Object.values(deps.options.secrets);
  const onOutput = deps.kit.hooks.onOutput;
  const raw = request.outputEncoding === "base64";
  const stream = (name: "stdout" | "stderr") =>
    new OutputStream(
      secrets,
      deps.options.maxOutputSize,
      onOutput.isUsed() ? (data) => onOutput.call({ stream: name, data }, ctx).data : undefined,
      raw ? "latin1" : "utf8",
    );
  const streams = { stdout: stream("stdout"), stderr: stream("stderr") };
  const collected = { stdout: "", stderr: "" };
  const encodeOut = (text: string) => (raw ? Buffer.from(text, "latin1").toString("base64") : text);
  const outputs = new CellOutputs(deps.options);
  const queue: StreamEvent[] = [];
  let wake: (() => void) | undefined;
  let drained: (() => void) | undefined;
  const emit = (type: "stdout" | "stderr", data: string) => {
    if (!data) return;
    collected[type] += data;
    queue.push({ type, data: encodeOut(data) });
    wake?.();
  };
  const sink: CellSink = {
    output: (name, chunk) => {
      emit(name, streams[name].push(chunk));
      if (queue.length < HIGH_WATER_EVENTS) return;
      return new Promise<void>((resolve) => (drained = resolve));
    },
    display: (line) => {
      const output = outputs.add(line);
      queue.push({ type: "display", data: output.type, output });
      wake?.();
    },
  };

  const timeoutMs = request.timeoutMs ?? deps.options.timeoutMs;
  const timestamp = new Date().toISOString();
  const started = performance.now();
  const stop = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    stop.abort();
  }, timeoutMs);
  const onCancel = () => stop.abort();
  if (ctx.signal.aborted) stop.abort();
  else ctx.signal.addEventListener("abort", onCancel, { once: true });

  let outcome: CellOutcome | undefined;
  let failure: unknown;
  const code = typeof request.code === "string" ? request.code : Buffer.from(request.code ?? "").toString("utf8");
  const running = context.run(code, sink, stop.signal).then(
    (value) => void (outcome = value),
    (error: unknown) => void (failure = error),
  );
  let finished = false;
  void running.finally(() => {
    finished = true;
    wake?.();
  });
  try {
    while (!finished || queue.length > 0) {
      if (queue.length > 0) {
        yield queue.shift()!;
        if (queue.length < HIGH_WATER_EVENTS / 2) drained?.();
        continue;
      }
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    clearTimeout(timer);
    ctx.signal.removeEventListener("abort", onCancel);
    // A consumer that stopped early: the cell is interrupted (the context stays, if it can).
    if (!finished) stop.abort();
  }
  if (failure) throw failure;
  if (ctx.signal.aborted && !timedOut)
    throw new ExecutionError("The cell was aborted; it was interrupted (and its context restarted if the interrupt did not end it).");
  const cell = outcome!;
  emit("stdout", streams.stdout.end());
  emit("stderr", streams.stderr.end());
  const restarted = cell.ended !== undefined;
  let exitCode = cell.done?.exitCode ?? (cell.done?.error ? 1 : 0);
  if (timedOut) {
    emit(
      "stderr",
      `${collected.stderr && !collected.stderr.endsWith("\n") ? "\n" : ""}[isol8] the cell timed out after ${timeoutMs} ms; ${
        restarted ? "it did not stop when interrupted, so its context was restarted: its state is gone" : "it was interrupted; the context keeps its state"
      }\n`,
    );
    exitCode = restarted ? 137 : exitCode || 130;
  } else if (restarted) {
    const how = cell.ended!;
    exitCode = how instanceof Error ? 1 : (how.exitCode ?? 128 + (how.signal ?? 0));
    emit(
      "stderr",
      `${collected.stderr && !collected.stderr.endsWith("\n") ? "\n" : ""}[isol8] the context's interpreter ${describeExit(how)}; its state is gone and the next cell starts a fresh one\n`,
    );
  }
  // The final flushes and isol8's notes go out before the exit event.
  while (queue.length > 0) yield queue.shift()!;
  const result: ExecutionResult = {
    stdout: encodeOut(collected.stdout),
    stderr: encodeOut(collected.stderr),
    exitCode,
    durationMs: Math.round(performance.now() - started),
    truncated: streams.stdout.truncated || streams.stderr.truncated,
    timedOut,
    oomKilled: false,
    executionId: ctx.executionId,
    runtime: request.runtime,
    timestamp,
    containerId: context.containerId,
    outputs: outputs.list,
    coldStart: false,
    ...(cell.done?.error && { error: cell.done.error }),
    ...(restarted && { contextRestarted: true }),
  };
  await deps.kit.hooks.afterExec.promise(result, ctx).catch((error) => deps.log.error("an afterExec tap failed", { error: String(error) }));
  yield { type: "exit", data: String(result.exitCode), result };
}
