import type { Dispatcher, Pool } from "undici";
import { Isol8Error } from "@isol8/kit/errors";
import { errorFromResponse, RemoteError, type ReceivedErrorBody } from "./errors.js";

/** Where the server is and how to talk to it. */
export interface TransportOptions {
  /** Scheme, host and port ("http://127.0.0.1:3000"). */
  origin: string;
  /** Path prefix every API path goes under ("" or "/isol8"). */
  basePath: string;
  apiKey: string;
  connectTimeoutMs: number;
  connections: number;
  /** The persistent session every request names in X-Isol8-Session (a balancer's routing key). */
  sessionId?: string;
}

export interface RequestOptions {
  body?: string;
  timeoutMs: number;
  signal?: AbortSignal;
  accept?: string;
}

const TIMEOUT_CODES = new Set(["UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT"]);
/** createContext (POST /session/{id}/contexts) makes the session on first use, as an execution does. */
const CREATES_CONTEXT = /^\/session\/[^/]+\/contexts$/;

/**
 * The HTTP side of the client: one undici connection pool (keep-alive reuse), bearer auth, and
 * the translation of failures into isol8 errors. undici is loaded with the first request, so
 * importing the client stays cheap.
 */
export class RemoteTransport {
  /** The server's base URL, as errors name it. */
  readonly host: string;
  readonly #options: TransportOptions;
  #pool: Promise<Pool> | undefined;
  /** An execution in the session succeeded: the server holds it, so no request may create it again. */
  #sessionMade = false;

  constructor(options: TransportOptions) {
    this.#options = options;
    this.host = `${options.origin}${options.basePath}`;
  }

  #dispatcher(): Promise<Pool> {
    const { origin, connections, connectTimeoutMs } = this.#options;
    this.#pool ??= import("undici").then(({ Pool }) => new Pool(origin, { connections, connect: { timeout: connectTimeoutMs }, keepAliveTimeout: 4_000 }));
    return this.#pool;
  }

  /** Whether an execution in the session has been answered (the server made or held the session). */
  get sessionMade(): boolean {
    return this.#sessionMade;
  }

  /** Marks the session made (an interactive run that went through the WebSocket). */
  markSessionMade(): void {
    this.#sessionMade = true;
  }

  /**
   * The session's routing headers: X-Isol8-Session on every request, and X-Isol8-Session-Create
   * on executions until one succeeded: once the session exists, a server (node) that does not hold
   * it answers ISOL8_ERR_SESSION_NOT_FOUND instead of silently making an empty one.
   */
  sessionHeaders(path: string): Record<string, string> {
    const { sessionId } = this.#options;
    if (sessionId === undefined) return {};
    const creates = !this.#sessionMade && (path.startsWith("/execute") || CREATES_CONTEXT.test(path));
    return { "x-isol8-session": sessionId, ...(creates && { "x-isol8-session-create": "1" }) };
  }

  /** One HTTP exchange; a non-2xx answer becomes the error it stands for (after its body is read). */
  async request(method: Dispatcher.HttpMethod, path: string, options: RequestOptions): Promise<Dispatcher.ResponseData> {
    let response: Dispatcher.ResponseData;
    try {
      response = await (
        await this.#dispatcher()
      ).request({
        method,
        path: `${this.#options.basePath}${path}`,
        headers: {
          authorization: `Bearer ${this.#options.apiKey}`,
          accept: options.accept ?? "application/json",
          ...(options.body !== undefined && { "content-type": "application/json" }),
          ...this.sessionHeaders(path),
        },
        body: options.body,
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.timeoutMs,
        signal: options.signal,
      });
    } catch (error) {
      throw this.transportError(error, `${method} ${path}`, options.timeoutMs);
    }
    if (response.statusCode >= 200 && response.statusCode < 300) {
      if ((path.startsWith("/execute") || CREATES_CONTEXT.test(path)) && method === "POST") this.#sessionMade ||= this.#options.sessionId !== undefined;
      return response;
    }
    const text = await response.body.text().catch(() => "");
    let body: ReceivedErrorBody | undefined;
    try {
      body = JSON.parse(text) as ReceivedErrorBody;
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

  /** A failure below HTTP (connect, reset, deadline) as an isol8 error naming the call and the server. */
  transportError(error: unknown, what: string, timeoutMs: number): Isol8Error {
    if (Isol8Error.isInstance(error)) return error;
    // undici's HeadersTimeoutError and BodyTimeoutError carry these codes.
    const code = (error as { code?: string }).code;
    if (code !== undefined && TIMEOUT_CODES.has(code)) {
      return new RemoteError("ISOL8_ERR_TIMEOUT", `${what} on ${this.host}: no answer within ${timeoutMs} ms`, { status: 0, cause: error });
    }
    const detail = (error as Error)?.message || code || String(error);
    return new RemoteError(
      "ISOL8_ERR_REMOTE_UNAVAILABLE",
      `Cannot reach the isol8 server at ${this.host} (${what}): ${detail}${code && !detail.includes(code) ? ` [${code}]` : ""}`,
      { status: 0, cause: error },
    );
  }

  /** Checks that the server answers and is ready (GET /health, no credentials). */
  async health(): Promise<void> {
    const url = `${this.host}/health`;
    const { basePath, connectTimeoutMs } = this.#options;
    let response: Dispatcher.ResponseData;
    try {
      response = await (
        await this.#dispatcher()
      ).request({ method: "GET", path: `${basePath}/health`, headersTimeout: connectTimeoutMs, bodyTimeout: connectTimeoutMs });
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

  /** Closes the connections (a later request reopens them). */
  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.then((p) => p.close()).catch(() => undefined);
  }
}
