import { randomUUID } from "node:crypto";
import { UnknownRuntimeError, type ContextInfo, type ExecutionRequest, type ExecutionResult, type Isol8Engine } from "@isol8/kit";
import { ToolError } from "./errors.js";
import type { HostExecuteOptions, McpHost, RuntimeInfo, SessionInfo } from "./host.js";
import { noopProgram } from "./sandbox-programs.js";

export interface EngineHostOptions {
  /** The engine ephemeral runs use (started by the caller). */
  engine: Isol8Engine;
  /** Builds the persistent engine of a new session (mode "persistent"). */
  createSessionEngine: () => Isol8Engine;
  runtimes: RuntimeInfo[];
  /** The longest timeoutMs a call may ask for (the config's ceiling, else its default timeout). */
  maxTimeoutMs: number;
  /** The most sessions open at once. */
  maxSessions?: number;
}

interface LocalSession {
  info: SessionInfo;
  engine: Isol8Engine;
}

/** Runs the tools on engines of this process (`isol8 mcp` over stdio): sessions belong to the connection. */
export class EngineHost implements McpHost {
  readonly #options: EngineHostOptions;
  readonly #sessions = new Map<string, LocalSession>();

  constructor(options: EngineHostOptions) {
    this.#options = options;
  }

  runtimes(): RuntimeInfo[] {
    return this.#options.runtimes;
  }

  #checkRuntime(runtime: string): void {
    const names = this.#options.runtimes.map((r) => r.name);
    if (!names.includes(runtime)) throw new UnknownRuntimeError(runtime, names);
  }

  #session(id: string): LocalSession {
    const session = this.#sessions.get(id);
    if (!session) {
      const open = [...this.#sessions.keys()];
      throw new ToolError(
        "ISOL8_ERR_NOT_FOUND",
        `Session not found: ${id} (open sessions: ${open.length ? open.join(", ") : "none"}; create one with create_session)`,
      );
    }
    return session;
  }

  async execute(request: ExecutionRequest, options: HostExecuteOptions): Promise<ExecutionResult> {
    this.#checkRuntime(request.runtime);
    if (request.timeoutMs !== undefined && request.timeoutMs > this.#options.maxTimeoutMs) {
      throw new ToolError(
        "ISOL8_ERR_POLICY",
        `timeoutMs: ${request.timeoutMs} is over this server's limit of ${this.#options.maxTimeoutMs} (maxTimeoutMs); ask for less`,
      );
    }
    const session = options.session === undefined ? undefined : this.#session(options.session);
    if (session && session.info.runtime !== request.runtime) {
      throw new ToolError("ISOL8_ERR_INVALID_REQUEST", `runtime: session ${session.info.id} runs "${session.info.runtime}"; got "${request.runtime}"`);
    }
    const engine = session?.engine ?? this.#options.engine;
    if (!options.onOutput) return engine.execute(request, { signal: options.signal });
    for await (const event of engine.executeStream(request, { signal: options.signal })) {
      if (event.type === "stdout" || event.type === "stderr") options.onOutput(event.type, event.data);
      else if (event.type === "exit") return event.result;
      else if (event.type === "error") throw new ToolError(event.code ?? "ISOL8_ERR_EXECUTION", event.data);
    }
    throw new ToolError("ISOL8_ERR_EXECUTION", "the execution ended without a result");
  }

  async createSession(options: { runtime: string; keep?: boolean; id?: string }): Promise<SessionInfo> {
    this.#checkRuntime(options.runtime);
    const max = this.#options.maxSessions ?? 8;
    if (this.#sessions.size >= max)
      throw new ToolError("ISOL8_ERR_SESSION_LIMIT", `${this.#sessions.size} sessions are open, the most allowed (${max}): close one with close_session`);
    const id = options.id ?? randomUUID();
    if (this.#sessions.has(id)) throw new ToolError("ISOL8_ERR_INVALID_REQUEST", `id: a session ${id} is already open`);
    const engine = this.#options.createSessionEngine();
    const info: SessionInfo = { id, runtime: options.runtime, createdAt: new Date().toISOString(), keep: options.keep ?? false };
    try {
      await engine.start();
      // The first execution creates the session's container (and fixes its runtime), so files can be written at once.
      await engine.execute({ runtime: options.runtime, code: noopProgram(options.runtime) ?? " \n" });
    } catch (error) {
      await engine.stop().catch(() => undefined);
      throw error;
    }
    this.#sessions.set(id, { info, engine });
    return info;
  }

  async closeSession(id: string): Promise<void> {
    const session = this.#session(id);
    this.#sessions.delete(id);
    await session.engine.stop();
  }

  listSessions(): SessionInfo[] {
    return [...this.#sessions.values()].map((s) => s.info);
  }

  putFile(session: string, path: string, content: Buffer): Promise<void> {
    return this.#session(session).engine.putFile(path, content);
  }

  getFile(session: string, path: string): Promise<Buffer> {
    return this.#session(session).engine.getFile(path);
  }

  createContext(session: string, options: { runtime: string; cwd?: string }): Promise<ContextInfo> {
    const engine = this.#session(session).engine;
    this.#checkRuntime(options.runtime);
    return engine.createContext({ runtime: options.runtime, ...(options.cwd !== undefined && { cwd: options.cwd }) });
  }

  listContexts(session: string): Promise<ContextInfo[]> {
    return this.#session(session).engine.listContexts();
  }

  restartContext(session: string, context: string): Promise<ContextInfo> {
    return this.#session(session).engine.restartContext(context);
  }

  deleteContext(session: string, context: string): Promise<void> {
    return this.#session(session).engine.deleteContext(context);
  }

  /**
   * stdio: the process ends with the connection, and a session's container cannot outlive its
   * engine, so every session closes (keep only matters over HTTP, where the tenant holds them).
   */
  async dispose(): Promise<void> {
    const sessions = [...this.#sessions.values()];
    this.#sessions.clear();
    await Promise.allSettled(sessions.map((s) => s.engine.stop()));
  }
}
