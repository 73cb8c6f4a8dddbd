import type { ExecutionRequest, ExecutionResult, RuntimeInfo, StreamEvent } from "./schemas.js";
import type { RuntimeDefinition } from "./runtime.js";
import type { StdinSource } from "./stdin.js";
import type { ContextInfo, CreateContextOptions } from "./contexts.js";

export interface StartOptions {
  /** Fill the pools before the first execution: every registered runtime, or the ones named. */
  prewarm?: boolean | { runtimes?: string[] };
}

export interface ExecuteOptions {
  /** Aborting it stops the run at once: every process is killed and the container released. */
  signal?: AbortSignal;
  /**
   * The program's stdin while it runs (interactive): each chunk goes to the program as it
   * arrives, the source's end closes its stdin. Not together with the request's `stdin`. Needs
   * the in-container executor: the exec path (ISOL8_LAUNCHER=exec, an image without the
   * executor) refuses it with ISOL8_ERR_NOT_SUPPORTED.
   */
  stdin?: StdinSource;
}

/** What stop() could not undo. */
export interface StopReport {
  /**
   * Ids of containers the engine could not remove (Docker did not answer, even on the retry in
   * stop()). They carry the engine's labels: `isol8 cleanup` removes them once Docker answers.
   */
  notRemoved: string[];
}

/** The one interface DockerIsol8 and RemoteIsol8 both implement. */
export interface Isol8Engine {
  /** The runtimes this engine can run (a remote engine asks its server: GET /runtimes). */
  runtimes(): Promise<RuntimeInfo[]>;
  start(options?: StartOptions): Promise<void>;
  /** Stops the engine: running executions are cancelled, queued ones fail with ISOL8_ERR_ENGINE_STOPPED. */
  stop(): Promise<StopReport | void>;
  execute(request: ExecutionRequest, options?: ExecuteOptions): Promise<ExecutionResult>;
  executeStream(request: ExecutionRequest, options?: ExecuteOptions): AsyncIterable<StreamEvent>;
  putFile(path: string, content: Buffer | string): Promise<void>;
  getFile(path: string): Promise<Buffer>;
  /**
   * Starts an interpreter context (a kernel that keeps state between cells) in the engine's
   * persistent sandbox (a remote engine: its session's); `execute({ code, runtime, context: id })`
   * runs a cell in it. An ephemeral engine refuses with ISOL8_ERR_NOT_SUPPORTED.
   */
  createContext(options: CreateContextOptions): Promise<ContextInfo>;
  listContexts(): Promise<ContextInfo[]>;
  /** A fresh kernel under the same id: every variable of the context is gone. */
  restartContext(id: string): Promise<ContextInfo>;
  /** Ends the context's kernel (and every process of its session). */
  deleteContext(id: string): Promise<void>;
}

/** Registered runtimes (a kit's `runtimes.values()`) as `engine.runtimes()`, MCP's list_runtimes and the docs describe them. */
export function describeRuntimes(definitions: Iterable<RuntimeDefinition>): RuntimeInfo[] {
  return [...definitions].map((d) => ({
    name: d.name,
    version: d.image.version,
    extensions: [...d.extensions],
    packages: d.packages !== undefined,
    contexts: d.context !== undefined,
  }));
}
