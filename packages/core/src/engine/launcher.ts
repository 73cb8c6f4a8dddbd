import type { DockerDriver } from "../docker/driver.js";
import { SANDBOX_USER } from "../images/tags.js";
import { SANDBOX_DIR } from "../schemas.js";

export interface LaunchRequest {
  /** The program's argv (the runtime's command for the code file). */
  argv: string[];
  env: Record<string, string>;
  /** A tar archive unpacked at "/" before the program starts: the code, the request's files, its stdin. */
  payload: Buffer;
  /** Path (inside the payload) whose content becomes the program's stdin, if any. */
  stdinPath?: string;
  onOutput(stream: "stdout" | "stderr", chunk: Buffer): void | Promise<void>;
  signal?: AbortSignal;
}

/**
 * How a program is started inside a running container. Today: one Docker exec per program.
 * An in-container executor (its own issue) implements the same interface.
 */
export interface ProcessLauncher {
  run(containerId: string, request: LaunchRequest): Promise<{ exitCode: number }>;
  /** Kills every process of the sandbox user in the container (the container keeps running). */
  killAll(containerId: string): Promise<void>;
}

/**
 * The fixed script each execution runs as the sandbox user. It is isol8's code, not the user's:
 * the user's code and files arrive in the tar on stdin, never in argv.
 * - `setsid -w` puts the program in its own session and process group and waits for it.
 * - After the program exits, `kill -9 -1` ends whatever it left behind (background or
 *   double-forked children, setsid'd daemons): every process of the sandbox user except this
 *   shell. Docker's init (PID 1) and the container's main process run as another user, so they
 *   survive. Without this a leftover child would hold the output pipe open and the call would hang.
 */
const RUNNER = [
  'tar -x -f - -C / || { echo "isol8: could not unpack the request files" >&2; exit 125; }',
  'in=/dev/null; if [ -n "$ISOL8_STDIN" ]; then in="$ISOL8_STDIN"; fi',
  'setsid -w "$@" < "$in"',
  "rc=$?",
  "kill -9 -1 2>/dev/null",
  "exit $rc",
].join("\n");

export class DockerExecLauncher implements ProcessLauncher {
  constructor(private readonly driver: DockerDriver) {}

  async run(containerId: string, request: LaunchRequest): Promise<{ exitCode: number }> {
    return this.driver.exec(containerId, {
      argv: ["sh", "-c", RUNNER, "isol8-run", ...request.argv],
      user: SANDBOX_USER,
      env: { ...request.env, ...(request.stdinPath ? { ISOL8_STDIN: request.stdinPath } : {}) },
      workdir: SANDBOX_DIR,
      stdin: request.payload,
      onOutput: request.onOutput,
      signal: request.signal,
    });
  }

  async killAll(containerId: string): Promise<void> {
    await this.driver.exec(containerId, { argv: ["sh", "-c", "kill -9 -1 2>/dev/null; exit 0"], user: SANDBOX_USER });
  }
}
