import type { Dispatcher } from "undici";
import type { Isol8Error } from "@isol8/kit/errors";
import type { StreamEvent } from "@isol8/kit";
import { SseParser } from "./sse.js";
import type { RemoteTransport } from "./transport.js";

export const ABORTED = "The execution was aborted: the connection to the server was closed, so the server stops the program and every process it started.";
export const ABORTED_BEFORE_START = "The execution was aborted before it started.";

/** Reads a body to its end; false when it did not end within `ms`. */
async function ended(body: AsyncIterable<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const drained = (async () => {
    for await (const _chunk of body) {
      // discard
    }
    return true;
  })().catch(() => false);
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([drained, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** One SSE message's data as a stream event; anything else is a protocol error event. */
function parseEvent(data: string, host: string): StreamEvent {
  try {
    const event = JSON.parse(data) as StreamEvent;
    if (event && typeof event === "object" && typeof event.type === "string") return event;
  } catch {
    // fall through
  }
  return { type: "error", data: `The server at ${host} sent an event that is not an isol8 stream event`, code: "ISOL8_ERR_REMOTE_PROTOCOL" };
}

const terminal = (event: StreamEvent) => event.type === "exit" || event.type === "error";

/**
 * POST /execute/stream (the caller has checked that `signal` is not already aborted): the
 * execution's events as the server sends them (SSE over the response body, parsed chunk by chunk). Like the local engine, failures become an `error` event, never a
 * throw. Leaving the loop early closes the connection, and the server cancels the run.
 */
export async function* streamExecution(
  transport: RemoteTransport,
  body: string,
  options: { timeoutMs: number; signal?: AbortSignal },
): AsyncIterable<StreamEvent> {
  const { signal, timeoutMs } = options;
  const abort = new AbortController();
  // The caller's abort closes the connection (the server then kills the run); removed in the finally below.
  const onAbort = () => abort.abort();
  signal?.addEventListener("abort", onAbort, { once: true });
  let response: Dispatcher.ResponseData;
  try {
    response = await transport.request("POST", "/execute/stream", { body, timeoutMs, signal: abort.signal, accept: "text/event-stream" });
  } catch (error) {
    signal?.removeEventListener("abort", onAbort);
    yield signal?.aborted
      ? { type: "error", data: ABORTED, code: "ISOL8_ERR_EXECUTION" }
      : { type: "error", data: (error as Error).message, code: (error as Isol8Error).code };
    return;
  }
  const parser = new SseParser();
  let finished = false;
  try {
    for await (const chunk of response.body) {
      for (const message of parser.push(chunk as Buffer)) {
        const event = parseEvent(message.data, transport.host);
        yield event;
        if (terminal(event)) {
          finished = true;
          return;
        }
      }
    }
    for (const message of parser.end()) {
      const event = parseEvent(message.data, transport.host);
      yield event;
      if (terminal(event)) {
        finished = true;
        return;
      }
    }
    finished = true;
    yield { type: "error", data: `The server at ${transport.host} closed the stream before the execution ended`, code: "ISOL8_ERR_REMOTE_UNAVAILABLE" };
  } catch (error) {
    finished = true;
    if (signal?.aborted) {
      yield { type: "error", data: ABORTED, code: "ISOL8_ERR_EXECUTION" };
      return;
    }
    const failure = transport.transportError(error, "POST /execute/stream", timeoutMs);
    yield { type: "error", data: failure.message, code: failure.code };
  } finally {
    signal?.removeEventListener("abort", onAbort);
    // Early exit (a break, a return): drop the connection so the server stops the run.
    // After the terminal event, read the (immediate) end of the stream, so the socket goes back to the pool.
    if (!finished || !(await ended(response.body, 2_000))) abort.abort();
  }
}
