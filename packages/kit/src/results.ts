/** What an execution gives back: the result, its rich outputs, and the stream events. */

export interface ExecutionResult {
  stdout: string;
  stderr: string;
  exitCode: number;
  durationMs: number;
  /** true when stdout or stderr was cut at maxOutputSize. */
  truncated: boolean;
  /** true when the time limit killed the program. */
  timedOut: boolean;
  /** true when the kernel's OOM killer killed a process of the program. */
  oomKilled: boolean;
  executionId: string;
  runtime: string;
  /** ISO time at which the execution started. */
  timestamp: string;
  containerId?: string;
  /** base64 content of each requested outputPath that exists (a regular file within the bounds). */
  files?: Record<string, string>;
  /** outputPaths that exist but were not sent back: past maxOutputFileSize or maxOutputFilesSize. */
  omittedFiles?: OmittedFile[];
  /**
   * Rich outputs (display(), matplotlib figures) in the order the program made them; present
   * for runtimes that have display (python, node), empty when the program displayed nothing.
   */
  outputs?: RichOutput[];
  /** true when no warm container was ready and this execution waited for a new one. */
  coldStart: boolean;
  resourceUsage?: ResourceUsage;
  /** With `logNetwork` (in a mode that logs, e.g. filtered): this execution's requests. */
  networkLogs?: NetworkLogEntry[];
  /** With `persist: true`: the container was left running for inspection (remove it with `isol8 cleanup`). */
  persisted?: true;
  /**
   * With a setupScript: its output and exit code, apart from the code's (stdout and stderr above
   * are the code's alone). When it failed (exitCode ≠ 0) the code was not run: the result's
   * exitCode is the setup's and its stdout/stderr are empty.
   */
  setup?: SetupResult;
  /**
   * A context cell's exception (the context survives it): its class, message and traceback.
   * exitCode is 1 then (0 when the cell ended normally).
   */
  error?: CellError;
  /**
   * A context cell whose kernel had to start afresh: it did not stop when interrupted after its
   * time limit, or the code ended its interpreter (os._exit, process.exit). Its state is gone;
   * the next cell runs in the fresh kernel under the same id.
   */
  contextRestarted?: boolean;
}

/** An outputPath left out of result.files, and why. */
export interface OmittedFile {
  path: string;
  /** The file's size (its apparent size: a sparse file counts whole). */
  sizeBytes: number;
  /**
   * "file-too-large": past maxOutputFileSize; "total-too-large": it would take the execution's
   * files past maxOutputFilesSize (files asked for before it were taken first); "read-abandoned":
   * reading stopped (the deadline, or a file that grew past a bound while being read).
   */
  reason: "file-too-large" | "total-too-large" | "read-abandoned";
  /** The bound it is past (with "file-too-large" and "total-too-large"). */
  limitBytes?: number;
}

/**
 * Where a runtime's display helper writes rich outputs, one file each, inside the sandbox. A
 * runtime declares it has display by setting RICH_OUTPUTS_ENV to this directory in its env.
 * A file's name is `<20-digit CLOCK_MONOTONIC ns>-<pid>-<type>_<subtype>` (its mime type with
 * "/" as "_"), its content the output's bytes; the engine reads the directory back after the
 * program and removes it.
 */
export const RICH_OUTPUTS_DIR = "/tmp/.isol8-outputs";
export const RICH_OUTPUTS_ENV = "ISOL8_OUTPUTS_DIR";

/** One rich output of an execution (result.outputs, a `display` stream event). */
export interface RichOutput {
  /** Its mime type: image/png, image/jpeg, image/svg+xml, text/html, application/json, text/markdown, text/plain, … */
  type: string;
  /** base64 for binary images (image/* but svg), the text otherwise; "" when omitted. */
  data: string;
  /** A form of a context cell's last expression's value (text/plain, and richer ones it has), as a notebook shows it. */
  result?: true;
  /** Set when the output was left out: `data` is empty (see `omitted`). */
  truncated?: true;
  /**
   * Why it was left out: "output-too-large" (past maxOutputFileSize), "total-too-large" (the
   * execution's outputs would pass maxOutputFilesSize), "too-many" (past the count bound),
   * "read-abandoned" (the read-back's deadline, or it grew while read).
   */
  omitted?: "output-too-large" | "total-too-large" | "too-many" | "read-abandoned";
  /** The output's size in bytes, with `omitted`. */
  sizeBytes?: number;
  /** The bound it is past, with "output-too-large" and "total-too-large". */
  limitBytes?: number;
}

export interface NetworkLogEntry {
  /** ISO time of the request. */
  timestamp: string;
  method: string;
  host: string;
  /** null when not visible (an HTTPS CONNECT tunnel). */
  path: string | null;
  action: "ALLOW" | "BLOCK";
  /** Why it was blocked: the rule or address class. */
  reason?: string;
  /** The HTTP status the proxy answered with: the upstream's when it forwarded, its own (403) when it blocked. */
  status?: number;
  /** Why an allowed request still failed upstream (name not found, connection refused). */
  error?: string;
  durationMs: number;
}

export interface ResourceUsage {
  cpuTimeMs: number;
  peakMemoryBytes: number;
  networkBytesIn: number;
  networkBytesOut: number;
}

/**
 * Which part of a request wrote an output event: its setupScript or its code (or cmd). Set on
 * the output events of a request with a setupScript only; without one every event is the code's.
 */
export type OutputPhase = "setup" | "code";

/** What a request's setupScript did (result.setup). */
export interface SetupResult {
  stdout: string;
  stderr: string;
  exitCode: number;
  durationMs: number;
  /** true when its stdout or stderr was cut at maxOutputSize (each phase has its own cap). */
  truncated: boolean;
}

/**
 * An exception a context cell raised: the context survives it (result.error). Here, not in
 * contexts.ts, so the result types' declarations need no Node types (a browser imports them).
 */
export interface CellError {
  /** The exception's class name, e.g. "ZeroDivisionError", "KeyboardInterrupt", "ReferenceError". */
  name: string;
  /** Its message. */
  value: string;
  /** The traceback's lines, as the runtime prints them (the kernel's own frames left out). */
  traceback: string[];
}

/** A registered runtime as `engine.runtimes()` (and GET /runtimes) describes it. */
export interface RuntimeInfo {
  name: string;
  /** The runtime image recipe's version (its pinned interpreter and package versions). */
  version: string;
  /** File extensions it runs; the first is the default for `code`. */
  extensions: string[];
  /** Whether `installPackages` works in it (the runtime has a package installer). */
  packages: boolean;
  /** Whether it has interpreter contexts (createContext; cells that keep state). */
  contexts: boolean;
}

export type StreamEvent =
  | { type: "stdout"; data: string; phase?: OutputPhase }
  | { type: "stderr"; data: string; phase?: OutputPhase }
  | { type: "display"; data: string; output: RichOutput }
  | { type: "exit"; data: string; result: ExecutionResult }
  | { type: "error"; data: string; code?: string };

// ---------------------------------------------------------------- engine options
