import { createTarDecoder } from "modern-tar";
import type { SandboxDriver } from "@isol8/kit";
import type { OmittedFile } from "@isol8/kit";

/** Bounds on files read back from a sandbox (engine options maxOutputFileSize, maxOutputFilesSize). */
export interface FileReadLimits {
  maxFileBytes: number;
  maxTotalBytes: number;
  /** The read is abandoned after this long (a stuck or slow stream never holds the result). */
  deadlineMs: number;
}

/** How long reading files back may take, whatever their size within the bounds. */
export const FILE_READ_DEADLINE_MS = 30_000;

/** Tar's own bytes per file (header, padding, a long name's extended header), beyond the content. */
const TAR_OVERHEAD_PER_FILE = 10 * 1024;
/** The script's records on stderr (one per path asked for): more is not read. */
const MAX_RECORD_BYTES = 1024 * 1024;

/**
 * Sends back the outputPaths that are regular files whose real path is the path asked for (no
 * symbolic link planted by the program on the way) and fit the bounds, so a file past a bound
 * (e.g. a sparse file of 1 GiB that takes no space) never even leaves the container. Each path
 * gets a NUL-terminated record on stderr: `isol8-omit<TAB>reason<TAB>size<TAB>path` for a file
 * past a bound, `isol8-send<TAB>size<TAB>path` for a file in the tar on stdout.
 * Arguments: the per-file bound, the total bound, then the paths.
 */
const READ_OUTPUT_PATHS_SCRIPT = [
  "max_file=$1 max_total=$2 total=0",
  "shift 2",
  // `for` took the list at the start: each turn shifts one asked-for path off the front, and
  // appends it (relative to /) at the back when it is sent.
  "for p do",
  "  shift",
  '  real=$(realpath -e -- "$p" 2>/dev/null) || continue',
  '  [ "$real" = "$p" ] || continue',
  '  case "$real" in /sandbox/*|/tmp/*) ;; *) continue;; esac',
  '  [ -f "$p" ] || continue',
  '  size=$(stat -c %s -- "$p" 2>/dev/null) || continue',
  '  if [ "$size" -gt "$max_file" ]; then printf \'isol8-omit\\tfile-too-large\\t%s\\t%s\\0\' "$size" "$p" >&2; continue; fi',
  '  if [ $((total + size)) -gt "$max_total" ]; then printf \'isol8-omit\\ttotal-too-large\\t%s\\t%s\\0\' "$size" "$p" >&2; continue; fi',
  "  total=$((total + size))",
  '  printf \'isol8-send\\t%s\\t%s\\0\' "$size" "$p" >&2',
  '  set -- "$@" "${p#/}"',
  "done",
  "[ $# -gt 0 ] || exit 0",
  'exec tar -c -f - -C / -- "$@"',
].join("\n");

export interface OutputFiles {
  /** base64 content by absolute path. */
  files: Record<string, string>;
  /** Files not sent back, in the order they were asked for. */
  omitted: OmittedFile[];
}

/** Reads the outputPaths of an execution back, within the bounds (see READ_OUTPUT_PATHS_SCRIPT). */
export async function readOutputFiles(
  driver: SandboxDriver,
  containerId: string,
  user: string,
  paths: readonly string[],
  limits: FileReadLimits,
): Promise<OutputFiles> {
  const argv = ["sh", "-c", READ_OUTPUT_PATHS_SCRIPT, "isol8-output", String(limits.maxFileBytes), String(limits.maxTotalBytes), ...paths];
  const read = await readTarFromContainer(driver, containerId, user, argv, limits);
  const omitted = new Map(read.omitted.map((entry) => [entry.path, entry]));
  const sent = new Map<string, number>();
  for (const record of read.stderr.toString().split("\0").slice(0, -1)) {
    const fields = record.replace(/^[^]*?(?=isol8-(omit|send)\t)/, "").split("\t");
    if (fields[0] === "isol8-omit" && fields.length >= 4) {
      const reason = fields[1] === "total-too-large" ? "total-too-large" : "file-too-large";
      const path = fields.slice(3).join("\t");
      omitted.set(path, { path, sizeBytes: Number(fields[2]), limitBytes: reason === "file-too-large" ? limits.maxFileBytes : limits.maxTotalBytes, reason });
    } else if (fields[0] === "isol8-send" && fields.length >= 3) {
      sent.set(fields.slice(2).join("\t"), Number(fields[1]));
    }
  }
  const files: Record<string, string> = {};
  for (const [path, content] of read.files) files[path] = content.toString("base64");
  // Sent but never fully received: the read was abandoned (deadline, or a file grew past a bound).
  for (const [path, size] of sent) {
    if (!read.files.has(path) && !omitted.has(path)) omitted.set(path, { path, sizeBytes: size, reason: "read-abandoned" });
  }
  const order = new Map(paths.map((path, i) => [path, i]));
  return { files, omitted: [...omitted.values()].sort((a, b) => (order.get(a.path) ?? 0) - (order.get(b.path) ?? 0)) };
}

export interface TarRead {
  /** Regular files received whole, by absolute path. */
  files: Map<string, Buffer>;
  /** Files the host refused while reading (a file that grew past a bound after the script's check). */
  omitted: OmittedFile[];
  /** The command's stderr (at most MAX_RECORD_BYTES). */
  stderr: Buffer;
  exitCode: number;
  /** true when the read was abandoned: a bound, the byte budget or the deadline. */
  abandoned: boolean;
}

/**
 * Runs a command whose stdout is a tar archive and parses it as it streams in, within the bounds:
 * a file's content is kept only when its header says it fits, the bytes taken from the stream are
 * counted against a budget, and a deadline ends the read. Nothing of unknown size is buffered.
 * The parse is strict (header checksums, a well-terminated archive): the archive is made in the
 * sandbox, from files its program wrote.
 */
/** `user` ("uid:gid") is the container's sandbox user: the reader sees only what the program could. */
export async function readTarFromContainer(
  driver: Pick<SandboxDriver, "exec">,
  containerId: string,
  user: string,
  argv: string[],
  limits: FileReadLimits,
): Promise<TarRead> {
  const files = new Map<string, Buffer>();
  const omitted: OmittedFile[] = [];
  const stderr: Buffer[] = [];
  let stderrBytes = 0;
  const abort = new AbortController();
  const decoder = createTarDecoder({ strict: true });
  const archive = decoder.writable.getWriter();
  const entries = decoder.readable.getReader();
  const abandoned = new Promise<void>((resolve) => abort.signal.addEventListener("abort", () => resolve(), { once: true }));
  const abandon = () => {
    if (abort.signal.aborted) return;
    abort.abort();
    // Unblocks a write waiting on the parse and ends the parse; the reasons are never read.
    archive.abort(abort.signal.reason).catch(() => undefined);
  };
  const budget = limits.maxTotalBytes + (argv.length + 2) * TAR_OVERHEAD_PER_FILE;
  let received = 0;
  let kept = 0;

  const parsed = (async () => {
    for (;;) {
      const { done, value: entry } = await entries.read();
      if (done) return;
      const { header, body } = entry;
      if (header.type !== "file") {
        await body.cancel();
        continue;
      }
      const path = `/${header.name.replace(/^\/+/, "")}`;
      const size = header.size;
      const past = size > limits.maxFileBytes ? ("file-too-large" as const) : kept + size > limits.maxTotalBytes ? ("total-too-large" as const) : undefined;
      if (past) {
        // Larger than the script saw (it grew since): stop here rather than drain it.
        omitted.push({ path, sizeBytes: size, limitBytes: past === "file-too-large" ? limits.maxFileBytes : limits.maxTotalBytes, reason: past });
        abandon();
        return;
      }
      kept += size;
      const parts: Uint8Array[] = [];
      const content = body.getReader();
      for (let part = await content.read(); !part.done; part = await content.read()) parts.push(part.value);
      files.set(path, Buffer.concat(parts));
    }
  })().catch((error: unknown) => {
    if (!abort.signal.aborted) throw error;
  });
  parsed.catch(() => undefined); // observed below

  const deadline = setTimeout(abandon, limits.deadlineMs);
  try {
    const { exitCode } = await driver.exec(containerId, {
      argv,
      user,
      signal: abort.signal,
      onOutput: (stream, chunk) => {
        if (abort.signal.aborted) return;
        if (stream === "stderr") {
          if (stderrBytes < MAX_RECORD_BYTES) stderr.push(chunk.subarray(0, MAX_RECORD_BYTES - stderrBytes));
          stderrBytes += chunk.length;
          return;
        }
        received += chunk.length;
        if (received > budget) return abandon();
        // A write that fails has failed the parse too: its error comes out of `parsed`.
        archive.write(chunk).catch(() => undefined);
        if ((archive.desiredSize ?? 0) > 0) return;
        return Promise.race([archive.ready.catch(() => undefined), abandoned]);
      },
    });
    if (!abort.signal.aborted) {
      // No output at all (nothing to send, or the command failed first) is no archive, not a truncated one.
      if (received === 0) await entries.cancel();
      // A close that fails (a truncated archive) fails the parse with the same error: `parsed` reports it.
      else await archive.close().catch(() => undefined);
      await parsed;
    }
    return { files, omitted, stderr: Buffer.concat(stderr), exitCode, abandoned: abort.signal.aborted };
  } finally {
    clearTimeout(deadline);
    archive.abort().catch(() => undefined);
  }
}
