/**
 * Interpreter contexts: a long-lived interpreter (a "kernel") inside a persistent sandbox that
 * runs code as the next cell of a conversation: globals, imports, open files and threads survive
 * from one cell to the next. Contexts live in persistent sandboxes only (a `mode: "persistent"`
 * engine, a server session); several may share one sandbox (the filesystem, not variables).
 *
 * The kernel protocol, between the engine and a runtime's kernel program (`ContextKernel`):
 *
 * - The kernel runs as the sandbox user in its own session (setsid), started by the in-container
 *   executor (packages/core/executor/PROTOCOL.md, "Contexts"), with the runtime's env and the
 *   context's env over it, in the context's cwd. fd 0 is /dev/null; fd 1 and fd 2 are the cells'
 *   stdout and stderr (streamed to the engine as they come); fd 3 carries cells to the kernel;
 *   fd 4 carries the kernel's messages back. fds 3 and 4 must not leak into a cell's child
 *   processes (close-on-exec once the kernel holds them).
 * - fd 3 (engine → kernel), per cell: a header line `<cell number> <byte length>\n` (decimal),
 *   then exactly that many bytes: the cell's code, UTF-8 (easy to read in any language, bash's
 *   `read -N` included). Cells come one at a time: the next only after the previous one's `done`.
 * - fd 4 (kernel → engine), one JSON object per line (`KernelMessage`): `ready` once, when the
 *   kernel waits for its first cell; per cell, any number of `display` (a rich output, in order;
 *   `result: true` for the forms of the cell's last expression's value, as a notebook shows it),
 *   then exactly one `done`, written only after the kernel flushed its stdout and stderr (the
 *   executor forwards everything of fds 1 and 2 read before a message ahead of it).
 * - Interrupt: when a cell passes its time limit the engine sends SIGINT to the kernel's process
 *   group. A kernel declared `interruptible` ends the cell with a `done` whose error names the
 *   interrupt (python: KeyboardInterrupt) and keeps its state. If no `done` comes within
 *   `CONTEXT_INTERRUPT_GRACE_MS` (or the kernel is not interruptible), the engine kills the
 *   kernel's session and starts a fresh kernel under the same id: the cell's result says
 *   `contextRestarted: true`.
 * - A kernel that exits (the cell called `os._exit`, `process.exit`, `exit` in bash) ends its
 *   context's state: the cell's result says `contextRestarted: true` and the next cell runs in a
 *   fresh kernel under the same id; the sandbox and other contexts are unaffected.
 */
import type { CellError } from "./results.js";

/** A runtime's kernel: how the engine starts an interpreter context of this runtime. */
export interface ContextKernel {
  /** argv of the kernel program (see the kernel protocol above). */
  readonly command: readonly string[];
  /** Whether SIGINT ends a running cell and the kernel keeps its state. */
  readonly interruptible: boolean;
  /** Environment the kernel gets on top of the runtime's env (the context's own env wins). */
  readonly env?: Readonly<Record<string, string>>;
}

/** What `engine.createContext` takes. */
export interface CreateContextOptions {
  /** A registered runtime that has contexts (`engine.runtimes()`: `contexts: true`). */
  runtime: string;
  /** The kernel's working directory: inside /sandbox or /tmp (default /sandbox). */
  cwd?: string;
  /** Environment of the kernel (over the runtime's). */
  env?: Record<string, string>;
}

/** A context as `createContext` and `listContexts` describe it. */
export interface ContextInfo {
  id: string;
  runtime: string;
  /** The kernel's working directory. */
  cwd: string;
  /** ISO time of the context's creation. */
  createdAt: string;
  /** Cells run in it (over restarts). */
  cells: number;
  /** Times its kernel was started afresh (restartContext, a kill after an interrupt, an exit). */
  restarts: number;
}

/** One message of a kernel on its fd 4 (see the kernel protocol above). */
export type KernelMessage =
  | { type: "ready" }
  | { type: "display"; cell: number; mime: string; /** base64 of the output's bytes */ data: string; result?: boolean }
  | { type: "done"; cell: number; error?: CellError; /** the cell's status (bash: its last command's); default 0, 1 with an error */ exitCode?: number };

/** The bytes the engine sends a kernel on its fd 3 for one cell. */
export function kernelCellBytes(cell: number, code: string): Buffer {
  const body = Buffer.from(code, "utf8");
  return Buffer.concat([Buffer.from(`${cell} ${body.length}\n`, "ascii"), body]);
}

/** Contexts one sandbox holds at most (the executor's own bound). */
export const MAX_CONTEXTS_PER_SANDBOX = 16;
/** How long an interrupted cell has to end before its kernel is killed and started afresh. */
export const CONTEXT_INTERRUPT_GRACE_MS = 2000;
/** How long a new kernel has to say `ready`. */
export const CONTEXT_START_TIMEOUT_MS = 30_000;
