import { ExecutionError, FileOperationError, InvalidOptionsError, reviveError, type Isol8Error } from "@isol8/kit/errors";
import type {
  ContextInfo,
  CreateContextOptions,
  EngineOptions,
  ExecuteOptions,
  ExecutionRequest,
  ExecutionResult,
  Isol8Engine,
  RuntimeInfo,
  SessionInfo,
  StartOptions,
  StreamEvent,
} from "@isol8/kit";
import { noSessionError, RemoteContexts, requireSession } from "./contexts.js";
import { checkEngineOptions } from "./engine-options.js";
import { RemoteError, type RemoteErrorInfo } from "./errors.js";
import { ABORTED, ABORTED_BEFORE_START, streamExecution } from "./stream.js";
import { RemoteTransport } from "./transport.js";
import { executeBody } from "./wire-request.js";
import { offersWebSocket, streamInteractive } from "./ws.js";

export interface RemoteConnection {
  /** Base URL of the server, e.g. "http://127.0.0.1:3000" (a path prefix is kept). */
  host: string;
  apiKey: string;
  /**
   * A persistent session on the server (created by the first execute): executions share one
   * container, putFile/getFile work, and stop() deletes it. Every request names it in the
   * X-Isol8-Session header (a load balancer's routing key); only executions until the first one
   * succeeded may create it, so once made, a server node that does not hold it (the node died or
   * drained, the session expired) fails with SessionNotFoundError: a new RemoteIsol8 starts afresh.
   */
  sessionId?: string;
  /**
   * Deadline of one request, waiting for headers and between body chunks. Default: the
   * execution's time limit (request, options, else 30 s) plus 30 s for queueing and transfer.
   */
  timeoutMs?: number;
  /** Deadline of connecting and of the health check (default 10 s). */
  connectTimeoutMs?: number;
  /** Most sockets kept open to the server (default 16); they are reused across calls. */
  connections?: number;
}

/** One persistent session on the server, as GET /sessions lists it (the kit's wire shape). */
export type RemoteSessionInfo = SessionInfo;

const DEFAULT_EXECUTION_TIMEOUT_MS = 30_000;
const MARGIN_MS = 30_000;
/** Engine options that describe the local engine, not the execution: never sent. */
const LOCAL_ONLY = new Set(["mode", "debug"]);

/**
 * The Isol8Engine interface over HTTP, talking to an `isol8 serve` instance: `execute`,
 * `executeStream` (Server-Sent Events, parsed as they arrive), and with a `sessionId` a persistent
 * session with `putFile`/`getFile`. One undici connection pool per client (keep-alive reuse).
 * Failures carry the server's message, HTTP status and isol8 error code, as the matching isol8
 * error class where one exists (see errorFromResponse).
 */
export class RemoteIsol8 implements Isol8Engine {
  readonly host: string;
  readonly sessionId?: string;
  readonly #transport: RemoteTransport;
  readonly #options: Record<string, unknown>;
  readonly #timeoutMs?: number;
  readonly #connectTimeoutMs: number;
  readonly #executionTimeoutMs: number;
  readonly #apiKey: string;
  /** Whether the server has /execute/ws (asked once, with the first stdin source). */
  #webSocket: Promise<boolean> | undefined;
  /** The session's interpreter contexts (contexts.ts). */
  readonly #contexts: RemoteContexts;

  constructor(connection: RemoteConnection, options: EngineOptions = {}) {
    let url: URL;
    try {
      url = new URL(connection.host);
    } catch {
      throw new InvalidOptionsError(`host: expected a URL such as "http://127.0.0.1:3000", got ${JSON.stringify(connection.host)}`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:")
      throw new InvalidOptionsError(`host: expected an http(s) URL, got ${JSON.stringify(connection.host)}`);
    if (!connection.apiKey) throw new InvalidOptionsError("apiKey: expected the server's API key");
    // Same validation as a local engine's: bad options fail here, naming the option.
    const parsed = checkEngineOptions(options);
    this.#connectTimeoutMs = connection.connectTimeoutMs ?? 10_000;
    this.#transport = new RemoteTransport({
      origin: url.origin,
      basePath: url.pathname.replace(/\/+$/, ""),
      apiKey: connection.apiKey,
      connectTimeoutMs: this.#connectTimeoutMs,
      connections: connection.connections ?? 16,
      ...(connection.sessionId !== undefined && { sessionId: connection.sessionId }),
    });
    this.host = this.#transport.host;
    if (connection.sessionId !== undefined) this.sessionId = connection.sessionId;
    this.#options = Object.fromEntries(Object.entries(options ?? {}).filter(([key, value]) => !LOCAL_ONLY.has(key) && value !== undefined));
    this.#timeoutMs = connection.timeoutMs;
    this.#apiKey = connection.apiKey;
    this.#executionTimeoutMs = parsed.timeoutMs ?? DEFAULT_EXECUTION_TIMEOUT_MS;
    this.#contexts = new RemoteContexts({
      transport: this.#transport,
      sessionId: this.sessionId,
      options: this.#options,
      // A kernel has 30 s to say ready (the kit's CONTEXT_START_TIMEOUT_MS), then the margin for queueing.
      timeoutMs: () => this.#timeoutMs ?? 30_000 + MARGIN_MS,
    });
  }

  #deadline(request?: ExecutionRequest): number {
    if (this.#timeoutMs !== undefined) return this.#timeoutMs;
    return (request?.timeoutMs ?? this.#executionTimeoutMs) + MARGIN_MS;
  }

  #body(request: ExecutionRequest): string {
    return executeBody(request, this.#options, this.sessionId);
  }

  /** Checks that the server answers and is ready (GET /health). */
  async start(_options?: StartOptions): Promise<void> {
    await this.#transport.health();
  }

  /** Deletes the remote session (only when sessionId is set; one already gone is fine), then closes the connections. */
  async stop(): Promise<void> {
    try {
      if (this.sessionId !== undefined) {
        await this.deleteSession(this.sessionId).catch((error: unknown) => {
          if ((error as RemoteErrorInfo).status !== 404) throw error;
        });
      }
    } finally {
      await this.close();
    }
  }

  /** Closes the connections without touching the session (a later call reopens them). */
  async close(): Promise<void> {
    await this.#transport.close();
  }

  /** `options.signal` aborting closes the connection: the server then kills the run (as the local engine does), and this rejects with ExecutionError. */
  async execute(request: ExecutionRequest, options: ExecuteOptions = {}): Promise<ExecutionResult> {
    const { signal } = options;
    if (request?.context !== undefined) requireSession(this.sessionId, "execute() with context");
    if (signal?.aborted) throw new ExecutionError(ABORTED_BEFORE_START);
    if (options.stdin !== undefined) {
      // Interactive stdin needs the WebSocket: the stream's exit is the result, its error the throw.
      for await (const event of this.executeStream(request, options)) {
        if (event.type === "exit") return event.result;
        if (event.type === "error")
          throw reviveError(event.code, event.data) ?? new RemoteError(event.code ?? "ISOL8_ERR_EXECUTION", event.data, { status: 0 });
      }
      throw new ExecutionError("The execution ended without a result.");
    }
    const timeoutMs = this.#deadline(request);
    try {
      const response = await this.#transport.request("POST", "/execute", { body: this.#body(request), timeoutMs, signal });
      try {
        return (await response.body.json()) as ExecutionResult;
      } catch (error) {
        throw this.#transport.transportError(error, "POST /execute", timeoutMs);
      }
    } catch (error) {
      if (signal?.aborted) throw new ExecutionError(ABORTED, { cause: error });
      throw error;
    }
  }

  /**
   * Streams the execution's events as the server sends them. Like the local engine, failures
   * become an `error` event, never a throw. Leaving the loop early closes the connection, and
   * the server cancels the run.
   */
  async *executeStream(request: ExecutionRequest, options: ExecuteOptions = {}): AsyncIterable<StreamEvent> {
    const { signal } = options;
    if (signal?.aborted) {
      yield { type: "error", data: ABORTED_BEFORE_START, code: "ISOL8_ERR_EXECUTION" };
      return;
    }
    if (request?.context !== undefined && this.sessionId === undefined) {
      const error = noSessionError("executeStream() with context");
      yield { type: "error", data: error.message, code: error.code };
      return;
    }
    if (options.stdin !== undefined) {
      yield* this.#streamInteractive(request, options);
      return;
    }
    yield* streamExecution(this.#transport, this.#body(request), { timeoutMs: this.#deadline(request), signal });
  }

  /**
   * A run with a stdin source goes over the server's WebSocket (GET /execute/ws), where stdin
   * can follow the request while the program runs; a server without it refuses (the SSE stream
   * carries no stdin after the request).
   */
  async *#streamInteractive(request: ExecutionRequest, options: ExecuteOptions): AsyncIterable<StreamEvent> {
    const source = options.stdin as unknown;
    const iterable =
      source !== null &&
      typeof source === "object" &&
      !(source instanceof Uint8Array) &&
      (typeof (source as Record<symbol, unknown>)[Symbol.asyncIterator] === "function" ||
        typeof (source as Record<symbol, unknown>)[Symbol.iterator] === "function");
    if (!iterable) {
      yield {
        type: "error",
        data: "options.stdin: expected an async iterable of string or Uint8Array chunks (a Readable, an async generator, or createStdin())",
        code: "ISOL8_ERR_INVALID_REQUEST",
      };
      return;
    }
    if (request?.stdin !== undefined) {
      yield {
        type: "error",
        data: "request.stdin and options.stdin together: give the program's stdin either up front (request.stdin) or while it runs (options.stdin), not both",
        code: "ISOL8_ERR_INVALID_REQUEST",
      };
      return;
    }
    this.#webSocket ??= offersWebSocket(this.#transport, this.#connectTimeoutMs + MARGIN_MS);
    let offered: boolean;
    try {
      offered = await this.#webSocket;
    } catch (error) {
      this.#webSocket = undefined; // ask again next time (the server may come back)
      yield { type: "error", data: (error as Error).message, code: (error as Isol8Error).code };
      return;
    }
    if (!offered) {
      yield {
        type: "error",
        data: `options.stdin needs the server's WebSocket endpoint (GET /execute/ws), and the server at ${this.host} has none: give the input up front with request.stdin`,
        code: "ISOL8_ERR_NOT_SUPPORTED",
      };
      return;
    }
    for await (const event of streamInteractive(this.#transport, this.#apiKey, this.#body(request), options.stdin!, {
      timeoutMs: this.#deadline(request),
      signal: options.signal,
    })) {
      // Output or an exit: the server ran it in the session, which it therefore holds.
      if (event.type !== "error") this.#transport.markSessionMade();
      yield event;
    }
  }

  #requireSession(method: string): string {
    if (this.sessionId === undefined) {
      throw new FileOperationError(
        `File operations require a sessionId: ${method}() needs a persistent session on the server; create RemoteIsol8 with { host, apiKey, sessionId }.`,
      );
    }
    return this.sessionId;
  }

  /**
   * A missing session on a file call before any execute() means none has created it yet, as on a
   * local persistent engine. After one, it is the server's SessionNotFoundError (the session lived
   * on a node that stopped, or expired), surfaced as it is.
   */
  #fileError(error: unknown, method: string): unknown {
    const code = (error as Isol8Error).code as string;
    const notMadeYet = code === "ISOL8_ERR_NOT_FOUND" || (code === "ISOL8_ERR_SESSION_NOT_FOUND" && !this.#transport.sessionMade);
    if ((error as RemoteErrorInfo).status === 404 && notMadeYet) {
      const wrapped = new FileOperationError(
        `${method}() needs the persistent container, which the first execute() creates (it fixes the runtime): call execute() first. (${(error as Error).message})`,
        { cause: error },
      );
      Object.defineProperty(wrapped, "status", { value: 404, enumerable: true });
      return wrapped;
    }
    return error;
  }

  /** Writes a file into the session's container (binary-safe; base64 on the wire). */
  async putFile(path: string, content: Buffer | string): Promise<void> {
    const sessionId = this.#requireSession("putFile");
    const body = JSON.stringify({ sessionId, path, content: Buffer.from(content).toString("base64") });
    try {
      const response = await this.#transport.request("POST", "/file", { body, timeoutMs: this.#deadline() });
      await response.body.dump();
    } catch (error) {
      throw this.#fileError(error, "putFile");
    }
  }

  /**
   * Starts an interpreter context in the session's sandbox (POST /session/{id}/contexts; the
   * server makes the session on first use); `execute({ code, runtime, context: id })` runs a cell
   * in it. Without a sessionId: NotSupportedError.
   */
  async createContext(options: CreateContextOptions): Promise<ContextInfo> {
    return this.#contexts.create(options);
  }

  /** The session's contexts ([] before the session exists). */
  async listContexts(): Promise<ContextInfo[]> {
    return this.#contexts.list();
  }

  /** A fresh kernel under the same id: every variable of the context is gone. ContextNotFoundError for an id the session does not hold. */
  async restartContext(id: string): Promise<ContextInfo> {
    return this.#contexts.restart(id);
  }

  /** Ends the context's kernel. ContextNotFoundError for an id the session does not hold. */
  async deleteContext(id: string): Promise<void> {
    await this.#contexts.delete(id);
  }

  /** Reads a file from the session's container, byte-exact. */
  async getFile(path: string): Promise<Buffer> {
    const sessionId = this.#requireSession("getFile");
    const query = new URLSearchParams({ sessionId, path });
    try {
      const response = await this.#transport.request("GET", `/file?${query}`, { timeoutMs: this.#deadline() });
      const { content } = (await response.body.json()) as { content: string };
      return Buffer.from(content, "base64");
    } catch (error) {
      throw this.#fileError(error, "getFile");
    }
  }

  /** The runtimes the server's engine runs (GET /runtimes): name, recipe version, extensions, packages, contexts. */
  async runtimes(): Promise<RuntimeInfo[]> {
    const response = await this.#transport.request("GET", "/runtimes", { timeoutMs: this.#connectTimeoutMs + MARGIN_MS });
    return ((await response.body.json()) as { runtimes: RuntimeInfo[] }).runtimes;
  }

  /** The calling tenant's sessions on the server. */
  async listSessions(): Promise<RemoteSessionInfo[]> {
    const response = await this.#transport.request("GET", "/sessions", { timeoutMs: this.#connectTimeoutMs + MARGIN_MS });
    return ((await response.body.json()) as { sessions: RemoteSessionInfo[] }).sessions;
  }

  /** Deletes one of the calling tenant's sessions (its container is removed). */
  async deleteSession(id: string): Promise<void> {
    const response = await this.#transport.request("DELETE", `/session/${encodeURIComponent(id)}`, { timeoutMs: this.#connectTimeoutMs + MARGIN_MS });
    await response.body.dump();
  }
}
