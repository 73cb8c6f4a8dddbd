import { ExecutionError, NotSupportedError, SANDBOX_DIR, type ResourceUsage, type SandboxDriver } from "@isol8/kit";
import { CONTAINER_MAIN_USER } from "../images/tags.js";
import { EXECUTOR_PATH } from "./executor-protocol.js";
import { oneAtATime, type LaunchOutcome, type LaunchRequest, type MainProcess, type ProcessLauncher } from "./launcher.js";
import { OomCounters } from "./oom.js";

/** Marks the line the runner writes last on stderr (OOM kills, usage); the launcher strips it. */
const USAGE_MARK = "\x1eisol8-usage ";

/**
 * Writes one regular file of the request's tar: GNU tar runs it per file (`--to-command`, the
 * file's content on stdin, its name without the leading "/" in TAR_FILENAME), so tar itself
 * never opens a path. Plain `tar -x` follows a symbolic link already on the way (a program's
 * `/sandbox/t -> /tmp` sends `t/x` to /tmp/x); its own guards only cover links made by the same
 * archive. Like the executor's unpacker it refuses, by name, a `.`, `..` or empty part and any
 * part of the parent path that is a symbolic link or not a directory, creates missing
 * directories, and replaces an existing file (a link in its place is removed, not followed; the
 * new file is created with O_EXCL: `set -C`). On a refusal it ends tar with SIGPIPE (which the
 * shell does not report): it stops at the first, as the executor does. Checking then writing by
 * name is safe here because no program of the sandbox user runs while the request unpacks
 * (every run ends with `kill -9 -1`). tar passes only regular files to it: other entry types
 * (links, devices, directories) are never created; the engine's archives hold regular files
 * only. Needs GNU tar; another tar fails the run ("could not unpack"), it never unpacks plainly.
 * No single quote inside: RUNNER quotes it.
 */
const UNPACK_FILE = [
  'fail() { printf "isol8: could not unpack the request files: %s\\n" "$1" >&2; kill -PIPE "$PPID"; exit 1; }',
  "n=$TAR_FILENAME",
  'case /$n/ in */../*|*/./*|*//*) fail "refused name $n";; esac',
  "d=; r=$n",
  "while :; do",
  "  case $r in */*) ;; *) break;; esac",
  "  p=${r%%/*}; r=${r#*/}; d=$d/$p",
  '  if [ -L "$d" ] || { [ -e "$d" ] && [ ! -d "$d" ]; }; then fail "not a directory (or a symbolic link): $p: Not a directory"; fi',
  '  [ -d "$d" ] || mkdir -- "$d" || fail "mkdir $p"',
  "done",
  "f=/$n",
  'if [ -d "$f" ] && [ ! -L "$f" ]; then fail "replace $n: Is a directory"; fi',
  'if [ -e "$f" ] || [ -L "$f" ]; then rm -f -- "$f" || fail "replace $n"; fi',
  // 0644 and 0600 (stdin) are the engine's modes; another one is set after the write, less go+w.
  "m=; case $TAR_MODE in 0644) ;; 0600) umask 077;; *) m=$TAR_MODE;; esac",
  "set -C",
  'cat > "$f" || fail "create $n"',
  'if [ -n "$m" ]; then chmod -- "$m" "$f" && chmod go-w -- "$f" || fail "chmod $n"; fi',
].join("\n");
if (UNPACK_FILE.includes("'")) throw new Error("UNPACK_FILE must not contain a single quote");

/**
 * The fixed script each execution runs as the sandbox user. It is isol8's code, not the user's:
 * the user's code and files arrive in the tar on stdin, never in argv.
 * - `setsid -w` puts the program in its own session and process group and waits for it.
 * - After the program exits, `kill -9 -1` ends whatever it left behind (background or
 *   double-forked children, setsid'd daemons): every process of the sandbox user except this
 *   shell. Docker's init (PID 1) and the container's main process run as another user, so they
 *   survive. Without this a leftover child would hold the output pipe open and the call would hang.
 * - The memory cgroup's OOM kill counter is read first and after everything is dead: the
 *   execution's own OOM kills (a grandchild's too), without another Docker exec.
 * - With ISOL8_USAGE, GNU time records the program's CPU time and peak RSS (its rusage), and the
 *   network counters are read before and after.
 * - One marked line (OOM counter before and after, then the usage) goes out on stderr after every
 *   process of the sandbox user is dead, so nothing can print after it: the engine reads only the
 *   last line, so a program printing a look-alike gains nothing.
 */
const RUNNER = [
  'oom() { for f in /sys/fs/cgroup/memory/memory.oom_control /sys/fs/cgroup/memory.events; do [ -r "$f" ] || continue; while read -r k v; do [ "$k" = oom_kill ] && { echo "$v"; return; }; done < "$f"; done; echo -; }',
  "oom0=$(oom)",
  // UNPACK_FILE writes each file. After a failure the rest of the tar is read and dropped, so
  // the engine's write of the payload never meets a closed stdin.
  `unpack='${UNPACK_FILE}'`,
  'tar -x -f - -C / --to-command="$unpack" || { cat > /dev/null; echo "isol8: could not unpack the request files" >&2; exit 125; }',
  'in=/dev/null; if [ -n "$ISOL8_STDIN" ]; then in="$ISOL8_STDIN"; fi',
  'net() { rx=0; tx=0; for d in /sys/class/net/*; do [ "${d##*/}" = lo ] && continue; rx=$((rx + $(cat "$d/statistics/rx_bytes"))); tx=$((tx + $(cat "$d/statistics/tx_bytes"))); done; echo "$rx $tx"; }',
  'if [ -n "$ISOL8_USAGE" ] && [ -x /usr/bin/time ]; then',
  "  set -- /usr/bin/time -q -f '%U %S %M' -o /tmp/.isol8-usage setsid -w \"$@\"; before=$(net)",
  'else set -- setsid -w "$@"; fi',
  '"$@" < "$in"',
  "rc=$?",
  "kill -9 -1 2>/dev/null",
  'usage=; if [ -n "$before" ]; then usage=" $before $(net) $(tail -n 1 /tmp/.isol8-usage 2>/dev/null)"; rm -f /tmp/.isol8-usage; fi',
  `printf '${USAGE_MARK.replace("\x1e", "\\036")}%s %s%s\\n' "$oom0" "$(oom)" "$usage" >&2`,
  "exit $rc",
].join("\n");

/**
 * Wipes a used container as the sandbox user with the executor binary's wipe mode (every
 * process, every file, IPC objects, the extended attributes and ACLs a program set on the roots,
 * the roots' modes; then it checks: anything left fails the wipe). isol8's images carry the
 * binary whether or not the executor launches programs. An image without it cannot be wiped
 * completely (a shell has no portable way to list and remove extended attributes), so the wipe
 * fails and the pool destroys the container instead of reusing it.
 */
const WIPE_SCRIPT = [
  `[ -x ${EXECUTOR_PATH} ] && exec ${EXECUTOR_PATH} --wipe`,
  `echo "isol8-wipe: this image has no ${EXECUTOR_PATH} to wipe with; the container is not reused" >&2`,
  "exit 1",
].join("\n");

/**
 * The exec path: the container idles as "nobody" and each program runs in its own Docker exec
 * as the sandbox user (who cannot signal the idle process), through RUNNER.
 */
export class DockerExecLauncher implements ProcessLauncher {
  readonly kind = "exec";
  readonly #oom: OomCounters;

  /** `userOf` gives a container's sandbox user ("uid:gid"): each container has its own. */
  constructor(
    private readonly driver: SandboxDriver,
    private readonly userOf: (containerId: string) => string,
  ) {
    this.#oom = new OomCounters(driver);
  }

  mainProcess(): MainProcess {
    return { command: ["sleep", "infinity"], user: CONTAINER_MAIN_USER, attachStdio: false, capabilities: [], env: {}, labels: { "isol8.launcher": "exec" } };
  }

  async beforeStart(): Promise<void> {}

  /**
   * The container has no root process to write the sandbox user's passwd and group entries: one
   * exec as root (no capability) runs the executor binary's `--users` mode (an image without the
   * binary keeps its own files).
   */
  async afterStart(containerId: string, uid: number): Promise<void> {
    let stderr = "";
    const { exitCode } = await this.driver.exec(containerId, {
      argv: ["sh", "-c", `[ -x ${EXECUTOR_PATH} ] || exit 0; exec ${EXECUTOR_PATH} --users "$1"`, "isol8-users", String(uid)],
      user: "0:0",
      onOutput: (_stream, chunk) => void (stderr = (stderr + chunk.toString()).slice(-1024)),
    });
    if (exitCode !== 0)
      throw new ExecutionError(`giving the sandbox user of container ${containerId.slice(0, 12)} its name failed (exit ${exitCode}): ${stderr.trim()}`);
  }

  async run(containerId: string, request: LaunchRequest): Promise<LaunchOutcome> {
    // The runner's one stdin is the request's archive: nothing can follow it while the program runs.
    if (request.stdinSource) throw new NotSupportedError("interactive stdin needs isol8's in-container executor; the exec path cannot send it");
    const trailer = new TrailerSplitter(USAGE_MARK);
    const deliver = oneAtATime(request.onOutput);
    const outcome = await this.driver.exec(containerId, {
      argv: ["sh", "-c", RUNNER, "isol8-run", ...request.argv],
      user: this.userOf(containerId),
      env: {
        ...request.env,
        ...(request.stdinPath ? { ISOL8_STDIN: request.stdinPath } : {}),
        ...(request.measureUsage ? { ISOL8_USAGE: "1" } : {}),
      },
      workdir: SANDBOX_DIR,
      stdin: request.payload,
      onOutput: (stream, chunk) => {
        if (stream === "stderr") chunk = trailer.push(chunk);
        if (chunk.length > 0) return deliver(stream, chunk);
      },
      signal: request.signal,
    });
    const { rest, line } = trailer.end();
    if (rest.length > 0) await deliver("stderr", rest);
    // The runner was killed (a timeout, killAll) before its report: read the counter instead.
    if (line === undefined) return { ...outcome, oomKills: await this.#oom.readSinceLastCheck(containerId, this.userOf(containerId)) };
    const [before, after, ...usage] = line.trim().split(/\s+/);
    const oom = [Number(before), Number(after)];
    const counted = oom.every((n) => Number.isInteger(n) && n >= 0);
    if (counted) this.#oom.set(containerId, oom[1]!);
    return {
      ...outcome,
      oomKills: counted ? Math.max(0, oom[1]! - oom[0]!) : 0,
      ...(request.measureUsage && usage.length > 0 && { usage: parseUsage(usage.join(" ")) }),
    };
  }

  async killAll(containerId: string): Promise<void> {
    await this.driver.exec(containerId, { argv: ["sh", "-c", "kill -9 -1 2>/dev/null; exit 0"], user: this.userOf(containerId) });
  }

  async wipe(containerId: string): Promise<void> {
    let output = "";
    const { exitCode } = await this.driver.exec(containerId, {
      argv: ["sh", "-c", WIPE_SCRIPT],
      user: this.userOf(containerId),
      onOutput: (_stream, chunk) => void (output = (output + chunk.toString()).slice(-2048)),
    });
    if (exitCode !== 0)
      throw new ExecutionError(`wiping container ${containerId.slice(0, 12)} left something behind (exit ${exitCode})${output ? `: ${output.trim()}` : ""}`);
  }

  /** The exec path has no warm start: every program starts its interpreter afresh. */
  async prepareWarmStart(): Promise<boolean> {
    return false;
  }

  async isAlive(containerId: string): Promise<boolean> {
    return (await this.driver.inspect(containerId))?.running === true;
  }

  forget(containerId: string): void {
    this.#oom.forget(containerId);
  }
}

/** "rx0 tx0 rx1 tx1 user sys maxrssKiB" → usage. */
function parseUsage(line: string): ResourceUsage | undefined {
  const [rx0, tx0, rx1, tx1, user, sys, rssKiB] = line.trim().split(/\s+/).map(Number);
  if ([rx0, tx0, rx1, tx1].some((n) => n === undefined || !Number.isFinite(n))) return undefined;
  const cpu = (Number.isFinite(user) ? user! : 0) + (Number.isFinite(sys) ? sys! : 0);
  return {
    cpuTimeMs: Math.round(cpu * 1000),
    peakMemoryBytes: Number.isFinite(rssKiB) ? rssKiB! * 1024 : 0,
    networkBytesIn: rx1! - rx0!,
    networkBytesOut: tx1! - tx0!,
  };
}

/**
 * Holds back the part of a byte stream that could be the start of a final marked line, so the
 * line can be taken off the end. Everything else passes through in order.
 */
export class TrailerSplitter {
  readonly #mark: Buffer;
  #held: Buffer = Buffer.alloc(0);

  constructor(mark: string) {
    this.#mark = Buffer.from(mark);
  }

  push(chunk: Buffer): Buffer {
    const data = this.#held.length ? Buffer.concat([this.#held, chunk]) : chunk;
    // Hold from the last byte that starts the mark: the mark's first byte is a control
    // character that ordinary output does not contain, so almost nothing is ever held.
    const at = data.lastIndexOf(this.#mark[0]!);
    if (at === -1 || !this.#couldBeTrailer(data.subarray(at))) {
      this.#held = Buffer.alloc(0);
      return data;
    }
    this.#held = data.subarray(at);
    return data.subarray(0, at);
  }

  /** The held tail: the trailer line when it is one (without the mark), else bytes to pass on. */
  end(): { rest: Buffer; line?: string } {
    const held = this.#held;
    this.#held = Buffer.alloc(0);
    const text = held.toString();
    if (held.subarray(0, this.#mark.length).equals(this.#mark) && /^[^\n]*\n?$/.test(text.slice(this.#mark.length))) {
      return { rest: Buffer.alloc(0), line: text.slice(this.#mark.length) };
    }
    return { rest: held };
  }

  #couldBeTrailer(tail: Buffer): boolean {
    const n = Math.min(tail.length, this.#mark.length);
    if (!tail.subarray(0, n).equals(this.#mark.subarray(0, n))) return false;
    // A newline before the end means more output followed: not the final line.
    const newline = tail.indexOf(10);
    return newline === -1 || newline === tail.length - 1;
  }
}
