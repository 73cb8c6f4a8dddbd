import { ContextNotFoundError, NotSupportedError, type Isol8Error } from "@isol8/kit/errors";
import type { ContextInfo, CreateContextOptions } from "@isol8/kit";
import type { RemoteErrorInfo } from "./errors.js";
import type { RemoteTransport } from "./transport.js";

/** What a context call needs of its RemoteIsol8. */
export interface RemoteContextsOptions {
  transport: RemoteTransport;
  sessionId: string | undefined;
  /** The client's engine options: a session made by createContext is made with them, as by an execution. */
  options: Record<string, unknown>;
  /** Deadline of one call. */
  timeoutMs: () => number;
}

/**
 * Interpreter contexts of the RemoteIsol8's session, over the server's context routes
 * (POST/GET /session/{id}/contexts, POST .../{contextId}/restart, DELETE .../{contextId}). A cell
 * is an execute()/executeStream() with `context` (the body carries the sessionId). Errors come
 * back typed (ContextNotFoundError for a context the session does not hold, NotSupportedError for
 * a runtime without contexts).
 */
export class RemoteContexts {
  readonly #o: RemoteContextsOptions;

  constructor(options: RemoteContextsOptions) {
    this.#o = options;
  }

  /** Starts a context in the session's sandbox (the server makes the session on first use). */
  async create(options: CreateContextOptions): Promise<ContextInfo> {
    const body = JSON.stringify({ ...options, ...(Object.keys(this.#o.options).length > 0 && { options: this.#o.options }) });
    return this.#json<ContextInfo>("POST", "/contexts", "createContext", body);
  }

  /** The session's contexts; none when this client has not made the session yet (as on a local engine before its first call). */
  async list(): Promise<ContextInfo[]> {
    try {
      return (await this.#json<{ contexts: ContextInfo[] }>("GET", "/contexts", "listContexts")).contexts;
    } catch (error) {
      if (this.#notMadeYet(error)) return [];
      throw error;
    }
  }

  async restart(id: string): Promise<ContextInfo> {
    try {
      return await this.#json<ContextInfo>("POST", `/contexts/${encodeURIComponent(id)}/restart`, "restartContext");
    } catch (error) {
      throw this.#contextError(error, id);
    }
  }

  async delete(id: string): Promise<void> {
    try {
      await this.#json<unknown>("DELETE", `/contexts/${encodeURIComponent(id)}`, "deleteContext");
    } catch (error) {
      throw this.#contextError(error, id);
    }
  }

  /**
   * The session is missing and this client has not made it: no context can be in it (a
   * ContextNotFoundError, as a local engine answers before its sandbox exists). Once made, a
   * missing session is the server's own error (SessionNotFoundError: it expired, or its node stopped).
   */
  #notMadeYet(error: unknown): boolean {
    const code = (error as Isol8Error).code as string;
    return (
      (error as RemoteErrorInfo).status === 404 && (code === "ISOL8_ERR_NOT_FOUND" || code === "ISOL8_ERR_SESSION_NOT_FOUND") && !this.#o.transport.sessionMade
    );
  }

  #contextError(error: unknown, id: string): unknown {
    if (!this.#notMadeYet(error)) return error;
    const wrapped = new ContextNotFoundError(id, `session ${this.#o.sessionId} has not been made yet (createContext or execute makes it)`);
    Object.defineProperty(wrapped, "status", { value: 404, enumerable: true, configurable: true });
    return wrapped;
  }

  async #json<T>(method: "GET" | "POST" | "DELETE", path: string, what: string, body?: string): Promise<T> {
    const sessionId = requireSession(this.#o.sessionId, what);
    const full = `/session/${encodeURIComponent(sessionId)}${path}`;
    const timeoutMs = this.#o.timeoutMs();
    const response = await this.#o.transport.request(method, full, { timeoutMs, ...(body !== undefined && { body }) });
    try {
      return (await response.body.json()) as T;
    } catch (error) {
      throw this.#o.transport.transportError(error, `${method} ${full}`, timeoutMs);
    }
  }
}

/** Contexts live in a session's sandbox: a RemoteIsol8 without sessionId has none (a local ephemeral engine refuses alike). */
export function noSessionError(what: string): NotSupportedError {
  return new NotSupportedError(
    `${what} needs a persistent session on the server (contexts live in a session's sandbox): create RemoteIsol8 with { host, apiKey, sessionId }`,
  );
}

export function requireSession(sessionId: string | undefined, what: string): string {
  if (sessionId === undefined) throw noSessionError(what);
  return sessionId;
}
