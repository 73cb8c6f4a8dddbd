import type { StdinChunk, StdinSource, StreamEvent } from "@isol8/kit";
import { EXECUTE_WS_PATH, EXECUTE_WS_PROTOCOL, type WsClientMessage, type WsServerMessage } from "@isol8/kit/ws-wire";
import type { RemoteErrorInfo } from "./errors.js";
import { ABORTED } from "./stream.js";
import type { RemoteTransport } from "./transport.js";

/** Stdin bytes the WebSocket may hold unsent before the source is read again. */
const STDIN_HIGH_WATER = 1024 * 1024;
/** How often a full send buffer is looked at (a WebSocket has no drain event). */
const DRAIN_POLL_MS = 10;

/**
 * Whether the server has the interactive endpoint: GET /execute/ws without an upgrade answers
 * 426 there, 404 on a server that predates it. Other failures (401, unreachable) are thrown.
 */
export async function offersWebSocket(transport: RemoteTransport, timeoutMs: number): Promise<boolean> {
  try {
    const response = await transport.request("GET", EXECUTE_WS_PATH, { timeoutMs });
    await response.body.dump();
    return false;
  } catch (error) {
    const status = (error as RemoteErrorInfo).status;
    if (status === 426) return true;
    if (status === 404) return false;
    throw error;
  }
}

const terminal = (event: StreamEvent) => event.type === "exit" || event.type === "error";

/**
 * One interactive execution over GET /execute/ws: sends the request, then the stdin source's
 * chunks as they come (no faster than the socket sends them), then stdin-end; yields the
 * events. Warnings (stdin the program could no longer take) end nothing and are not events of
 * the Isol8Engine stream: they are left out. Failures become an `error` event; the caller's
 * abort, or leaving the loop early, closes the connection and the server kills the run.
 */
export async function* streamInteractive(
  transport: RemoteTransport,
  apiKey: string,
  body: string,
  stdin: StdinSource,
  options: { timeoutMs: number; signal?: AbortSignal },
): AsyncIterable<StreamEvent> {
  const { WebSocket } = await import("undici");
  const url = new URL(`${transport.host}${EXECUTE_WS_PATH}`);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(url, {
    protocols: [EXECUTE_WS_PROTOCOL],
    headers: { authorization: `Bearer ${apiKey}`, ...transport.sessionHeaders(EXECUTE_WS_PATH) },
  });
  const queue: StreamEvent[] = [];
  let wake: (() => void) | undefined;
  let done = false;
  let finished!: () => void;
  const ended = new Promise<void>((resolve) => (finished = resolve));
  const push = (event: StreamEvent) => {
    if (done) return;
    queue.push(event);
    if (terminal(event)) {
      done = true;
      finished();
    }
    wake?.();
  };
  let idle: NodeJS.Timeout | undefined;
  const resetIdle = () => {
    clearTimeout(idle);
    idle = setTimeout(() => {
      push({ type: "error", data: `${EXECUTE_WS_PATH} on ${transport.host}: nothing received within ${options.timeoutMs} ms`, code: "ISOL8_ERR_TIMEOUT" });
      ws.close();
    }, options.timeoutMs);
  };
  const onAbort = () => {
    push({ type: "error", data: ABORTED, code: "ISOL8_ERR_EXECUTION" });
    ws.close(1000, "aborted");
  };
  options.signal?.addEventListener("abort", onAbort, { once: true });
  ws.addEventListener("open", () => {
    resetIdle();
    ws.send(body);
    void pump(ws, stdin, ended).catch((error: unknown) => {
      push({ type: "error", data: `options.stdin failed: ${(error as Error).message}`, code: "ISOL8_ERR_INVALID_REQUEST" });
      ws.close();
    });
  });
  ws.addEventListener("message", (message) => {
    resetIdle();
    let event: WsServerMessage | undefined;
    try {
      event = JSON.parse(String(message.data)) as WsServerMessage;
    } catch {
      event = undefined;
    }
    if (!event || typeof event.type !== "string") {
      push({ type: "error", data: `The server at ${transport.host} sent a message that is not an isol8 stream event`, code: "ISOL8_ERR_REMOTE_PROTOCOL" });
      ws.close();
      return;
    }
    if (event.type !== "warning") push(event);
  });
  ws.addEventListener("close", (close) => {
    push({
      type: "error",
      data: `The WebSocket to ${transport.host}${EXECUTE_WS_PATH} closed before the execution ended (code ${close.code}${close.reason ? `: ${close.reason}` : ""})`,
      code: "ISOL8_ERR_REMOTE_UNAVAILABLE",
    });
  });
  try {
    for (;;) {
      const event = queue.shift();
      if (event) {
        yield event;
        if (terminal(event)) return;
        continue;
      }
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    done = true;
    finished();
    clearTimeout(idle);
    options.signal?.removeEventListener("abort", onAbort);
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(1000, "done");
  }
}

/** Sends the source's chunks as stdin messages, then stdin-end; stops reading when the run ended. */
async function pump(ws: InstanceType<typeof import("undici").WebSocket>, source: StdinSource, ended: Promise<void>): Promise<void> {
  const iterator: AsyncIterator<StdinChunk> | Iterator<StdinChunk> =
    Symbol.asyncIterator in source ? (source as AsyncIterable<StdinChunk>)[Symbol.asyncIterator]() : (source as Iterable<StdinChunk>)[Symbol.iterator]();
  const STOP = Symbol("stop");
  const stopped = ended.then((): typeof STOP => STOP);
  let finished = false;
  const send = (message: WsClientMessage) => ws.readyState === ws.OPEN && (ws.send(JSON.stringify(message)), true);
  try {
    for (;;) {
      const step = await Promise.race([iterator.next(), stopped]);
      if (step === STOP) return;
      if (step.done) {
        finished = true;
        send({ type: "stdin-end" });
        return;
      }
      const chunk = step.value;
      const message: WsClientMessage =
        typeof chunk === "string"
          ? { type: "stdin", data: chunk }
          : chunk instanceof Uint8Array
            ? { type: "stdin", data: Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString("base64"), encoding: "base64" }
            : (() => {
                throw new TypeError(`a chunk must be a string or a Uint8Array, got ${chunk === null ? "null" : typeof chunk}`);
              })();
      if (!send(message)) return;
      while (ws.bufferedAmount > STDIN_HIGH_WATER && ws.readyState === ws.OPEN) {
        if ((await Promise.race([new Promise<void>((resolve) => setTimeout(resolve, DRAIN_POLL_MS)), stopped])) === STOP) return;
      }
    }
  } finally {
    if (!finished) void Promise.resolve(iterator.return?.()).catch(() => undefined);
  }
}
