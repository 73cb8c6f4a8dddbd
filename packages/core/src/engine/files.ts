import { FileOperationError, type SandboxDriver } from "@isol8/kit";
import { FILE_READ_DEADLINE_MS, readTarFromContainer } from "./output-files.js";
import { packTar } from "./sandbox-files.js";

/**
 * putFile/getFile scripts (isol8's own; the path is an argument, the content comes on stdin).
 * The program may have planted symbolic links: the real path must be the path asked for.
 */
const PATH_CHECK = [
  'real=$(realpath -m -- "$1") || exit 2',
  'case "$real" in /sandbox/*|/tmp/*) ;; *) echo "$1 resolves to $real, outside /sandbox and /tmp" >&2; exit 3;; esac',
  '[ "$real" = "$1" ] || { echo "$1 goes through a symbolic link (to $real): refused" >&2; exit 3; }',
].join("\n");
const PUT_FILE_SCRIPT = `${PATH_CHECK}\ntar -x -f - -C /`;
const GET_FILE_SCRIPT = [
  '[ -e "$1" ] || [ -L "$1" ] || { echo "$1: no such file" >&2; exit 2; }',
  PATH_CHECK,
  '[ -f "$1" ] || { echo "$1 is not a regular file" >&2; exit 4; }',
  // $2: maxOutputFileSize. A file past it is never sent (a sparse file takes no space, yet reads whole).
  'size=$(stat -c %s -- "$1") || exit 4',
  '[ "$size" -le "$2" ] || { echo "$1 is $size bytes, past maxOutputFileSize ($2 bytes)" >&2; exit 5; }',
  'tar -c -f - -C / -- "${1#/}"',
].join("\n");

/** Writes `content` at the resolved path `target` in the sandbox, as its user (binary-safe). */
export async function writeSandboxFile(
  driver: SandboxDriver,
  containerId: string,
  user: string,
  path: string,
  target: string,
  content: Buffer | string,
): Promise<void> {
  const payload = await packTar([{ path: target, content }]);
  let stderr = "";
  const { exitCode } = await driver.exec(containerId, {
    argv: ["sh", "-c", PUT_FILE_SCRIPT, "isol8-file", target],
    user,
    stdin: payload,
    onOutput: (stream, chunk) => void (stream === "stderr" && (stderr = (stderr + chunk.toString()).slice(-4096))),
  });
  if (exitCode !== 0) throw new FileOperationError(`putFile(${JSON.stringify(path)}): ${stderr.trim() || `failed (exit ${exitCode})`}`);
}

/** Reads the regular file at the resolved path `target`, byte-exact, bounded by `maxBytes` (maxOutputFileSize). */
export async function readSandboxFile(
  driver: SandboxDriver,
  containerId: string,
  user: string,
  path: string,
  target: string,
  maxBytes: number,
): Promise<Buffer> {
  // Bounded like outputPaths: checked in the container, and again as the tar streams in.
  const read = await readTarFromContainer(driver, containerId, user, ["sh", "-c", GET_FILE_SCRIPT, "isol8-file", target, String(maxBytes)], {
    maxFileBytes: maxBytes,
    maxTotalBytes: maxBytes,
    deadlineMs: FILE_READ_DEADLINE_MS,
  });
  const what = `getFile(${JSON.stringify(path)})`;
  if (read.omitted.length)
    throw new FileOperationError(`${what}: ${target} is ${read.omitted[0]!.sizeBytes} bytes, past maxOutputFileSize (${maxBytes} bytes)`);
  if (read.abandoned) throw new FileOperationError(`${what}: reading ${target} did not finish within ${FILE_READ_DEADLINE_MS} ms`);
  if (read.exitCode !== 0) throw new FileOperationError(`${what}: ${read.stderr.toString().trim().slice(-4096) || `failed (exit ${read.exitCode})`}`);
  const content = read.files.get(target);
  if (!content) throw new FileOperationError(`${what}: the file could not be read`);
  return content;
}
