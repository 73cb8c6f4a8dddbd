import { randomUUID } from "node:crypto";
import type { Context, Hono } from "hono";
import { UnknownRuntimeError, type DockerIsol8, type ExecutionRequest, type ExecutionResult, type StreamEvent } from "@isol8/core";
import { createIsol8McpServer, noopProgram, ToolError, type HostExecuteOptions, type McpHost, type RuntimeInfo, type SessionInfo } from "@isol8/mcp";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import type { HttpError } from "./errors.js";
import { drive, type Terminal } from "./execution.js";
import type { Metrics } from "./metrics.js";
import { RequestScope } from "./request-scope.js";
import type { ExecuteBody, WireRequest } from "./schemas.js";
import type { Session, Sessions } from "./sessions.js";

// The server's Context (its Env is private to server.ts); only requestId and tenant are read here.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyContext = Context<any>;

interface Target {
  engine: DockerIsol8;
  session?: Session;
  request: ExecutionRequest;
  release: () => void;
}

/** What /mcp uses of the server: the same policy, queue, sessions and metrics as the REST routes. */
export interface McpRouteDeps {
  version: string;
  runtimes: () => RuntimeInfo[];
  sessions: Sessions;
  metrics: Metrics;
  requestTimeoutMs: number;
  shutdown: AbortSignal;
  /** The server's #prepare: applies the policy (ceilings named), takes a slot (queue, 429), picks the engine or session. */
  prepare: (c: AnyContext, body: ExecuteBody, scope: RequestScope) => Promise<Target>;
  /** The server's #withSlot: a file operation under the concurrency bound. */
  withSlot: <T>(c: AnyContext, work: () => Promise<T>) => Promise<T>;
  errorOfEvent: (event: Extract<StreamEvent, { type: "error" }>, request: ExecutionRequest, engine: DockerIsol8) => HttpError;
}

const base64 = (content: string | Uint8Array) => (typeof content === "string" ? content : { base64: Buffer.from(content).toString("base64") });

/** The engine request as the wire body applyPolicy reads (bytes as { base64 }). */
function toWire(request: ExecutionRequest): WireRequest {
  const { code, stdin, files, ...rest } = request;
  return {
    ...rest,
    code: base64(code),
    ...(stdin !== undefined && { stdin: base64(stdin) }),
    ...(files && { files: Object.fromEntries(Object.entries(files).map(([path, content]) => [path, base64(content)])) }),
  };
}

function outcomeOf(event: Terminal | undefined, ended: string): string {
  if (ended === "aborted") return "cancelled";
  if (!event || event.type === "error") return "error";
  const r = event.result;
  return r.timedOut ? "timeout" : r.oomKilled ? "oom" : r.exitCode === 0 ? "ok" : "nonzero";
}

/** The tools over one HTTP request of the tenant: its sessions, the server's ceilings and queue. */
class ServerHost implements McpHost {
  readonly #c: AnyContext;
  readonly #deps: McpRouteDeps;
  readonly #tenant: string;

  constructor(c: AnyContext, deps: McpRouteDeps) {
    this.#c = c;
    this.#deps = deps;
    this.#tenant = c.get("tenant") as string;
  }

  runtimes(): RuntimeInfo[] {
    return this.#deps.runtimes();
  }

  async execute(request: ExecutionRequest, options: HostExecuteOptions): Promise<ExecutionResult> {
    const deps = this.#deps;
    if (options.session !== undefined) deps.sessions.require(this.#tenant, options.session);
    const body = { request: toWire(request), ...(options.session !== undefined && { sessionId: options.session }) } as ExecuteBody;
    const scope = new RequestScope(this.#c.req.raw.signal, deps.shutdown, deps.requestTimeoutMs);
    try {
      const target = await deps.prepare(this.#c, body, scope);
      const signal = AbortSignal.any([scope.signal, options.signal]);
      const onEvent = (event: StreamEvent) => {
        if (event.type === "stdout" || event.type === "stderr") options.onOutput?.(event.type, event.data);
      };
      const { ended, event, settled } = await drive(target.engine, target.request, signal, onEvent).catch((error: unknown) => {
        target.release();
        throw error;
      });
      void settled.finally(target.release);
      deps.metrics.executions.inc({ runtime: target.request.runtime, outcome: outcomeOf(event, ended) });
      if (ended === "aborted") throw scope.reason ? scope.error(deps.requestTimeoutMs) : new ToolError("ISOL8_ERR_EXECUTION", "The call was cancelled: the execution was killed");
      if (event!.type === "error") throw deps.errorOfEvent(event!, target.request, target.engine);
      if (target.session) {
        target.session.executions++;
        target.session.runtime = target.request.runtime;
      }
      return event!.result;
    } finally {
      scope.dispose();
    }
  }

  async createSession(options: { runtime: string; keep?: boolean }): Promise<SessionInfo> {
    const runtimes = this.runtimes().map((r) => r.name);
    if (!runtimes.includes(options.runtime)) throw new UnknownRuntimeError(options.runtime, runtimes);
    const id = randomUUID();
    // The first execution with a new session id makes the session (within the tenant's and the server's caps) and its container.
    const body = { request: toWire({ runtime: options.runtime, code: noopProgram(options.runtime) ?? " \n" }), sessionId: id } as ExecuteBody;
    await this.#run(body);
    const session = this.#deps.sessions.require(this.#tenant, id);
    return { id, runtime: options.runtime, createdAt: session.createdAt.toISOString(), keep: true };
  }

  async #run(body: ExecuteBody): Promise<void> {
    const deps = this.#deps;
    const scope = new RequestScope(this.#c.req.raw.signal, deps.shutdown, deps.requestTimeoutMs);
    try {
      const target = await deps.prepare(this.#c, body, scope);
      const { ended, event, settled } = await drive(target.engine, target.request, scope.signal, () => undefined).catch((error: unknown) => {
        target.release();
        throw error;
      });
      void settled.finally(target.release);
      const failed = ended === "aborted" ? scope.error(deps.requestTimeoutMs) : event!.type === "error" ? deps.errorOfEvent(event!, target.request, target.engine) : undefined;
      if (failed) {
        if (target.session) await deps.sessions.delete(target.session);
        throw failed;
      }
    } finally {
      scope.dispose();
    }
  }

  async closeSession(id: string): Promise<void> {
    await this.#deps.sessions.delete(this.#deps.sessions.require(this.#tenant, id));
  }

  listSessions(): SessionInfo[] {
    return this.#deps.sessions.list(this.#tenant).map((s) => ({ id: s.id, runtime: s.runtime ?? "", createdAt: s.createdAt, keep: true }));
  }

  putFile(id: string, path: string, content: Buffer): Promise<void> {
    const session = this.#deps.sessions.require(this.#tenant, id);
    return this.#deps.withSlot(this.#c, () => this.#deps.sessions.use(session, () => session.engine.putFile(path, content)));
  }

  getFile(id: string, path: string): Promise<Buffer> {
    const session = this.#deps.sessions.require(this.#tenant, id);
    return this.#deps.withSlot(this.#c, () => this.#deps.sessions.use(session, () => session.engine.getFile(path)));
  }

  /** Over HTTP the tenant owns its sessions: they outlive the request and expire when idle (sessionIdleMs). */
  async dispose(): Promise<void> {}
}

/**
 * POST /mcp: MCP's streamable HTTP transport, stateless (a server and transport per request), behind
 * the same Bearer keys, tenants, body limit, ceilings, queue and metrics as the REST routes (the
 * middleware before every route already authenticated the request). Progress comes as SSE events.
 */
export function mountMcpRoute(app: Hono<any>, deps: McpRouteDeps): void {
  app.post("/mcp", async (c) => {
    let parsedBody: unknown;
    try {
      parsedBody = await c.req.json();
    } catch {
      return c.json({ jsonrpc: "2.0", error: { code: -32700, message: "Parse error: the body is not JSON" }, id: null }, 400);
    }
    const server = createIsol8McpServer(new ServerHost(c, deps), { version: deps.version });
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    await server.connect(transport);
    return transport.handleRequest(c.req.raw, { parsedBody });
  });
  // Stateless: no standalone SSE stream (GET) and no MCP session to delete.
  app.on(["GET", "DELETE"], "/mcp", (c) => c.json({ jsonrpc: "2.0", error: { code: -32000, message: "Method not allowed: this server's MCP endpoint is stateless (POST only)" }, id: null }, 405, { Allow: "POST" }));
}
