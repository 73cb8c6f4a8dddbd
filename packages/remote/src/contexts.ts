import { NotSupportedError, type Isol8Error } from "@isol8/kit/errors";
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

  /** The session's contexts; none when the session has not been made yet (as on a local engine before its first call). */
  async list(): Promise<ContextInfo[]> {
    try {
      return (await this.#json<{ contexts: ContextInfo[] }>("GET", "/contexts", "listContexts")).contexts;
    } catch (error) {
      if ((error as RemoteErrorInfo).status === 404 && (error as Isol8Error).code === ("ISOL8_ERR_NOT_FOUND" as string)) return [];
      throw error;
    }
  }

  async restart(id: string): Promise<ContextInfo> {
    return this.#json<ContextInfo>("POST", `/contexts/${encodeURIComponent(id)}/restart`, "restartContext");
  }

  async delete(id: string): Promise<void> {
    await this.#json<unknown>("DELETE", `/contexts/${encodeURIComponent(id)}`, "deleteContext");
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
