import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import type { Context } from "hono";
import { UnknownRuntimeError, type ContextInfo, type ExecutionRequest, type ExecutionResult, type StreamEvent } from "@isol8/kit";
import { noopProgram, ToolError, type HostExecuteOptions, type McpHost, type RuntimeInfo, type SessionInfo } from "@isol8/mcp";
import type { ContextLedger } from "./context-limits.js";
import type { ServerEnv } from "./env.js";
import { drive } from "./execution.js";
import type { Metrics } from "./metrics.js";
import type { ExecuteBody, WireRequest } from "./schemas.js";
import type { Sessions } from "./sessions.js";
import type { Slots } from "./slots.js";
import { errorOfEvent, outcomeOf, recordRun, type Targets } from "./targets.js";

/** The server's request context (only requestId, tenant and the raw request are read here). */
export type AnyContext = Context<ServerEnv>;

/** What /mcp uses of the server: the same policy, queue, sessions and metrics as the REST routes. */
export interface McpRouteDeps {
  version: string;
  runtimes: () => RuntimeInfo[];
  sessions: Sessions;
  metrics: Metrics;
  /** How long an MCP connection (its mcp-session-id) lives unused: the sessions' idle time. */
  idleMs: number;
  /** The server's slots: the concurrency bound (queue, 429), each request's deadline and the shutdown. */
  slots: Slots;
  /** The server's targets: applies the policy (ceilings named), takes a slot, picks the engine or session. */
  targets: Targets;
  /** The context counts of the policy (maxContextsPerSession, maxContextsPerTenant), shared with the REST context routes. */
  contexts: ContextLedger;
}

/**
 * The HTTP request a tool call came in: an MCP connection spans many requests, and the tools run
 * inside the transport's handling of the one that carried the call.
 */
export const currentRequest = new AsyncLocalStorage<AnyContext>();

const base64 = (content: string | Uint8Array) => (typeof content === "string" ? content : { base64: Buffer.from(content).toString("base64") });

/** The engine request as the wire body applyPolicy reads (bytes as { base64 }). */
function toWire(request: ExecutionRequest): WireRequest {
  const { code, stdin, files, ...rest } = request;
  return {
    ...rest,
    ...(code !== undefined && { code: base64(code) }),
    ...(stdin !== undefined && { stdin: base64(stdin) }),
    ...(files && { files: Object.fromEntries(Object.entries(files).map(([path, content]) => [path, base64(content)])) }),
  };
}

/**
 * The tools over one MCP connection of a tenant: the tenant's sessions (the REST API sees the
 * same ones), the server's ceilings, queue and metrics. Sessions this connection creates close
 * when it ends, unless created with keep (they then expire when idle like any session).
 */
export class ServerHost implements McpHost {
  readonly #deps: McpRouteDeps;
  readonly #tenant: string;
  /** Sessions this connection created: id -> keep. */
  readonly #mine = new Map<string, boolean>();

  constructor(tenant: string, deps: McpRouteDeps) {
    this.#tenant = tenant;
    this.#deps = deps;
  }

  #context(): AnyContext {
    const c = currentRequest.getStore();
    if (!c) throw new ToolError("ISOL8_ERR_INTERNAL", "no HTTP request in scope");
    return c;
  }

  runtimes(): RuntimeInfo[] {
    return this.#deps.runtimes();
  }

  execute(request: ExecutionRequest, options: HostExecuteOptions): Promise<ExecutionResult> {
    if (options.session !== undefined) this.#deps.sessions.require(this.#tenant, options.session);
    const body = { request: toWire(request), ...(options.session !== undefined && { sessionId: options.session }) } as ExecuteBody;
    return this.#run(body, options);
  }

  async #run(body: ExecuteBody, options: Partial<HostExecuteOptions> = {}): Promise<ExecutionResult> {
    const deps = this.#deps;
    const c = this.#context();
    const scope = deps.slots.scope(c.req.raw.signal);
    try {
      const target = await deps.targets.prepare(c, body, scope);
      const signal = options.signal ? AbortSignal.any([scope.signal, options.signal]) : scope.signal;
      const onEvent = (event: StreamEvent) => {
        if (event.type === "stdout" || event.type === "stderr") options.onOutput?.(event.type, event.data);
      };
      const { ended, event, settled } = await drive(target.engine, target.request, signal, onEvent).catch((error: unknown) => {
        target.release();
        throw error;
      });
      void settled.finally(target.release);
      deps.metrics.executions.inc({ runtime: target.request.runtime, outcome: outcomeOf(event, ended) });
      if (ended === "aborted")
        throw scope.reason ? scope.error(deps.slots.timeoutMs) : new ToolError("ISOL8_ERR_EXECUTION", "The call was cancelled: the execution was killed");
      if (event!.type === "error") throw errorOfEvent(event!, target.request, target.engine);
      recordRun(target);
      return event!.result;
    } finally {
      scope.dispose();
    }
  }

  async createSession(options: { runtime: string; keep?: boolean }): Promise<SessionInfo> {
    const runtimes = this.runtimes().map((r) => r.name);
    if (!runtimes.includes(options.runtime)) throw new UnknownRuntimeError(options.runtime, runtimes);
    const id = randomUUID();
    // The first execution with a new session id makes the session (within the tenant's and the
    // server's caps, with the server's defaults) and its container; a failed one leaves none.
    const body = { request: toWire({ runtime: options.runtime, code: noopProgram(options.runtime) ?? " \n" }), sessionId: id } as ExecuteBody;
    try {
      await this.#run(body);
    } catch (error) {
      const made = this.#deps.sessions.get(this.#tenant, id);
      if (made) await this.#deps.sessions.delete(made);
      throw error;
    }
    const session = this.#deps.sessions.require(this.#tenant, id);
    this.#mine.set(id, options.keep ?? false);
    return { id, runtime: options.runtime, createdAt: session.createdAt.toISOString(), keep: options.keep ?? false };
  }

  async closeSession(id: string): Promise<void> {
    this.#mine.delete(id);
    await this.#deps.sessions.delete(this.#deps.sessions.require(this.#tenant, id));
  }

  /** Every session of the tenant: the ones other connections (or the REST API) made count as kept. */
  listSessions(): SessionInfo[] {
    return this.#deps.sessions
      .list(this.#tenant)
      .map((s) => ({ id: s.id, runtime: s.runtime ?? "", createdAt: s.createdAt, keep: this.#mine.get(s.id) ?? true }));
  }

  putFile(id: string, path: string, content: Buffer): Promise<void> {
    const session = this.#deps.sessions.require(this.#tenant, id);
    return this.#deps.slots.run(this.#context().req.raw.signal, () => this.#deps.sessions.use(session, () => session.engine.putFile(path, content)));
  }

  getFile(id: string, path: string): Promise<Buffer> {
    const session = this.#deps.sessions.require(this.#tenant, id);
    return this.#deps.slots.run(this.#context().req.raw.signal, () => this.#deps.sessions.use(session, () => session.engine.getFile(path)));
  }

  /** As POST /session/{id}/contexts: within the ledger's bounds, a slot held, in the tenant's session (which must exist). */
  createContext(id: string, options: { runtime: string; cwd?: string }): Promise<ContextInfo> {
    const deps = this.#deps;
    const c = this.#context();
    deps.sessions.require(this.#tenant, id);
    return deps.contexts.create(this.#tenant, id, async () => {
      const scope = deps.slots.scope(c.req.raw.signal);
      try {
        const body = { request: { runtime: options.runtime }, sessionId: id } as ExecuteBody;
        const target = await deps.targets.prepare(c, body, scope);
        try {
          const created = await target.engine.createContext({ runtime: options.runtime, ...(options.cwd !== undefined && { cwd: options.cwd }) });
          return { session: target.session!, created };
        } finally {
          target.release();
        }
      } finally {
        scope.dispose();
      }
    });
  }

  async listContexts(id: string): Promise<ContextInfo[]> {
    const session = this.#deps.sessions.require(this.#tenant, id);
    const contexts = await this.#deps.sessions.use(session, () => session.engine.listContexts());
    this.#deps.contexts.listed(
      session,
      contexts.map((ctx) => ctx.id),
    );
    return contexts;
  }

  restartContext(id: string, context: string): Promise<ContextInfo> {
    const session = this.#deps.sessions.require(this.#tenant, id);
    return this.#deps.slots.run(this.#context().req.raw.signal, () => this.#deps.sessions.use(session, () => session.engine.restartContext(context)));
  }

  async deleteContext(id: string, context: string): Promise<void> {
    const session = this.#deps.sessions.require(this.#tenant, id);
    await this.#deps.slots.run(this.#context().req.raw.signal, () => this.#deps.sessions.use(session, () => session.engine.deleteContext(context)));
    this.#deps.contexts.removed(session, context);
  }

  /** The connection ended: its sessions not kept are closed (what runs in them is stopped). */
  async dispose(): Promise<void> {
    const closing = [...this.#mine].filter(([, keep]) => !keep).map(([id]) => this.#deps.sessions.get(this.#tenant, id));
    this.#mine.clear();
    await Promise.allSettled(closing.map((s) => (s ? this.#deps.sessions.delete(s) : Promise.resolve())));
  }
}
