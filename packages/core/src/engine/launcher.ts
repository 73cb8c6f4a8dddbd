import { InvalidOptionsError, type ResourceUsage, type SandboxSpec, type StdinSource } from "@isol8/kit";
import type { ExitReport } from "./executor-protocol.js";
import type { KernelHost } from "./executor-contexts.js";

export interface LaunchRequest {
  /** The program's argv (the runtime's command for the code file). */
  argv: string[];
  env: Record<string, string>;
  /** A tar archive unpacked at "/" before the program starts: the code, the request's files, its stdin. */
  payload: Buffer;
  /** Path (inside the payload) whose content becomes the program's stdin, if any. */
  stdinPath?: string;
  /** Interactive stdin, sent while the program runs (executor only: the exec path refuses it). */
  stdinSource?: StdinSource;
  /** Measure CPU time, peak memory and network bytes of this program alone. */
  measureUsage?: boolean;
  /** The container's prepared warm start may run this program (executor only; others ignore it). */
  warm?: boolean;
  /** A function, not a method: launchers pass it on detached from the request. */
  onOutput: (stream: "stdout" | "stderr", chunk: Buffer) => void | Promise<void>;
  signal?: AbortSignal;
}

export interface LaunchOutcome {
  exitCode: number;
  /** With measureUsage, when the image can measure (GNU time is in isol8's images). */
  usage?: ResourceUsage;
  /** Processes the OOM killer ended in the container during this run (a grandchild's too). */
  oomKills: number;
  /**
   * false when the launcher knows no rich outputs were left (RICH_OUTPUTS_DIR did not exist when
   * the program ended: the executor says so); undefined when it does not know.
   */
  richOutputs?: boolean;
}

/** The main process of the containers a launcher serves: its part of the base SandboxSpec. */
export type MainProcess = Pick<SandboxSpec, "command" | "user" | "attachStdio" | "capabilities" | "env" | "labels">;

/**
 * How programs start in the containers one launcher serves: one Docker exec per program
 * (DockerExecLauncher, exec-launcher.ts), or one round trip to isol8's in-container executor
 * (ExecutorLauncher, executor-launcher.ts) for images that carry it. The engine picks a launcher
 * for each container when it creates it, and from then on only speaks to that launcher: each
 * owns run, kill, wipe, warm start and liveness for its containers.
 */
export interface ProcessLauncher {
  readonly kind: LauncherMode & ("exec" | "executor");
  /** The main process for a container whose programs run as sandbox uid (= gid) `uid`. */
  mainProcess(uid: number): MainProcess;
  /** Between the container's create and start: attach to its main process before it writes. */
  beforeStart(containerId: string): Promise<void>;
  /** After the start: the container is ready to run programs as `uid`, or this throws. */
  afterStart(containerId: string, uid: number): Promise<void>;
  run(containerId: string, request: LaunchRequest): Promise<LaunchOutcome>;
  /** Kills every process of the sandbox user in the container (the container keeps running). */
  killAll(containerId: string): Promise<void>;
  /**
   * Returns a used container to a clean state: every process of the sandbox user killed,
   * /sandbox, /tmp, /dev/shm and /dev/mqueue emptied, IPC objects, xattrs and ACLs removed.
   * Throws when something is left (the pool destroys the container then).
   */
  wipe(containerId: string): Promise<void>;
  /** Starts the runtime's warm start; resolves false when this launcher has none. Never rejects. */
  prepareWarmStart(containerId: string, request: PrepareRequest): Promise<boolean>;
  isAlive(containerId: string): Promise<boolean>;
  /** The container is gone: drop what the launcher holds for it. */
  forget(containerId: string): void;
  /** Interpreter contexts' kernels (executor only: the exec path has none, and contexts refuse it). */
  kernels?(containerId: string): KernelHost;
}

/** What the executor path takes beyond the common request. */
export interface ExecutorLaunchRequest extends LaunchRequest {
  /** The executor's own time limit, counted from the request (unpacking included). */
  timeoutMs?: number;
  /** Bytes piped to the program's stdin (instead of `stdinPath` or /dev/null). */
  stdin?: Buffer;
  /** Working directory (default /sandbox). */
  cwd?: string;
}

/** A runtime's warm-start program, started ahead of the next run (PROTOCOL.md, "The standby"). */
export interface PrepareRequest {
  argv: readonly string[];
  env: Readonly<Record<string, string>>;
  cwd?: string;
}

export interface ExecutorLaunchOutcome extends LaunchOutcome {
  /** The exit frame as the executor sent it; absent when the run was aborted before it came. */
  exit?: ExitReport;
}

export type LauncherMode = "auto" | "exec" | "executor";
const LAUNCHER_MODES: readonly LauncherMode[] = ["auto", "exec", "executor"];

/**
 * The launcher in force: an explicit option wins; with "auto" the env var ISOL8_LAUNCHER may
 * force one (CI runs the suite again with ISOL8_LAUNCHER=exec).
 */
export function resolveLauncherMode(option: LauncherMode, env: string | undefined): LauncherMode {
  if (option !== "auto") return option;
  const value = env?.trim();
  if (!value) return "auto";
  if (!(LAUNCHER_MODES as readonly string[]).includes(value)) {
    throw new InvalidOptionsError(`ISOL8_LAUNCHER: expected "auto", "exec" or "executor", got ${JSON.stringify(value)}`);
  }
  return value as LauncherMode;
}

/**
 * Delivers output chunks one at a time: when the consumer answers a chunk with a promise (it is
 * slow), later chunks wait for that promise before they are handed over. One Docker data event
 * can carry several chunks; without this the consumer would get the next ones while it asked to
 * wait, and a consumer that settles only its latest promise would stall the stream for good.
 */
export function oneAtATime(onOutput: LaunchRequest["onOutput"]): (stream: "stdout" | "stderr", chunk: Buffer) => void | Promise<void> {
  let tail: Promise<void> | undefined;
  const settle = (wait: void | Promise<void>): Promise<void> | undefined => (wait ? Promise.resolve(wait).catch(() => undefined) : undefined);
  return (stream, chunk) => {
    const next: Promise<void> | undefined = tail ? tail.then(() => settle(onOutput(stream, chunk))) : settle(onOutput(stream, chunk));
    if (!next) return;
    // Never rejects: a consumer that failed on one chunk still gets the next ones.
    const guarded: Promise<void> = next
      .catch(() => undefined)
      .then(() => {
        if (tail === guarded) tail = undefined;
      });
    tail = guarded;
    return guarded;
  };
}
