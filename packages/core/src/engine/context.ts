import {
  CONTEXT_INTERRUPT_GRACE_MS,
  CONTEXT_START_TIMEOUT_MS,
  ExecutionError,
  type CellError,
  type ContextInfo,
  type ContextKernel,
  type KernelMessage,
  kernelCellBytes,
} from "@isol8/kit";
import type { KernelHost } from "./executor-contexts.js";
import type { ContextExit } from "./executor-context-frames.js";
import { KernelMessageReader, type KernelLine } from "./kernel-messages.js";

/** What a cell's run reports to its listener as it goes. */
export interface CellSink {
  output(stream: "stdout" | "stderr", chunk: Buffer): void | Promise<void>;
  /** A display message of this cell, or a line left out (oversized). */
  display(line: Extract<KernelLine, { type: "display" } | { type: "oversized" }>): void;
}

/** How a cell ended. */
export interface CellOutcome {
  /** The kernel's `done` (absent when the kernel ended first). */
  done?: { error?: CellError; exitCode?: number };
  /** The kernel ended during the cell (the code ended it, or it was killed): its state is gone. */
  ended?: ContextExit | Error;
  /** The engine killed the kernel (the interrupt did not end the cell, or it is not interruptible). */
  killed: boolean;
}

interface LiveKernel {
  readonly id: number;
  readonly exited: Promise<ContextExit | Error>;
}

interface RunningCell {
  readonly number: number;
  readonly sink: CellSink;
  readonly finish: (outcome: Omit<CellOutcome, "killed">) => void;
}

/**
 * One interpreter context: its kernel process in the sandbox (started, restarted, killed), and the
 * cells it runs one at a time. A kernel that ended (the code ended it, a kill after an interrupt)
 * is replaced by a fresh one when the next cell comes.
 */
export class InterpreterContext {
  readonly createdAt = new Date().toISOString();
  cells = 0;
  restarts = 0;
  #kernel: LiveKernel | undefined;
  #cell: RunningCell | undefined;
  #nextCell = 1;
  #killedByEngine = false;

  constructor(
    readonly id: string,
    readonly runtime: string,
    readonly containerId: string,
    readonly cwd: string,
    private readonly definition: ContextKernel,
    private readonly env: Readonly<Record<string, string>>,
    private readonly host: KernelHost,
    private readonly maxMessageBytes: number,
  ) {}

  get info(): ContextInfo {
    return { id: this.id, runtime: this.runtime, cwd: this.cwd, createdAt: this.createdAt, cells: this.cells, restarts: this.restarts };
  }

  /** Whether a kernel is alive (else the next cell starts one). */
  get alive(): boolean {
    return this.#kernel !== undefined && this.host.has(this.#kernel.id);
  }

  /** Starts the kernel and waits for its `ready`; what it wrote meanwhile goes into the error if it ends first. */
  async start(): Promise<void> {
    const reader = new KernelMessageReader(this.maxMessageBytes);
    let said = "";
    let readyNow!: () => void;
    const ready = new Promise<void>((resolve) => (readyNow = resolve));
    let endedNow!: (how: ContextExit | Error) => void;
    const exited = new Promise<ContextExit | Error>((resolve) => (endedNow = resolve));
    let started = false;
    const id = await this.host.start(
      { argv: this.definition.command, env: this.env, cwd: this.cwd },
      {
        output: (stream, chunk) => {
          if (!started) said = (said + chunk.toString("utf8")).slice(-2048);
          return this.#cell?.sink.output(stream, chunk);
        },
        message: (chunk) => {
          for (const line of reader.push(chunk)) {
            if (line.type === "ready") readyNow();
            else this.#line(line);
          }
        },
        exit: (how) => {
          endedNow(how);
          const cell = this.#cell;
          this.#cell = undefined;
          cell?.finish({ ended: how });
        },
      },
    );
    const kernel: LiveKernel = { id, exited };
    this.#kernel = kernel;
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      ready.then(() => "ready" as const),
      exited.then((how) => how),
      new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), CONTEXT_START_TIMEOUT_MS))),
    ]).finally(() => clearTimeout(timer));
    this.host.setBusy(id, false);
    if (outcome === "ready") {
      started = true;
      return;
    }
    this.#kernel = undefined;
    if (outcome === "timeout") this.host.signal(id, "SIGKILL");
    const how = outcome === "timeout" ? `did not say it was ready within ${CONTEXT_START_TIMEOUT_MS} ms` : describeExit(outcome);
    throw new ExecutionError(`the ${this.runtime} context's interpreter ${how}${said.trim() ? `; it wrote: ${said.trim()}` : ""}`);
  }

  /** Ends the kernel and its session's processes; resolves once it is gone. */
  async stop(): Promise<void> {
    const kernel = this.#kernel;
    if (!kernel || !this.host.has(kernel.id)) return;
    this.host.signal(kernel.id, "SIGKILL");
    await kernel.exited;
  }

  /**
   * Runs one cell: its output and displays go to `sink` as they come; resolves when the kernel
   * said `done`, or ended. `stop` (the time limit, an abort) interrupts it: SIGINT when the kernel
   * honours it, and after the grace period (or at once) a kill.
   */
  async run(code: string, sink: CellSink, stop: AbortSignal): Promise<CellOutcome> {
    if (!this.alive) {
      if (this.cells > 0 || this.#kernel) this.restarts++;
      await this.start();
    }
    const kernel = this.#kernel!;
    const number = this.#nextCell++;
    this.cells++;
    this.#killedByEngine = false;
    const finished = new Promise<Omit<CellOutcome, "killed">>((finish) => (this.#cell = { number, sink, finish }));
    let grace: NodeJS.Timeout | undefined;
    const interrupt = () => {
      if (!this.definition.interruptible) return this.#kill(kernel);
      this.host.signal(kernel.id, "SIGINT");
      grace = setTimeout(() => this.#kill(kernel), CONTEXT_INTERRUPT_GRACE_MS);
    };
    if (stop.aborted) interrupt();
    else stop.addEventListener("abort", interrupt, { once: true });
    this.host.setBusy(kernel.id, true);
    try {
      this.host.send(kernel.id, kernelCellBytes(number, code));
      const outcome = await finished;
      return { ...outcome, killed: this.#killedByEngine };
    } finally {
      clearTimeout(grace);
      stop.removeEventListener("abort", interrupt);
      this.host.setBusy(kernel.id, false);
      this.#cell = undefined;
    }
  }

  #kill(kernel: LiveKernel): void {
    this.#killedByEngine = true;
    this.host.signal(kernel.id, "SIGKILL");
  }

  /** A message of the kernel: the running cell's, or a stale one (dropped). */
  #line(line: Exclude<KernelLine, { type: "ready" }>): void {
    const cell = this.#cell;
    if (!cell) return;
    if (line.type === "invalid") return;
    if (line.type === "oversized") return cell.sink.display(line);
    if ((line as KernelMessage & { cell: number }).cell !== cell.number) return;
    if (line.type === "display") return cell.sink.display(line);
    this.#cell = undefined;
    cell.finish({ done: { ...(line.error && { error: line.error }), ...(line.exitCode !== undefined && { exitCode: line.exitCode }) } });
  }
}

/** How a kernel ended, in words. */
export function describeExit(how: ContextExit | Error): string {
  if (how instanceof Error) return `was lost (${how.message})`;
  if (how.signal !== undefined) return `was killed by signal ${how.signal}`;
  return `exited with status ${how.exitCode}`;
}
