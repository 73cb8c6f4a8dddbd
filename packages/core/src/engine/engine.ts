import type { ExecutionRequest, ExecutionResult, StreamEvent } from "../schemas.js";

export interface StartOptions {
  /** Fill the pools before the first execution: every registered runtime, or the ones named. */
  prewarm?: boolean | { runtimes?: string[] };
}

export interface ExecuteOptions {
  /** Aborting it stops the run at once: every process is killed and the container released. */
  signal?: AbortSignal;
}

/** The one interface DockerIsol8 and RemoteIsol8 both implement. */
export interface Isol8Engine {
  start(options?: StartOptions): Promise<void>;
  stop(): Promise<void>;
  execute(request: ExecutionRequest, options?: ExecuteOptions): Promise<ExecutionResult>;
  executeStream(request: ExecutionRequest, options?: ExecuteOptions): AsyncIterable<StreamEvent>;
  putFile(path: string, content: Buffer | string): Promise<void>;
  getFile(path: string): Promise<Buffer>;
}
