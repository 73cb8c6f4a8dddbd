import { ExecutionError, InvalidRequestError, SANDBOX_DIR, type AttachedStdio, type Logger } from "@isol8/kit";
import type { ExecutorLaunchOutcome, ExecutorLaunchRequest, PrepareRequest } from "./launcher.js";

/** A run's outcome as the connection knows it: the OOM count only when the EXIT frame came. */
export type ConnectionOutcome = Omit<ExecutorLaunchOutcome, "oomKills"> & { oomKills?: number };
import { Mutex } from "./mutex.js";
import { pumpStdin, socketSink } from "./stdin-source.js";
import {
  EXECUTOR_TIMEOUTS,
  ExecutorProtocolError,
  FrameDecoder,
  FrameType,
  encodeFrame,
  encodePrepare,
  parseExit,
  runFrames,
  checkedHello,
  toResourceUsage,
  type ExitReport,
  type Frame,
  type Hello,
} from "./executor-protocol.js";
import type { ContextFrames } from "./executor-context-frames.js";

interface PendingRun {
  kind: "run";
  request: ExecutorLaunchRequest;
  /** The caller stopped waiting (aborted): its output goes nowhere. */
  aborted: boolean;
  /** Settles the caller's promise (at the EXIT frame, or at once on abort). */
  settle: (outcome: ConnectionOutcome | Error) => void;
  /** Ends the run's hold on the connection (at the EXIT, an ERROR or the connection's end). */
  release: () => void;
}
interface PendingSimple {
  kind: "killall" | "ping" | "prepare";
  resolve: () => void;
}
type Pending = PendingRun | PendingSimple;

/**
 * One long-lived hijacked attach connection to a container's executor: requests go out as
 * frames on the container's stdin, answers come back as frames inside Docker's multiplexed
 * stdout. One execution at a time (a FIFO lock); KILL, KILLALL and PING pass beside it.
 */
export class ExecutorConnection {
  readonly #socket: AttachedStdio["channel"];
  readonly #log: Logger;
  readonly #decoder = new FrameDecoder();
  readonly #runs = new Mutex();
  readonly #pending = new Map<number, Pending>();
  /** Frames not yet handled: one output chunk at a time, each after the consumer took the last. */
  readonly #inbox: Frame[] = [];
  #blocked: Promise<void> | undefined;
  #nextId = 1;
  #closed: Error | undefined;
  #hello: { promise: Promise<Hello>; resolve: (hello: Hello) => void; reject: (error: Error) => void; settled: boolean };
  #stderr = "";
  #onClose: () => void;
  #contexts: ContextFrames | undefined;

  constructor(
    readonly containerId: string,
    stdio: AttachedStdio,
    log: Logger,
    onClose: () => void,
  ) {
    const socket = stdio.channel;
    this.#socket = socket;
    this.#log = log;
    this.#onClose = onClose;
    let resolve!: (hello: Hello) => void;
    let reject!: (error: Error) => void;
    const promise = new Promise<Hello>((res, rej) => ((resolve = res), (reject = rej)));
    promise.catch(() => undefined); // observed by ready()
    this.#hello = { promise, resolve, reject, settled: false };
    stdio.onOutput((stream, chunk) => {
      if (stream === "stdout") this.#frames(chunk);
      else this.#diagnostics(chunk);
    });
    const closed = (how: string) => this.#close(new ExecutionError(`the executor's connection to container ${containerId.slice(0, 12)} ${how}`));
    socket.once("end", () => closed("ended (the container stopped or was removed)"));
    socket.once("close", () => closed("closed (the container stopped or was removed)"));
    socket.on("error", (error: Error) => closed(`failed: ${error.message}`));
    this.#updateRef();
  }

  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /** Resolves with the HELLO (protocol version checked); rejects with the executor's own error otherwise. */
  ready(timeoutMs: number = EXECUTOR_TIMEOUTS.helloMs): Promise<Hello> {
    if (this.#hello.settled) return this.#hello.promise;
    const timer = setTimeout(() => {
      this.#failHello(
        new ExecutionError(`the executor in container ${this.containerId.slice(0, 12)} did not start within ${timeoutMs} ms${this.#stderrNote()}`),
      );
    }, timeoutMs);
    return this.#hello.promise.finally(() => clearTimeout(timer));
  }

  async run(request: ExecutorLaunchRequest): Promise<ConnectionOutcome> {
    const release = await this.#runs.acquire();
    if (this.#closed) {
      release();
      throw this.#closed;
    }
    if (request.signal?.aborted) {
      release();
      return { exitCode: -1 };
    }
    const id = this.#id();
    return new Promise<ConnectionOutcome>((resolve, reject) => {
      let settled = false;
      let ended!: () => void;
      const runEnded = new Promise<void>((resolve) => (ended = resolve));
      const onAbort = () => {
        // Stop the program; the caller goes on at once. The connection stays held until the
        // executor's EXIT for this id (or the connection's end), so the next run never overlaps.
        const pending = this.#pending.get(id);
        if (pending?.kind === "run") pending.aborted = true;
        this.#write([encodeFrame(FrameType.Kill, id)]);
        settle({ exitCode: -1 });
        this.#unblock();
      };
      const settle = (outcome: ConnectionOutcome | Error) => {
        if (settled) return;
        settled = true;
        ended();
        request.signal?.removeEventListener("abort", onAbort);
        if (outcome instanceof Error) reject(outcome);
        else resolve(outcome);
      };
      this.#pending.set(id, { kind: "run", request, aborted: false, settle, release });
      this.#updateRef();
      request.signal?.addEventListener("abort", onAbort, { once: true });
      try {
        const frames = runFrames(id, { ...request, streamsStdin: request.stdinSource !== undefined });
        this.#write(frames);
        if (request.stdinSource) this.#streamStdin(request.stdinSource, id, () => settled, runEnded);
      } catch (error) {
        // Only the request's content can fail to encode (a NUL byte in argv or env).
        settle(
          error instanceof ExecutorProtocolError
            ? new InvalidRequestError(`the executor cannot take this request: ${error.message}`, { cause: error })
            : (error as Error),
        );
        this.#finish(id);
      }
    });
  }

  /** Sends an interactive stdin source as the run's STDIN frames while it runs (stdin-source.ts). */
  #streamStdin(source: NonNullable<ExecutorLaunchRequest["stdinSource"]>, id: number, runSettled: () => boolean, runEnded: Promise<void>): void {
    pumpStdin(
      source,
      id,
      socketSink(this.#socket, () => runSettled() || this.closed, runEnded),
    ).catch((error: unknown) =>
      this.#log.warn("the stdin source failed; the program's stdin was closed", { container: this.containerId, error: String(error) }),
    );
  }

  /** Kills every process of the sandbox user (and the current run, if any). */
  async killAll(): Promise<void> {
    if (this.#closed) return;
    const id = this.#id();
    await this.#request(id, "killall", encodeFrame(FrameType.KillAll, id), EXECUTOR_TIMEOUTS.killAllMs);
  }

  /**
   * Starts a warm-start program between runs; resolves when it is ready (it waits for its
   * request), or when it could not start: a run without it is only slower, so nothing is thrown.
   */
  async prepare(request: PrepareRequest): Promise<void> {
    if (this.#closed) return;
    const id = this.#id();
    let frame: Buffer;
    try {
      frame = encodePrepare({ id, argv: request.argv, env: request.env, cwd: request.cwd ?? SANDBOX_DIR });
    } catch (error) {
      this.#log.warn("a warm-start program cannot be encoded", { container: this.containerId, error: String(error) });
      return;
    }
    // A warm start that never says it is ready (a broken program) must not hold up the pool.
    await this.#request(id, "prepare", frame, EXECUTOR_TIMEOUTS.prepareMs, () =>
      this.#log.warn("a warm start did not get ready in time", { container: this.containerId, ms: EXECUTOR_TIMEOUTS.prepareMs }),
    );
  }

  /** One round trip through the executor (no program). */
  async ping(): Promise<void> {
    if (this.#closed) throw this.#closed;
    const id = this.#id();
    await this.#request(id, "ping", encodeFrame(FrameType.Ping, id));
  }

  /** Sends a request without output and waits for its answer, or for `timeoutMs` (then it stops waiting). */
  #request(id: number, kind: PendingSimple["kind"], frame: Buffer, timeoutMs?: number, onTimeout?: () => void): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              onTimeout?.();
              this.#finish(id);
            }, timeoutMs);
      this.#pending.set(id, {
        kind,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
      this.#updateRef();
      this.#write([frame]);
    });
  }

  /** Routes the frames of interpreter contexts to `contexts` (one per connection). */
  attachContexts(contexts: ContextFrames): void {
    this.#contexts = contexts;
  }

  /** A fresh request id (contexts take theirs from the same counter: ids never clash). */
  nextId(): number {
    return this.#id();
  }

  /** Sends frames of a context (CTX_START, CTX_SEND, CTX_SIGNAL); throws once the connection ended. */
  send(frames: Buffer[]): void {
    if (this.#closed) throw this.#closed;
    this.#write(frames);
    this.#updateRef();
  }

  /** Re-evaluates whether the socket keeps the process alive (a context's cell started or ended). */
  refresh(): void {
    this.#updateRef();
  }

  /** Ends the connection (the container keeps running). */
  destroy(): void {
    this.#socket.destroy();
  }

  #id(): number {
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0xffffffff ? 1 : this.#nextId + 1;
    return id;
  }

  #write(frames: Buffer[]): void {
    if (this.#closed) return;
    if (frames.length === 1) {
      this.#socket.write(frames[0]);
      return;
    }
    // One write for a small request: RUN and its data arrive together.
    const small = frames.reduce((n, f) => n + f.length, 0) <= 256 * 1024;
    if (small) this.#socket.write(Buffer.concat(frames));
    else for (const frame of frames) this.#socket.write(frame);
  }

  #frames(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (error) {
      this.#log.error("the executor's stream is corrupt; closing the connection", { container: this.containerId, error: String(error) });
      this.#close(new ExecutionError(`the executor's stream from container ${this.containerId.slice(0, 12)} is corrupt: ${(error as Error).message}`));
      this.#socket.destroy();
      return;
    }
    this.#inbox.push(...frames);
    this.#pump();
  }

  /**
   * Handles queued frames in order. When the consumer answers an output chunk with a promise
   * (it is slow), nothing more is handled and the socket is paused until that promise settles:
   * back-pressure reaches the program through Docker and the executor's pipes.
   */
  #pump(): void {
    while (!this.#blocked && this.#inbox.length > 0) {
      const wait = this.#dispatch(this.#inbox.shift()!);
      if (!wait) continue;
      this.#socket.pause();
      const blocked: Promise<void> = Promise.resolve(wait)
        .catch(() => undefined)
        .then(() => {
          if (this.#blocked !== blocked) return;
          this.#blocked = undefined;
          if (!this.#closed) this.#socket.resume();
          this.#pump();
        });
      this.#blocked = blocked;
    }
  }

  /** Stops waiting for a consumer that went away (an aborted run). */
  #unblock(): void {
    if (!this.#blocked) return;
    this.#blocked = undefined;
    if (!this.#closed) this.#socket.resume();
    queueMicrotask(() => this.#pump());
  }

  #dispatch(frame: Frame): void | Promise<void> {
    if (frame.type === FrameType.Hello) {
      try {
        const hello = checkedHello(frame.body, this.containerId);
        this.#hello.settled = true;
        this.#hello.resolve(hello);
        this.#updateRef();
      } catch (error) {
        this.#failHello(error as Error);
      }
      return;
    }
    if (this.#contexts?.owns(frame.id)) return this.#contexts.dispatch(frame);
    const pending = this.#pending.get(frame.id);
    if (frame.type === FrameType.Error) {
      const message = frame.body.toString("utf8");
      if (frame.id === 0 || !pending) {
        this.#log.error("the executor reported an error", { container: this.containerId, message });
        if (!this.#hello.settled) this.#failHello(new ExecutionError(`the executor in container ${this.containerId.slice(0, 12)} could not start: ${message}`));
        return;
      }
      // A warm start that could not start (or was replaced) only means the next run starts cold.
      if (pending.kind === "prepare") this.#log.debug("no warm start", { container: this.containerId, message });
      else if (pending.kind !== "run") this.#log.warn(`the executor refused a ${pending.kind.toUpperCase()}`, { container: this.containerId, message });
      this.#finish(frame.id, new ExecutionError(`the executor refused the request: ${message}`));
      return;
    }
    if (!pending) return; // a frame of a run the engine stopped waiting for
    switch (frame.type) {
      case FrameType.Stdout:
      case FrameType.Stderr: {
        if (pending.kind !== "run" || pending.aborted || frame.body.length === 0) return;
        return pending.request.onOutput(frame.type === FrameType.Stdout ? "stdout" : "stderr", frame.body);
      }
      case FrameType.Exit: {
        if (pending.kind !== "run") return;
        let exit: ExitReport;
        try {
          exit = parseExit(frame.body);
        } catch (error) {
          this.#finish(frame.id, error as Error);
          return;
        }
        const usage = exit.usage && toResourceUsage(exit.usage);
        this.#finish(frame.id, {
          exitCode: exit.exitCode,
          exit,
          richOutputs: exit.richOutputs,
          ...(usage && pending.request.measureUsage && { usage }),
          ...(exit.oomKills !== undefined && { oomKills: exit.oomKills }),
        });
        return;
      }
      case FrameType.Done:
      case FrameType.Pong:
        this.#finish(frame.id);
        return;
      default:
        this.#log.warn("unknown frame from the executor", { container: this.containerId, type: frame.type });
    }
  }

  /** Ends a pending request: a run settles (if not already) and releases the connection. */
  #finish(id: number, outcome?: ConnectionOutcome | Error): void {
    const pending = this.#pending.get(id);
    if (!pending) return;
    this.#pending.delete(id);
    if (pending.kind === "run") {
      pending.settle(outcome ?? new ExecutionError("the executor ended the run without an exit frame"));
      pending.release();
    } else {
      pending.resolve();
    }
    this.#updateRef();
  }

  #failHello(error: Error): void {
    if (this.#hello.settled) return;
    this.#hello.settled = true;
    this.#hello.reject(error);
    this.#updateRef();
  }

  #close(error: Error): void {
    if (this.#closed) return;
    this.#closed = error;
    this.#inbox.length = 0;
    this.#blocked = undefined;
    this.#failHello(new ExecutionError(`${error.message}${this.#stderrNote()}`));
    for (const id of [...this.#pending.keys()]) {
      const pending = this.#pending.get(id)!;
      // A KILLALL of a container that is gone has nothing left to kill; a run cannot finish.
      this.#finish(id, pending.kind === "run" ? error : undefined);
    }
    this.#contexts?.closed(error);
    this.#socket.destroy();
    this.#onClose();
  }

  #diagnostics(chunk: Buffer): void {
    const text = chunk.toString("utf8");
    this.#stderr = (this.#stderr + text).slice(-2048);
    for (const line of text.split("\n").filter(Boolean)) this.#log.debug("executor", { container: this.containerId, line });
  }

  #stderrNote(): string {
    const text = this.#stderr.trim();
    return text ? `; it said: ${text}` : "";
  }

  /** The socket keeps the process alive only while something waits for the executor. */
  #updateRef(): void {
    const busy = this.#pending.size > 0 || !this.#hello.settled || this.#contexts?.busy() === true;
    if (busy) this.#socket.ref?.();
    else this.#socket.unref?.();
  }
}
