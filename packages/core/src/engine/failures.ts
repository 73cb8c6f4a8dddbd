import { DockerUnavailableError, EngineStoppedError, ExecutionError, Isol8Error, SandboxGoneError, type PooledContainer, type SandboxDriver } from "@isol8/kit";
import type { Sandboxes } from "./sandboxes.js";

/**
 * The error of a cancelled run: stop() during it says so (whatever the step it interrupted
 * threw: a pool's drain, an AbortError), a caller's abort keeps the run's typed error, and
 * anything untyped becomes an ExecutionError.
 */
export function cancelledError(error: unknown, stoppedDuringRun: boolean): unknown {
  if (stoppedDuringRun) {
    return Isol8Error.isInstance(error) && error.code === "ISOL8_ERR_ENGINE_STOPPED"
      ? error
      : new EngineStoppedError("stop() was called during this execution; the program and every process it started were killed", { cause: error });
  }
  if (Isol8Error.isInstance(error)) return error;
  return new ExecutionError("The execution was aborted; the program and every process it started were killed.", { cause: error });
}

/**
 * Names the real cause of a run that failed in the engine (not a typed refusal): the backend
 * that stopped answering (rather than the container), or a persistent session's container that
 * is gone (killed or removed from outside; the release has removed what was left).
 */
export async function diagnoseFailure(
  error: unknown,
  at: { driver: SandboxDriver; sandboxes: Sandboxes; persistent: boolean; container: PooledContainer | undefined },
): Promise<unknown> {
  if (Isol8Error.isInstance(error) && error.code !== "ISOL8_ERR_EXECUTION") return error;
  const detail = error instanceof Error ? error.message : String(error);
  if (!(await at.driver.answers())) return new DockerUnavailableError(`it stopped answering during the execution: ${detail}`, { cause: error });
  if (at.container && at.persistent && !(await at.sandboxes.isRunning(at.container.id))) {
    return new SandboxGoneError(at.container.id, `it stopped running: killed or removed outside isol8; ${detail}`, { cause: error });
  }
  return error;
}
