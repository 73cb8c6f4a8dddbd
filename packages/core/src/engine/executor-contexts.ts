import { ExecutionError, InvalidRequestError, type Logger } from "@isol8/kit";
import type { ExecutorConnection } from "./executor-connection.js";
import { ExecutorProtocolError, FrameType, type Frame } from "./executor-protocol.js";
import { encodeContextSend, encodeContextSignal, encodeContextStart, parseContextExit, type ContextExit } from "./executor-context-frames.js";

/** What a kernel's frames become (contexts.ts listens). */
export interface KernelListener {
  /** A chunk of the kernel's stdout or stderr (a promise: wait before the next one). */
  output(stream: "stdout" | "stderr", chunk: Buffer): void | Promise<void>;
  /** Bytes of the kernel's fd 4 (its JSON-lines messages), in order. */
  message(chunk: Buffer): void;
  /** The kernel ended (its CTX_EXIT), or the connection did (an Error): it is gone. */
  exit(how: ContextExit | Error): void;
}

/** The kernel's start-up: argv, env and cwd, as PREPARE carries them. */
export interface KernelStart {
  argv: readonly string[];
  env: Readonly<Record<string, string>>;
  cwd: string;
}

/**
 * The kernels of one container's executor (PROTOCOL.md, "Contexts"): starts them (CTX_START),
 * feeds them (CTX_SEND), signals them (CTX_SIGNAL), and routes their frames (CTX_STDOUT,
 * CTX_STDERR, CTX_MSG, CTX_EXIT) to each kernel's listener. Knows nothing of cells.
 */
export class KernelHost {
  readonly #kernels = new Map<number, KernelListener>();
  readonly #starting = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
  readonly #busy = new Set<number>();

  constructor(
    private readonly connection: ExecutorConnection,
    private readonly log: Logger,
  ) {
    connection.attachContexts({
      owns: (id) => this.#kernels.has(id) || this.#starting.has(id),
      dispatch: (frame) => this.#dispatch(frame),
      busy: () => this.#busy.size > 0,
      closed: (error) => this.#closed(error),
    });
  }

  /**
   * Starts a kernel; resolves with its id once the executor forked it (its `ready` comes on fd
   * 4). The kernel counts as busy (the connection keeps the process alive) until setBusy(id, false).
   */
  start(request: KernelStart, listener: KernelListener): Promise<number> {
    const id = this.connection.nextId();
    let frame: Buffer;
    try {
      frame = encodeContextStart({ id, ...request });
    } catch (error) {
      const reason = error instanceof ExecutorProtocolError ? error.message : String(error);
      return Promise.reject(new InvalidRequestError(`the context's kernel cannot be started: ${reason}`, { cause: error }));
    }
    return new Promise<number>((resolve, reject) => {
      this.#kernels.set(id, listener);
      this.#starting.set(id, { resolve: () => resolve(id), reject });
      // Busy until its starter says otherwise (setBusy(id, false) once the kernel is ready).
      this.#busy.add(id);
      try {
        this.connection.send([frame]);
      } catch (error) {
        this.#kernels.delete(id);
        this.#starting.delete(id);
        reject(error as Error);
      }
    });
  }

  /** Bytes for the kernel's fd 3. */
  send(id: number, data: Buffer): void {
    this.connection.send(encodeContextSend(id, data));
  }

  /** SIGINT interrupts a cell; SIGKILL ends the kernel's whole session (its CTX_EXIT follows). */
  signal(id: number, signal: "SIGINT" | "SIGKILL"): void {
    if (!this.#kernels.has(id)) return;
    this.connection.send([encodeContextSignal(id, signal === "SIGINT" ? 2 : 9)]);
  }

  /** A cell runs in kernel `id` (the connection then keeps the process alive). */
  setBusy(id: number, busy: boolean): void {
    if (busy) this.#busy.add(id);
    else this.#busy.delete(id);
    this.connection.refresh();
  }

  has(id: number): boolean {
    return this.#kernels.has(id);
  }

  #dispatch(frame: Frame): void | Promise<void> {
    const listener = this.#kernels.get(frame.id);
    switch (frame.type) {
      case FrameType.Done:
        this.#settleStart(frame.id);
        return;
      case FrameType.Error: {
        const message = frame.body.toString("utf8");
        if (this.#settleStart(frame.id, new ExecutionError(`the executor could not start the context's kernel: ${message}`))) return;
        this.log.warn("the executor refused a context request", { kernel: frame.id, message });
        return;
      }
      case FrameType.ContextStdout:
      case FrameType.ContextStderr:
        if (!listener || frame.body.length === 0) return;
        return listener.output(frame.type === FrameType.ContextStdout ? "stdout" : "stderr", frame.body);
      case FrameType.ContextMessage:
        listener?.message(frame.body);
        return;
      case FrameType.ContextExit: {
        this.#kernels.delete(frame.id);
        this.#busy.delete(frame.id);
        this.connection.refresh();
        let how: ContextExit | Error;
        try {
          how = parseContextExit(frame.body);
        } catch (error) {
          how = error as Error;
        }
        listener?.exit(how);
        return;
      }
      default:
        this.log.warn("an unknown frame for a context", { kernel: frame.id, type: frame.type });
    }
  }

  /** Answers a pending CTX_START (DONE, or an ERROR); false when `id` was not starting. */
  #settleStart(id: number, error?: Error): boolean {
    const starting = this.#starting.get(id);
    if (!starting) return false;
    this.#starting.delete(id);
    if (error) {
      this.#kernels.delete(id);
      this.#busy.delete(id);
      this.connection.refresh();
      starting.reject(error);
    } else {
      starting.resolve();
    }
    return true;
  }

  #closed(error: Error): void {
    for (const [id, starting] of this.#starting) {
      this.#kernels.delete(id);
      starting.reject(error);
    }
    this.#starting.clear();
    const kernels = [...this.#kernels.values()];
    this.#kernels.clear();
    this.#busy.clear();
    for (const listener of kernels) listener.exit(error);
  }
}
