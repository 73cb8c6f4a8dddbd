import { Pool, errors as undiciErrors, type Dispatcher } from "undici";
import {
  engineOptionsSchema,
  ExecutionError,
  FileOperationError,
  formatZodError,
  InvalidOptionsError,
  Isol8Error,
  type EngineOptions,
  type ExecuteOptions,
  type ExecutionRequest,
  type ExecutionResult,
  type Isol8Engine,
  type StartOptions,
  type StreamEvent,
} from "@isol8/kit";
import { errorFromResponse, RemoteError, type ErrorBody, type RemoteErrorInfo } from "./errors.js";
import { SseParser } from "./sse.js";

const ABORTED = "The execution was aborted: the connection to the server was closed, so the server stops the program and every process it started.";
const ABORTED_BEFORE_START = "The execution was aborted before it started.";

export interface RemoteConnection {
  /** Base URL of the server, e.g. "http://127.0.0.1:3000" (a path prefix is kept). */
  host: string;
  apiKey: string;
  /**
   * A persistent session on the server (created by the first execute): executions share one
   * container, putFile/getFile work, and stop() deletes it.
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

export interface RemoteSessionInfo {
  id: string;
  createdAt: string;
  lastUsedAt: string;
  active: boolean;
  executions: number;
  runtime?: string;
}

const DEFAULT_EXECUTION_TIMEOUT_MS = 30_000;
const MARGIN_MS = 30_000;
/** Engine options that describe the local engine, not the execution: never sent. */
const LOCAL_ONLY = new Set(["mode", "debug"]);

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

/** Code, stdin and files as the wire carries them: text as is, bytes as { base64 }. */
function wireRequest(request: ExecutionRequest): Record<string, unknown> {
  if (!request || typeof request !== "object") return request as unknown as Record<string, unknown>;
  const wire = (content: unknown) =>
    content instanceof Uint8Array ? { base64: Buffer.from(content.buffer, content.byteOffset, content.byteLength).toString("base64") } : content;
  return {
    ...request,
    ...(request.code !== undefined && { code: wire(request.code) }),
    ...(request.stdin !== undefined && { stdin: wire(request.stdin) }),
    ...(request.files &&
      typeof request.files === "object" && {
        files: Object.fromEntries(Object.entries(request.files).map(([path, content]) => [path, wire(content)])),
      }),
  };
}

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
  readonly #origin: string;
  readonly #basePath: string;
  readonly #apiKey: string;
  readonly #options: Record<string, unknown>;
  readonly #timeoutMs?: number;
  readonly #connectTimeoutMs: number;
  readonly #connections: number;
  readonly #executionTimeoutMs: number;
  #pool: Pool | undefined;

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
    const parsed = engineOptionsSchema.safeParse(options ?? {});
    if (!parsed.success) throw new InvalidOptionsError(`Invalid engine options: ${formatZodError(parsed.error)}`);
    this.#origin = url.origin;
    this.#basePath = url.pathname.replace(/\/+$/, "");
    this.host = `${this.#origin}${this.#basePath}`;
    this.#apiKey = connection.apiKey;
    if (connection.sessionId !== undefined) this.sessionId = connection.sessionId;
    this.#options = Object.fromEntries(Object.entries(options ?? {}).filter(([key, value]) => !LOCAL_ONLY.has(key) && value !== undefined));
    this.#timeoutMs = connection.timeoutMs;
    this.#connectTimeoutMs = connection.connectTimeoutMs ?? 10_000;
    this.#connections = connection.connections ?? 16;
    this.#executionTimeoutMs = parsed.data.timeoutMs ?? DEFAULT_EXECUTION_TIMEOUT_MS;
  }

  #dispatcher(): Pool {
    this.#pool ??= new Pool(this.#origin, {
      connections: this.#connections,
      connect: { timeout: this.#connectTimeoutMs },
      keepAliveTimeout: 4_000,
    });
    return this.#pool;
  }

  #deadline(request?: ExecutionRequest): number {
    if (this.#timeoutMs !== undefined) return this.#timeoutMs;
    return (request?.timeoutMs ?? this.#executionTimeoutMs) + MARGIN_MS;
  }

  #body(request: ExecutionRequest): string {
    return JSON.stringify({
      request: wireRequest(request),
      ...(Object.keys(this.#options).length > 0 && { options: this.#options }),
      ...(this.sessionId !== undefined && { sessionId: this.sessionId }),
    });
  }

  /** One HTTP exchange; a non-2xx answer becomes the error it stands for (after its body is read). */
  async #request(
    method: Dispatcher.HttpMethod,
    path: string,
    options: { body?: string; timeoutMs: number; signal?: AbortSignal; accept?: string },
  ): Promise<Dispatcher.ResponseData> {
    let response: Dispatcher.ResponseData;
    try {
      response = await this.#dispatcher().request({
        method,
        path: `${this.#basePath}${path}`,
        headers: {
          authorization: `Bearer ${this.#apiKey}`,
          accept: options.accept ?? "application/json",
          ...(options.body !== undefined && { "content-type": "application/json" }),
        },
        body: options.body,
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.timeoutMs,
        signal: options.signal,
      });
    } catch (error) {
      throw this.#transportError(error, `${method} ${path}`, options.timeoutMs);
    }
    if (response.statusCode >= 200 && response.statusCode < 300) return response;
    const text = await response.body.text().catch(() => "");
    let body: ErrorBody | undefined;
    try {
      body = JSON.parse(text) as ErrorBody;
    } catch {
      body = undefined;
    }
    const retryAfterHeader = response.headers["retry-after"];
    const retryAfter = retryAfterHeader !== undefined ? Number(Array.isArray(retryAfterHeader) ? retryAfterHeader[0] : retryAfterHeader) : undefined;
    const requestId = response.headers["x-request-id"];
    if (body && body.requestId === undefined && typeof requestId === "string") body.requestId = requestId;
    throw errorFromResponse(
      response.statusCode,
      body,
      `${method} ${this.host}${path} failed with HTTP ${response.statusCode}${text && !body ? `: ${text.slice(0, 200)}` : ""}`,
      Number.isFinite(retryAfter) ? retryAfter : undefined,
    );
  }

  #transportError(error: unknown, what: string, timeoutMs: number): Isol8Error {
    if (Isol8Error.isInstance(error)) return error;
    const code = (error as { code?: string }).code;
    if (
      error instanceof undiciErrors.HeadersTimeoutError ||
      error instanceof undiciErrors.BodyTimeoutError ||
      code === "UND_ERR_HEADERS_TIMEOUT" ||
      code === "UND_ERR_BODY_TIMEOUT"
    ) {
      return new RemoteError("ISOL8_ERR_TIMEOUT", `${what} on ${this.host}: no answer within ${timeoutMs} ms`, { status: 0, cause: error });
    }
    const detail = (error as Error)?.message || code || String(error);
    return new RemoteError(
      "ISOL8_ERR_REMOTE_UNAVAILABLE",
      `Cannot reach the isol8 server at ${this.host} (${what}): ${detail}${code && !detail.includes(code) ? ` [${code}]` : ""}`,
      {
        status: 0,
        cause: error,
      },
    );
  }

  /** Checks that the server answers and is ready (GET /health). */
  async start(_options?: StartOptions): Promise<void> {
    const url = `${this.host}/health`;
    let response: Dispatcher.ResponseData;
    try {
      response = await this.#dispatcher().request({
        method: "GET",
        path: `${this.#basePath}/health`,
        headersTimeout: this.#connectTimeoutMs,
        bodyTimeout: this.#connectTimeoutMs,
      });
    } catch (error) {
      const reason = (error as Error)?.message || (error as { code?: string }).code || String(error);
      throw new RemoteError("ISOL8_ERR_REMOTE_UNAVAILABLE", `Remote server health check failed: ${url}: ${reason}`, { status: 0, cause: error });
    }
    const text = await response.body.text().catch(() => "");
    let status: string | undefined;
    try {
      status = (JSON.parse(text) as { status?: string }).status;
    } catch {
      status = undefined;
    }
    if (response.statusCode !== 200 || status !== "ok") {
      throw new RemoteError(
        "ISOL8_ERR_REMOTE_UNAVAILABLE",
        `Remote server health check failed: ${url}: HTTP ${response.statusCode}${status ? ` (status "${status}")` : text ? `: ${text.slice(0, 200)}` : ""}`,
        { status: response.statusCode },
      );
    }
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
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.close().catch(() => undefined);
  }

  /** `options.signal` aborting closes the connection: the server then kills the run (as the local engine does), and this rejects with ExecutionError. */
  async execute(request: ExecutionRequest, options: ExecuteOptions = {}): Promise<ExecutionResult> {
    const { signal } = options;
    if (signal?.aborted) throw new ExecutionError(ABORTED_BEFORE_START);
    const timeoutMs = this.#deadline(request);
    try {
      const response = await this.#request("POST", "/execute", { body: this.#body(request), timeoutMs, signal });
      try {
        return (await response.body.json()) as ExecutionResult;
      } catch (error) {
        throw this.#transportError(error, "POST /execute", timeoutMs);
      }
    } catch (error) {
      if (signal?.aborted) throw new ExecutionError(ABORTED, { cause: error });
      throw error;
    }
  }

  /**
   * Streams the execution's events as the server sends them (SSE over the response body, parsed
   * chunk by chunk). Like the local engine, failures become an `error` event, never a throw.
   * Leaving the loop early closes the connection, and the server cancels the run.
   */
  async *executeStream(request: ExecutionRequest, options: ExecuteOptions = {}): AsyncIterable<StreamEvent> {
    const { signal } = options;
    if (signal?.aborted) {
      yield { type: "error", data: ABORTED_BEFORE_START, code: "ISOL8_ERR_EXECUTION" };
      return;
    }
    const timeoutMs = this.#deadline(request);
    const abort = new AbortController();
    // The caller's abort closes the connection (the server then kills the run); removed in the finally below.
    const onAbort = () => abort.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    let response: Dispatcher.ResponseData;
    try {
      response = await this.#request("POST", "/execute/stream", { body: this.#body(request), timeoutMs, signal: abort.signal, accept: "text/event-stream" });
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
          const event = this.#event(message.data);
          yield event;
          if (event.type === "exit" || event.type === "error") {
            finished = true;
            return;
          }
        }
      }
      for (const message of parser.end()) {
        const event = this.#event(message.data);
        yield event;
        if (event.type === "exit" || event.type === "error") {
          finished = true;
          return;
        }
      }
      finished = true;
      yield { type: "error", data: `The server at ${this.host} closed the stream before the execution ended`, code: "ISOL8_ERR_REMOTE_UNAVAILABLE" };
    } catch (error) {
      finished = true;
      if (signal?.aborted) {
        yield { type: "error", data: ABORTED, code: "ISOL8_ERR_EXECUTION" };
        return;
      }
      const failure = this.#transportError(error, "POST /execute/stream", timeoutMs);
      yield { type: "error", data: failure.message, code: failure.code };
    } finally {
      signal?.removeEventListener("abort", onAbort);
      // Early exit (a break, a return): drop the connection so the server stops the run.
      // After the terminal event, read the (immediate) end of the stream, so the socket goes back to the pool.
      if (!finished || !(await ended(response.body, 2_000))) abort.abort();
    }
  }

  #event(data: string): StreamEvent {
    try {
      const event = JSON.parse(data) as StreamEvent;
      if (event && typeof event === "object" && typeof event.type === "string") return event;
    } catch {
      // fall through
    }
    return { type: "error", data: `The server at ${this.host} sent an event that is not an isol8 stream event`, code: "ISOL8_ERR_REMOTE_PROTOCOL" };
  }

  #requireSession(method: string): string {
    if (this.sessionId === undefined) {
      throw new FileOperationError(
        `File operations require a sessionId: ${method}() needs a persistent session on the server; create RemoteIsol8 with { host, apiKey, sessionId }.`,
      );
    }
    return this.sessionId;
  }

  /** A missing session on a file call means no execute() has created it yet, as on a local persistent engine. */
  #fileError(error: unknown, method: string): unknown {
    if ((error as RemoteErrorInfo).status === 404 && (error as Isol8Error).code === ("ISOL8_ERR_NOT_FOUND" as string)) {
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
      const response = await this.#request("POST", "/file", { body, timeoutMs: this.#deadline() });
      await response.body.dump();
    } catch (error) {
      throw this.#fileError(error, "putFile");
    }
  }

  /** Reads a file from the session's container, byte-exact. */
  async getFile(path: string): Promise<Buffer> {
    const sessionId = this.#requireSession("getFile");
    const query = new URLSearchParams({ sessionId, path });
    try {
      const response = await this.#request("GET", `/file?${query}`, { timeoutMs: this.#deadline() });
      const { content } = (await response.body.json()) as { content: string };
      return Buffer.from(content, "base64");
    } catch (error) {
      throw this.#fileError(error, "getFile");
    }
  }

  /** The calling tenant's sessions on the server. */
  async listSessions(): Promise<RemoteSessionInfo[]> {
    const response = await this.#request("GET", "/sessions", { timeoutMs: this.#connectTimeoutMs + MARGIN_MS });
    return ((await response.body.json()) as { sessions: RemoteSessionInfo[] }).sessions;
  }

  /** Deletes one of the calling tenant's sessions (its container is removed). */
  async deleteSession(id: string): Promise<void> {
    const response = await this.#request("DELETE", `/session/${encodeURIComponent(id)}`, { timeoutMs: this.#connectTimeoutMs + MARGIN_MS });
    await response.body.dump();
  }
}
