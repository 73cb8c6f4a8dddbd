import type { ExecOptions, ExecOutcome, ResolvedEngineOptions, RichOutput, SandboxDriver } from "@isol8/kit";
import type { ProcessLauncher } from "./launcher.js";
import { FILE_READ_DEADLINE_MS, readTarFromContainer } from "./output-files.js";
import { packTar } from "./sandbox-files.js";

/** Outputs read back from one execution, at most; later ones are marked "too-many". */
export const MAX_RICH_OUTPUTS = 1000;
/** Entries of the directory looked at, at most (names past it are not even listed). */
const MAX_LISTED = 4 * MAX_RICH_OUTPUTS;
/** Tar's bytes per file beyond its content (a 512-byte header, padding to 512), for the read's budget. */
const TAR_BYTES_PER_FILE = 1536;

/** Bounds of one read-back: the engine's maxOutputFileSize (per output) and maxOutputFilesSize (in total). */
export type RichOutputLimits = Pick<ResolvedEngineOptions, "maxOutputFileSize" | "maxOutputFilesSize">;

/**
 * Lists the outputs directory (moved aside first, so nothing written later joins this read and
 * nothing of it is left for the next execution of a persistent sandbox), in name order (the
 * helpers' names start with the monotonic clock: execution order), and sends back in a tar the
 * regular files whose name has the helpers' shape and that fit the bounds; then removes it. Each
 * entry gets a NUL-terminated record on stderr: `isol8-skip<TAB>reason<TAB>name` (not an
 * output), `isol8-omit<TAB>reason<TAB>size<TAB>name`, `isol8-send<TAB>size<TAB>name`.
 * Everything in it was made by the program: names are checked before use, symbolic links and
 * special files are never followed or read. Arguments: the directory, the per-output bound, the
 * total bound, the count bound, the listing bound.
 */
const READ_RICH_OUTPUTS_SCRIPT = [
  "dir=$1 max_file=$2 max_total=$3 max_count=$4 max_listed=$5 total=0 count=0",
  'reading="$dir.reading.$$"',
  '[ -e "$dir" ] || [ -L "$dir" ] || exit 0',
  'mv -T -- "$dir" "$reading" 2>/dev/null || exit 0',
  'cd -P -- "$reading" 2>/dev/null || { rm -rf -- "$reading"; exit 0; }',
  // No pathname expansion of the names below (a name may be `*`).
  "set -f --",
  // Names with a newline come out of ls as two lines: neither has the helpers' shape.
  'names=$(LC_ALL=C ls -A | head -n "$max_listed")',
  "IFS='",
  "'",
  "for name in $names; do",
  // The helpers write `<name>.part` and rename it whole: a .part left is an output cut short.
  '  case "$name" in *.part) printf \'isol8-skip\\tunfinished\\t%s\\0\' "$name" >&2; continue;; esac',
  '  case "$name" in [0-9]*-[0-9]*-*_*) ;; *) printf \'isol8-skip\\tnot an output\\t%s\\0\' "$name" >&2; continue;; esac',
  '  case "$name" in *[!0-9A-Za-z.+_-]*) printf \'isol8-skip\\tnot an output\\t%s\\0\' "$name" >&2; continue;; esac',
  '  if [ -L "$name" ] || [ ! -f "$name" ]; then printf \'isol8-skip\\tnot a regular file\\t%s\\0\' "$name" >&2; continue; fi',
  "  count=$((count + 1))",
  '  if [ "$count" -gt "$max_count" ]; then printf \'isol8-omit\\ttoo-many\\t0\\t%s\\0\' "$name" >&2; continue; fi',
  '  size=$(stat -c %s -- "$name" 2>/dev/null) || continue',
  '  if [ "$size" -gt "$max_file" ]; then printf \'isol8-omit\\toutput-too-large\\t%s\\t%s\\0\' "$size" "$name" >&2; continue; fi',
  '  if [ $((total + size)) -gt "$max_total" ]; then printf \'isol8-omit\\ttotal-too-large\\t%s\\t%s\\0\' "$size" "$name" >&2; continue; fi',
  "  total=$((total + size))",
  '  printf \'isol8-send\\t%s\\t%s\\0\' "$size" "$name" >&2',
  '  set -- "$@" "$name"',
  "done",
  "status=0",
  '[ $# -eq 0 ] || tar -c -f - -- "$@" || status=$?',
  'cd / && rm -rf -- "$reading"',
  "exit $status",
].join("\n");

/** `<20-digit ns>-<pid>-<type>_<subtype>`: the mime type's two halves. */
const OUTPUT_NAME = /^\d{1,20}-\d{1,10}-([A-Za-z0-9.+-]{1,100})_([A-Za-z0-9.+-]{1,100})(?<!\.part)$/;

/** Types whose data is bytes, sent as base64: images, but SVG (XML text). */
export function isBinaryType(type: string): boolean {
  return type.startsWith("image/") && type !== "image/svg+xml";
}

function typeOf(name: string): string | undefined {
  const match = OUTPUT_NAME.exec(name);
  return match ? `${match[1]!.toLowerCase()}/${match[2]!.toLowerCase()}` : undefined;
}

export interface RichOutputsRead {
  outputs: RichOutput[];
  /** isol8's notes for the program's stderr: entries that are not outputs, a read that failed. */
  notes: string[];
}

type Entry = { name: string } & (
  { kind: "send"; size: number } | { kind: "omit"; reason: NonNullable<RichOutput["omitted"]>; size: number } | { kind: "skip"; reason: string }
);

function parseRecords(stderr: string): Entry[] {
  const entries: Entry[] = [];
  for (const record of stderr.split("\0").slice(0, -1)) {
    // Anything before a record's tag (a stray message of a tool) is not part of it.
    const fields = record.replace(/^[^]*?(?=isol8-(omit|send|skip)\t)/, "").split("\t");
    if (fields[0] === "isol8-send" && fields.length >= 3) entries.push({ kind: "send", size: Number(fields[1]), name: fields.slice(2).join("\t") });
    else if (fields[0] === "isol8-omit" && fields.length >= 4) {
      const reason = (["output-too-large", "total-too-large", "too-many"] as const).find((r) => r === fields[1]) ?? "output-too-large";
      entries.push({ kind: "omit", reason, size: Number(fields[2]), name: fields.slice(3).join("\t") });
    } else if (fields[0] === "isol8-skip" && fields.length >= 3) entries.push({ kind: "skip", reason: fields[1]!, name: fields.slice(2).join("\t") });
  }
  return entries;
}

/** A name as a note shows it: printable, bounded. */
const shown = (name: string) => JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name);

/** Runs one command in the sandbox as its user: argv, raw output (with back-pressure), an abort. */
export type SandboxCommand = (options: Pick<ExecOptions, "argv" | "onOutput" | "signal">) => Promise<ExecOutcome>;

/** An empty payload: the launcher unpacks nothing before the read-back's script. */
let emptyPayload: Promise<Buffer> | undefined;

/** The path every image has its tools on (the launcher passes only the env it is given). */
const TOOLS_ENV = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C" };

/**
 * The read-back's command through the sandbox's own launcher: on the executor it is one more
 * round trip on the connection the program used (a few ms), where a Docker exec costs tens.
 */
export function launcherCommand(launcher: ProcessLauncher, containerId: string): SandboxCommand {
  return async ({ argv, onOutput, signal }) => {
    const payload = await (emptyPayload ??= packTar([]));
    const outcome = await launcher.run(containerId, { argv, env: TOOLS_ENV, payload, onOutput: onOutput ?? (() => undefined), signal });
    return { exitCode: outcome.exitCode };
  };
}

/**
 * Reads an execution's rich outputs back from `dir` (the runtime's RICH_OUTPUTS_ENV), within the
 * bounds, and removes them. Never throws: what cannot be read becomes a note.
 */
export async function readRichOutputs(
  command: SandboxCommand,
  dir: string,
  bounds: RichOutputLimits,
  deadlineMs = FILE_READ_DEADLINE_MS,
): Promise<RichOutputsRead> {
  const limits = { maxOutputBytes: bounds.maxOutputFileSize, maxTotalBytes: bounds.maxOutputFilesSize, deadlineMs };
  const argv = [
    "sh",
    "-c",
    READ_RICH_OUTPUTS_SCRIPT,
    "isol8-outputs",
    dir,
    String(limits.maxOutputBytes),
    String(limits.maxTotalBytes),
    String(MAX_RICH_OUTPUTS),
    String(MAX_LISTED),
  ];
  // readTarFromContainer needs only a driver's exec: here the launcher's run stands in for it.
  const driver: Pick<SandboxDriver, "exec"> = { exec: (_containerId: string, options: ExecOptions) => command(options) };
  let read;
  try {
    // The tar's own bytes for up to MAX_RICH_OUTPUTS files come on top of the content's bound.
    read = await readTarFromContainer(driver, "", "", argv, {
      maxFileBytes: limits.maxOutputBytes,
      maxTotalBytes: limits.maxTotalBytes + MAX_RICH_OUTPUTS * TAR_BYTES_PER_FILE,
      deadlineMs: limits.deadlineMs,
    });
  } catch (error) {
    return { outputs: [], notes: [`[isol8] the rich outputs (display) could not be read back: ${error instanceof Error ? error.message : String(error)}\n`] };
  }
  const outputs: RichOutput[] = [];
  const notes: string[] = [];
  const grown = new Map(read.omitted.map((entry) => [entry.path.replace(/^\/+/, ""), entry]));
  const skipped: string[] = [];
  for (const entry of parseRecords(read.stderr.toString())) {
    if (entry.kind === "skip") {
      skipped.push(`${shown(entry.name)} (${entry.reason})`);
      continue;
    }
    const type = typeOf(entry.name);
    if (!type) continue; // the script checked the shape: never reached
    if (entry.kind === "omit") {
      const limitBytes = entry.reason === "output-too-large" ? limits.maxOutputBytes : entry.reason === "total-too-large" ? limits.maxTotalBytes : undefined;
      outputs.push({ type, data: "", truncated: true, omitted: entry.reason, sizeBytes: entry.size, ...(limitBytes !== undefined && { limitBytes }) });
      continue;
    }
    const content = read.files.get(`/${entry.name}`);
    if (!content) {
      const past = grown.get(entry.name);
      const reason = past?.reason === "file-too-large" ? "output-too-large" : past?.reason === "total-too-large" ? "total-too-large" : "read-abandoned";
      outputs.push({ type, data: "", truncated: true, omitted: reason, sizeBytes: past?.sizeBytes ?? entry.size });
      continue;
    }
    outputs.push({ type, data: isBinaryType(type) ? content.toString("base64") : content.toString("utf8") });
  }
  if (skipped.length) {
    const list = skipped.slice(0, 5).join(", ") + (skipped.length > 5 ? ` and ${skipped.length - 5} more` : "");
    notes.push(
      `[isol8] ignored ${skipped.length === 1 ? "an entry" : `${skipped.length} entries`} of ${dir} that ${skipped.length === 1 ? "is" : "are"} not a rich output: ${list}\n`,
    );
  }
  if (read.abandoned) notes.push(`[isol8] reading the rich outputs back was cut short (a bound or the ${limits.deadlineMs} ms deadline)\n`);
  return { outputs, notes };
}
