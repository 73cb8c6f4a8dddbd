import type { Duplex } from "node:stream";
import { InvalidRequestError, isStdinSource, type StdinChunk, type StdinSource } from "@isol8/kit";
import { DATA_CHUNK, FrameType, encodeFrame } from "./executor-protocol.js";

/**
 * Checks an execution's stdin source before anything runs: a source must be an iterable of
 * chunks, and the request's `stdin` (all of it up front) and a source (while it runs) are two
 * answers to one question, so both together are refused.
 */
export function checkStdinSource(source: unknown, requestStdin: unknown): StdinSource | undefined {
  if (source === undefined) return undefined;
  if (!isStdinSource(source)) {
    throw new InvalidRequestError(
      "options.stdin: expected an async iterable of string or Uint8Array chunks (a Readable, an async generator, or createStdin())",
    );
  }
  if (requestStdin !== undefined) {
    throw new InvalidRequestError(
      "request.stdin and options.stdin together: give the program's stdin either up front (request.stdin) or while it runs (options.stdin), not both",
    );
  }
  return source;
}

/** Where the frames go: `write` answers false when the connection's buffer is full; `drained` settles when it has room again. */
export interface FrameSink {
  write(frame: Buffer): boolean;
  drained(): Promise<void>;
  /** The run ended (its exit, an abort, the connection's end): stop reading the source. */
  readonly stopped: boolean;
  /** Settles when the run ends: a source waiting for its next chunk is told at once. */
  readonly ended: Promise<void>;
}

/**
 * A connection's socket as a run's FrameSink: a full buffer waits for its drain, the socket's
 * close, or the run's end (whichever comes first).
 */
export function socketSink(socket: Duplex, stopped: () => boolean, ended: Promise<void>): FrameSink {
  return {
    write: (frame) => (stopped() ? true : socket.write(frame)),
    drained: () =>
      new Promise<void>((resolve) => {
        const done = () => {
          socket.off("drain", done);
          socket.off("close", done);
          resolve();
        };
        socket.once("drain", done);
        socket.once("close", done);
        void ended.then(done);
      }),
    get stopped() {
      return stopped();
    },
    ended,
  };
}

const STOPPED: unique symbol = Symbol("stopped");

function toBuffer(chunk: StdinChunk): Buffer {
  if (typeof chunk === "string") return Buffer.from(chunk, "utf8");
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new InvalidRequestError(`options.stdin: a chunk must be a string or a Uint8Array, got ${chunk === null ? "null" : typeof chunk}`);
}

/**
 * Sends a stdin source to the executor as STDIN frames of run `id`, each chunk as it arrives,
 * then the empty frame that closes the program's stdin. The next chunk is read only once the
 * connection took the last one (back-pressure reaches the source). Stops reading, and tells the
 * source (its iterator's return), when the run ends first. Resolves when done; rejects only with
 * the source's own error or a bad chunk (the program's stdin is closed then too).
 */
export async function pumpStdin(source: StdinSource, id: number, sink: FrameSink): Promise<void> {
  const iterator: AsyncIterator<StdinChunk> | Iterator<StdinChunk> =
    Symbol.asyncIterator in source ? (source as AsyncIterable<StdinChunk>)[Symbol.asyncIterator]() : (source as Iterable<StdinChunk>)[Symbol.iterator]();
  let finished = false;
  try {
    for (;;) {
      if (sink.stopped) return;
      const step = await Promise.race([iterator.next(), sink.ended.then((): typeof STOPPED => STOPPED)]);
      if (step === STOPPED) return;
      if (step.done) {
        finished = true;
        break;
      }
      if (sink.stopped) return;
      const bytes = toBuffer(step.value);
      for (let at = 0; at < bytes.length; at += DATA_CHUNK) {
        if (!sink.write(encodeFrame(FrameType.Stdin, id, bytes.subarray(at, at + DATA_CHUNK)))) await sink.drained();
        if (sink.stopped) return;
      }
    }
  } finally {
    // Not awaited: a generator's return() waits for its pending next(), which may never come.
    if (!finished) void Promise.resolve(iterator.return?.()).catch(() => undefined);
    // The program's stdin is closed however the source ended (a stale id is ignored by the executor).
    if (!sink.stopped) sink.write(encodeFrame(FrameType.Stdin, id));
  }
}
