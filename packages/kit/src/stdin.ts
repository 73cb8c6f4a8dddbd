/**
 * Interactive stdin: what `executeStream(request, { stdin })` takes. The engine reads the source
 * one chunk at a time, only as fast as its connection to the program drains, sends each chunk to
 * the running program as it arrives, and closes the program's stdin when the source ends.
 */

/** One piece of a program's stdin: text (sent as UTF-8) or bytes. */
export type StdinChunk = string | Uint8Array;

/**
 * A program's stdin while it runs: any async (or sync) iterable of chunks, e.g. a Node Readable
 * such as `process.stdin`, an async generator, or a `StdinWriter` from `createStdin()`.
 */
export type StdinSource = AsyncIterable<StdinChunk> | Iterable<StdinChunk>;

/** A writable handle that is also a StdinSource: write chunks while the program runs, then end it. */
export interface StdinWriter extends AsyncIterable<Uint8Array> {
  /**
   * Queues a chunk for the program. Returns false when the chunk cannot reach it any more (the
   * writer was ended, or the engine stopped reading: the program ended): nothing was queued.
   */
  write(chunk: StdinChunk): boolean;
  /** Closes the program's stdin once what was written has gone out (its next read gets EOF). */
  end(): void;
  /** The engine stopped reading (the run ended): later writes return false. */
  readonly closed: boolean;
  /** Bytes written that never reached the program (queued when the run ended). */
  readonly dropped: number;
}

/**
 * A StdinWriter: the writes are queued in memory until the engine takes them (it takes the next
 * only when its connection has drained the last), and the queue is dropped when the run ends.
 */
export function createStdin(): StdinWriter {
  const queue: Uint8Array[] = [];
  let ended = false;
  let closed = false;
  let dropped = 0;
  let wake: (() => void) | undefined;
  const encoder = new TextEncoder();
  const close = () => {
    if (closed) return;
    closed = true;
    for (const chunk of queue.splice(0)) dropped += chunk.length;
  };
  return {
    write(chunk) {
      if (ended || closed) return false;
      if (typeof chunk !== "string" && !(chunk instanceof Uint8Array)) throw new TypeError("stdin chunk: expected a string or a Uint8Array");
      const bytes = typeof chunk === "string" ? encoder.encode(chunk) : chunk;
      if (bytes.length === 0) return true;
      queue.push(bytes);
      wake?.();
      return true;
    },
    end() {
      ended = true;
      wake?.();
    },
    get closed() {
      return closed;
    },
    get dropped() {
      return dropped;
    },
    [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
      return {
        async next(): Promise<IteratorResult<Uint8Array>> {
          for (;;) {
            if (closed) return { done: true, value: undefined };
            const chunk = queue.shift();
            if (chunk) return { done: false, value: chunk };
            if (ended) {
              close();
              return { done: true, value: undefined };
            }
            await new Promise<void>((resolve) => (wake = resolve));
            wake = undefined;
          }
        },
        async return(): Promise<IteratorResult<Uint8Array>> {
          close();
          wake?.();
          return { done: true, value: undefined };
        },
      };
    },
  };
}

/** Whether `value` can be a StdinSource (an iterable that is not itself a string or bytes). */
export function isStdinSource(value: unknown): value is StdinSource {
  if (value === null || typeof value !== "object") return false;
  if (value instanceof Uint8Array) return false;
  const v = value as Record<symbol, unknown>;
  return typeof v[Symbol.asyncIterator] === "function" || typeof v[Symbol.iterator] === "function";
}
