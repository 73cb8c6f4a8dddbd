import type { DockerDriver } from "../docker/driver.js";
import { SANDBOX_DIR, type ResourceUsage } from "@isol8/kit";

export interface LaunchRequest {
  /** The program's argv (the runtime's command for the code file). */
  argv: string[];
  env: Record<string, string>;
  /** A tar archive unpacked at "/" before the program starts: the code, the request's files, its stdin. */
  payload: Buffer;
  /** Path (inside the payload) whose content becomes the program's stdin, if any. */
  stdinPath?: string;
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
  /** Processes the OOM killer ended in the container during this run, when the launcher could count them. */
  oomKills?: number;
  /**
   * The container's OOM kill counter after the run (exec path): the baseline for a later run
   * that ends without a count of its own (its runner was killed).
   */
  oomKillCounter?: number;
}

/**
 * How a program is started inside a running container: one Docker exec per program
 * (DockerExecLauncher, below), or one round trip to isol8's in-container executor
 * (ExecutorLauncher, executor-launcher.ts) for images that carry it.
 */
export interface ProcessLauncher {
  run(containerId: string, request: LaunchRequest): Promise<LaunchOutcome>;
  /** Kills every process of the sandbox user in the container (the container keeps running). */
  killAll(containerId: string): Promise<void>;
}

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

export class DockerExecLauncher implements ProcessLauncher {
  /** `userOf` gives a container's sandbox user ("uid:gid"): each container has its own. */
  constructor(
    private readonly driver: DockerDriver,
    private readonly userOf: (containerId: string) => string,
  ) {}

  async run(containerId: string, request: LaunchRequest): Promise<LaunchOutcome> {
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
    if (line === undefined) return outcome; // the runner was killed (a timeout, killAll)
    const [before, after, ...usage] = line.trim().split(/\s+/);
    const oom = [Number(before), Number(after)];
    return {
      ...outcome,
      ...(oom.every((n) => Number.isInteger(n) && n >= 0) && { oomKills: Math.max(0, oom[1]! - oom[0]!), oomKillCounter: oom[1]! }),
      ...(request.measureUsage && usage.length > 0 && { usage: parseUsage(usage.join(" ")) }),
    };
  }

  async killAll(containerId: string): Promise<void> {
    await this.driver.exec(containerId, { argv: ["sh", "-c", "kill -9 -1 2>/dev/null; exit 0"], user: this.userOf(containerId) });
  }
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
