import { createStdin, type StdinWriter, type StreamEvent, type WsServerMessage } from "@isol8/kit";
import type { Context } from "hono";
import type { RawData, WebSocket } from "ws";
import * as z from "zod";
import { parseJson, validate } from "./bodies.js";
import type { ServerEnv } from "./env.js";
import { drive } from "./execution.js";
import { toHttpError } from "./errors.js";
import type { RequestScope } from "./request-scope.js";
import { executeBodySchema } from "./schemas.js";
import type { StreamDeps } from "./sse.js";
import { outcomeOf, recordRun, type Target } from "./targets.js";

/** The client's messages after the first (the kit's WsClientMessage). */
const wsClientMessageSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("stdin"), data: z.string({ error: "expected the chunk as a string" }), encoding: z.enum(["utf8", "base64"]).optional() }),
  z.strictObject({ type: z.literal("stdin-end") }),
  z.strictObject({ type: z.literal("kill") }),
]);

/** A ping this often keeps proxies from closing a quiet connection (the SSE stream's keep-alive). */
const HEARTBEAT_MS = 15_000;
/** How long a connection may wait before sending its request. */
const FIRST_MESSAGE_MS = 30_000;
/** After the last event: how long late messages still get an answer before the server closes. */
const LINGER_MS = 5_000;
/** Close codes: 1000 done, 1008 a request that could not run (its error event says why), 1001 shutdown. */
const CLOSE_DONE = 1000;
const CLOSE_REFUSED = 1008;
const CLOSE_GOING_AWAY = 1001;

export type WsSessionDeps = StreamDeps;

/**
 * One WebSocket connection of /execute/ws: waits for the request (the JSON body of POST
 * /execute/stream), takes it through the same policy, slot and engine choice (targets.ts,
 * slots.ts), runs it with the connection's stdin messages as the program's stdin source, and
 * sends each event as JSON (the SSE stream's `data:`). `kill` stops the run (the engine's error
 * event ends it). A chunk that cannot reach the program any more gets a `warning`, never an
 * error. Each event is sent only once the previous one was written: a slow client slows the
 * program's output (back-pressure), as on the SSE stream.
 */
export class WsSession {
  readonly #ws: WebSocket;
  readonly #c: Context<ServerEnv>;
  readonly #deps: WsSessionDeps;
  readonly #onClosed: () => void;
  /** Aborts when the client goes away: the request scope's "client" signal. */
  readonly #gone = new AbortController();
  readonly #kill = new AbortController();
  #state: "waiting" | "running" | "done" = "waiting";
  #stdin: StdinWriter | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #heartbeat: NodeJS.Timeout;
  #outcome = "error";
  #draining = false;
  /** The client went away during the run (logged as 499, as on the SSE route). */
  #clientLeft = false;

  constructor(ws: WebSocket, c: Context<ServerEnv>, deps: WsSessionDeps, onClosed: () => void) {
    this.#ws = ws;
    this.#c = c;
    this.#deps = deps;
    this.#onClosed = onClosed;
    this.#timer = setTimeout(() => this.#refuse("ISOL8_ERR_TIMEOUT", `No request within ${FIRST_MESSAGE_MS / 1000} s of the connection`), FIRST_MESSAGE_MS);
    this.#heartbeat = setInterval(() => ws.ping(), HEARTBEAT_MS);
    ws.on("message", (data, isBinary) => this.#message(data, isBinary));
    ws.on("error", () => undefined); // a broken connection is a close
    ws.once("close", () => this.#closed());
  }

  /** Shutdown: close now unless a run is going (it closes after its last event). */
  drain(): void {
    this.#draining = true;
    if (this.#state !== "running") this.#ws.close(CLOSE_GOING_AWAY, "the server is shutting down");
  }

  #message(data: RawData, isBinary: boolean): void {
    const text = isBinary ? undefined : Buffer.isBuffer(data) ? data.toString("utf8") : Buffer.concat(data as Buffer[]).toString("utf8");
    if (this.#state === "waiting" && !this.#stdin) {
      if (text === undefined)
        return this.#refuse("ISOL8_ERR_INVALID_REQUEST", "The first message must be the request as JSON text: { request, options?, sessionId? }");
      void this.#run(text);
      return;
    }
    if (text === undefined) return this.#warn("bad-message", "Binary messages are not read: send stdin as { type: 'stdin', data, encoding: 'base64' }");
    let parsed;
    try {
      parsed = wsClientMessageSchema.safeParse(JSON.parse(text));
    } catch {
      return this.#warn("bad-message", "Malformed JSON in a message");
    }
    if (!parsed.success) {
      return this.#warn(
        "bad-message",
        `Expected { type: 'stdin', data, encoding? }, { type: 'stdin-end' } or { type: 'kill' }: ${parsed.error.issues[0]?.message ?? "invalid"}`,
      );
    }
    const message = parsed.data;
    if (message.type === "kill") {
      // A run still waiting for its slot is killed as it starts.
      if (this.#state !== "done") this.#kill.abort();
      else this.#warn("bad-message", "kill: the program has already ended");
      return;
    }
    if (message.type === "stdin-end") {
      this.#stdin?.end();
      return;
    }
    const chunk = message.encoding === "base64" ? Buffer.from(message.data, "base64") : message.data;
    if (this.#state === "done" || !this.#stdin?.write(chunk)) {
      const why = this.#state === "done" || this.#stdin?.closed ? "the program has ended" : "stdin was already ended (stdin-end)";
      this.#warn("stdin-closed", `stdin not delivered: ${why}; ${Buffer.byteLength(chunk)} bytes dropped`);
    }
  }

  async #run(text: string): Promise<void> {
    clearTimeout(this.#timer);
    const { slots, targets, metrics } = this.#deps;
    // Chunks sent while the request waits for a slot are queued for the program.
    this.#stdin = createStdin();
    let scope: RequestScope | undefined;
    let target: Target | undefined;
    try {
      const body = validate(executeBodySchema, parseJson(text), "body");
      this.#c.set("runtime", body.request.runtime);
      if (body.sessionId) this.#c.set("sessionId", body.sessionId);
      scope = slots.scope(this.#gone.signal);
      // A request with its stdin up front runs without a source (the exec path can run it too).
      if (body.request.stdin !== undefined) this.#stdin.end();
      target = await targets.prepare(this.#c, body, scope);
    } catch (error) {
      scope?.dispose();
      const http = toHttpError(error);
      this.#refuse(http.code, http.message);
      return;
    }
    this.#state = "running";
    try {
      const { ended, event, settled } = await drive(target.engine, target.request, scope.signal, (e) => this.#send(e), {
        ...(target.request.stdin === undefined && { stdin: this.#stdin }),
        kill: this.#kill.signal,
      });
      void settled.finally(target.release);
      this.#outcome = outcomeOf(event, ended);
      if (scope.reason === "client") this.#clientLeft = true;
      if (ended === "aborted" && scope.reason !== "client") {
        const error = scope.error(slots.timeoutMs);
        await this.#send({ type: "error", data: error.message, code: error.code });
      }
      if (event?.type === "exit") recordRun(target);
      if (this.#stdin.dropped > 0)
        this.#warn("stdin-closed", `The program ended before reading ${this.#stdin.dropped} bytes of stdin sent to it; they were dropped`);
    } catch {
      target.release();
      await this.#send({ type: "error", data: "Internal server error", code: "ISOL8_ERR_INTERNAL" }).catch(() => undefined);
    } finally {
      scope.dispose();
      metrics.executions.inc({ runtime: target.request.runtime, outcome: this.#outcome });
      this.#finish();
    }
  }

  /** After the last event: late messages still get a warning for a while, then the server closes. */
  #finish(): void {
    this.#state = "done";
    if (this.#draining) return this.#ws.close(CLOSE_GOING_AWAY, "the server is shutting down");
    this.#timer = setTimeout(() => this.#ws.close(CLOSE_DONE, "done"), LINGER_MS);
  }

  /** The request could not run: one error event (the HTTP error's code and message), then close. */
  #refuse(code: string, message: string): void {
    clearTimeout(this.#timer);
    this.#state = "done";
    void this.#send({ type: "error", data: message, code })
      .catch(() => undefined)
      .finally(() => this.#ws.close(CLOSE_REFUSED, code));
  }

  #warn(reason: "stdin-closed" | "bad-message", data: string): void {
    void this.#send({ type: "warning", reason, data }).catch(() => undefined);
  }

  /** Sends one message; settles when it was written (rejects when the connection is gone). */
  #send(message: WsServerMessage | StreamEvent): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.#ws.readyState !== this.#ws.OPEN) return reject(new Error("the client closed the connection"));
      this.#ws.send(JSON.stringify(message), (error) => (error ? reject(error) : resolve()));
    });
  }

  #closed(): void {
    clearTimeout(this.#timer);
    clearInterval(this.#heartbeat);
    this.#gone.abort();
    this.#stdin?.end();
    const c = this.#c;
    if (this.#state === "running") this.#clientLeft = true;
    this.#deps.requests.finish(c, this.#clientLeft ? 499 : 101, c.get("startedAt"), { stream: true, websocket: true, outcome: this.#outcome });
    this.#onClosed();
  }
}
