import type { ContextKernel } from "@isol8/kit";

/**
 * The bash runtime's context kernel (the kernel protocol: @isol8/kit contexts.ts). Each cell is
 * sourced by the kernel shell itself, so variables, arrays, functions, aliases, the working
 * directory, `set`/`shopt` options and traps persist from one cell to the next, as in a terminal;
 * `done` carries the cell's status (`$?` after it) as `exitCode`. `exit` in a cell ends the
 * kernel (and its state), as it ends a terminal; so does a failing command under `set -e`. `break`/`continue` at a cell's top level end that cell.
 *
 * The cell is read with `LC_ALL=C read -N`, so its length counts bytes; it is sourced from a
 * here-string on fd 9 that the cell closes first, with fds 3 and 4 closed while it runs (bash
 * keeps its own copies close-on-exec): the cell's commands never inherit the protocol's pipes.
 *
 * SIGINT: ignored while the kernel waits; during a cell it stops the foreground command and
 * returns from the cell with status 130 (from a function: from it and each of its callers), and
 * `done` names the interrupt. A cell that
 * traps INT itself keeps its handler for that cell only.
 */
export const BASH_CONTEXT_KERNEL = String.raw`
__isol8_cell=
__isol8_interrupted=
__isol8_running=
__isol8_flags=
# After an interrupt inside a function: a DEBUG trap set after a function started stays when it
# returns, so it returns from each caller in turn. Removed at the top level (a function that
# removes it gets it back when it returns).
__isol8_unwind='if [[ -n $__isol8_running && -n $BASH_SOURCE ]]; then return 130; fi'
__isol8_done() {
  local error=
  trap '' INT
  # A cell that turned xtrace on keeps it for its next cell, not for the kernel's commands.
  __isol8_flags=$-
  set +x
  if [[ -n $__isol8_interrupted ]]; then
    error=',"error":{"name":"Interrupt","value":"the cell was interrupted (SIGINT)","traceback":[]}'
  fi
  printf '{"type":"done","cell":%s,"exitCode":%s%s}\n' "$__isol8_cell" "$1" "$error" >&4
  __isol8_cell=
  __isol8_interrupted=
}
__isol8_serve='
while :; do
  # A cell that ended with "continue" at its top level.
  if [[ -n $__isol8_cell ]]; then { __isol8_running=; trap - DEBUG; __isol8_done 0; } 2>/dev/null; fi
  IFS=" " read -r __isol8_cell __isol8_length <&3 || exit 0
  if ! [[ $__isol8_cell =~ ^[0-9]+$ && $__isol8_length =~ ^[0-9]+$ ]]; then
    printf "isol8 kernel: a cell header is <cell> <byte length>, got %q\n" "$__isol8_cell $__isol8_length" >&2
    exit 2
  fi
  __isol8_code=
  if (( __isol8_length > 0 )); then IFS= LC_ALL=C read -r -N "$__isol8_length" __isol8_code <&3 || exit 0; fi
  # Inside the cell (BASH_SOURCE is set in the sourced cell and the functions it calls): return
  # from it; from a function, the DEBUG trap returns from each caller in turn, up to the cell.
  trap "if [[ -n \$__isol8_running && -n \$BASH_SOURCE ]]; then __isol8_interrupted=1; trap \"\$__isol8_unwind\" DEBUG; return 130; fi" INT
  __isol8_running=1
  if [[ $__isol8_flags == *x* ]]; then set -x; fi
  . /dev/fd/9 9<<<"exec 9<&-; $__isol8_code" 3<&- 4>&-
  { __isol8_status=$?; __isol8_running=; trap - DEBUG; __isol8_done "$__isol8_status"; } 2>/dev/null
done
# A cell that ended with "break" at its top level: it is done, and the kernel serves again.
{ __isol8_running=; trap - DEBUG; __isol8_done 0; } 2>/dev/null
eval "$__isol8_serve"
'
trap '' INT
printf '{"type":"ready"}\n' >&4
eval "$__isol8_serve"
`;

/** How the engine starts a bash context: a shell without start-up files, in the context's cwd. */
export const bashContextKernel: ContextKernel = {
  command: ["bash", "--norc", "--noprofile", "-c", BASH_CONTEXT_KERNEL, "bash"],
  interruptible: true,
};
