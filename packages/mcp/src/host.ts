import type { ContextInfo, ExecutionRequest, ExecutionResult, RuntimeInfo } from "@isol8/kit";

/** A runtime as list_runtimes and isol8://runtimes describe it (the kit's one shape; `contexts` says whether run_cell works). */
export type { RuntimeInfo } from "@isol8/kit";
/** A context as create_context and list_contexts describe it (the kit's shape). */
export type { ContextInfo } from "@isol8/kit";

export interface SessionInfo {
  id: string;
  runtime: string;
  createdAt: string;
  /** Kept when the connection that made it ends (else closed then). */
  keep: boolean;
}

export interface HostExecuteOptions {
  /** The session whose sandbox runs it; without one the run is ephemeral (a fresh sandbox). */
  session?: string;
  /** Aborting it kills the execution (MCP cancellation). */
  signal: AbortSignal;
  /** Output as it comes, when the client asked for progress. */
  onOutput?: (stream: "stdout" | "stderr", data: string) => void;
}

/**
 * What the MCP tools need from isol8: the local engine (EngineHost, for `isol8 mcp`) and the HTTP
 * server (its tenant's sessions, ceilings and queue) both provide it. Every failure is thrown as
 * an error with a `code` (an Isol8Error or the server's HttpError): the tools turn it into an
 * isError result.
 */
export interface McpHost {
  runtimes(): RuntimeInfo[];
  execute(request: ExecutionRequest, options: HostExecuteOptions): Promise<ExecutionResult>;
  createSession(options: { runtime: string; keep?: boolean; id?: string }): Promise<SessionInfo>;
  closeSession(id: string): Promise<void>;
  listSessions(): SessionInfo[];
  putFile(session: string, path: string, content: Buffer): Promise<void>;
  getFile(session: string, path: string): Promise<Buffer>;
  /** Starts an interpreter context in the session's sandbox; a cell runs in it through execute with `request.context`. */
  createContext(session: string, options: { runtime: string; cwd?: string }): Promise<ContextInfo>;
  listContexts(session: string): Promise<ContextInfo[]>;
  restartContext(session: string, context: string): Promise<ContextInfo>;
  deleteContext(session: string, context: string): Promise<void>;
  /** The connection ended: close the sessions it made that are not kept. */
  dispose(): Promise<void>;
}
