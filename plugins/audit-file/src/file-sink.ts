import { lstat, mkdir, open, readdir, rename, unlink, type FileHandle } from "node:fs/promises";
import { extname, join } from "node:path";
import type { AuditRecord, AuditSink, Logger } from "@isol8/kit";

export interface FileAuditSinkOptions {
  /** Directory of the audit files; created (mode 0700) when missing. */
  dir: string;
  /** Name of the file being written, inside `dir`. */
  fileName: string;
  /** Rotate before a record would make the current file larger than this many bytes. */
  maxBytes: number;
  /** Rotate before writing to a file that was started at least this long ago. */
  maxAgeMs?: number;
  /** Rotated files kept; older ones are deleted after each rotation. */
  retain: number;
}

export interface FileAuditSinkDeps {
  /** Clock for age rotation and rotated names (tests inject one). */
  now?: () => number;
  log?: Logger;
}

/** File mode of every audit file: records carry code and output, so only the owner reads them. */
export const AUDIT_FILE_MODE = 0o600;
const AUDIT_DIR_MODE = 0o700;

/**
 * An audit sink that appends one JSON line per record to `dir/fileName`. Writes are serialized
 * (one at a time, in call order), so lines never interleave; a write resolves once its line is
 * in the file. Before a write, the file is rotated when the line would take it past `maxBytes`
 * or when it is older than `maxAgeMs`: it is renamed to `<stem>.<UTC time>[.<n>]<ext>`
 * (e.g. `audit.2025-01-31T12-00-00.000Z.jsonl`) and only the newest `retain` rotated files are
 * kept. Age is checked on write only: an idle file is rotated by the next record.
 *
 * One instance can serve several engines: `close()` flushes and closes the file, and a later
 * `write()` opens it again.
 */
export class FileAuditSink implements AuditSink {
  readonly #options: FileAuditSinkOptions;
  readonly #now: () => number;
  #log: Logger | undefined;
  #handle: FileHandle | undefined;
  #size = 0;
  /** When the current file was started (ms); kept across close() so a reopen keeps its age. */
  #startedAt: number | undefined;
  #tail: Promise<unknown> = Promise.resolve();

  constructor(options: FileAuditSinkOptions, deps: FileAuditSinkDeps = {}) {
    this.#options = options;
    this.#now = deps.now ?? Date.now;
    this.#log = deps.log;
  }

  /** Path of the file being written. */
  get path(): string {
    return join(this.#options.dir, this.#options.fileName);
  }

  /** The logger for faults that do not fail a write (retention); the engine's, once applied. */
  useLogger(log: Logger): void {
    this.#log ??= log;
  }

  write(record: AuditRecord): Promise<void> {
    // Serialize now: the record is a snapshot even if the caller mutates it later.
    const line = Buffer.from(`${JSON.stringify(record)}\n`);
    return this.#serial(() => this.#append(line));
  }

  /** Waits for every pending write and syncs the file to disk. */
  flush(): Promise<void> {
    return this.#serial(async () => {
      await this.#handle?.sync();
    });
  }

  /** Flushes, then closes the file (a later write reopens it). */
  close(): Promise<void> {
    return this.#serial(async () => {
      const handle = this.#handle;
      this.#handle = undefined;
      if (!handle) return;
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    });
  }

  /** Rotated files of this sink, oldest first. */
  async rotatedFiles(): Promise<string[]> {
    const names = await readdir(this.#options.dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return [] as string[];
      throw error;
    });
    return rotatedOldestFirst(names, this.#options.fileName).map((name) => join(this.#options.dir, name));
  }

  #serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(op);
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async #append(line: Buffer): Promise<void> {
    try {
      if (!this.#handle) await this.#open();
      if (this.#size > 0 && this.#shouldRotate(line.length)) {
        await this.#rotate();
        await this.#open();
      }
      await writeAll(this.#handle!, line);
      this.#size += line.length;
    } catch (error) {
      // Drop the handle: the next write starts again from open() (the directory may be back).
      const handle = this.#handle;
      this.#handle = undefined;
      await handle?.close().catch(() => undefined);
      throw error;
    }
  }

  #shouldRotate(nextLength: number): boolean {
    if (this.#size + nextLength > this.#options.maxBytes) return true;
    const { maxAgeMs } = this.#options;
    return maxAgeMs !== undefined && this.#startedAt !== undefined && this.#now() - this.#startedAt >= maxAgeMs;
  }

  async #open(): Promise<void> {
    await mkdir(this.#options.dir, { recursive: true, mode: AUDIT_DIR_MODE });
    const handle = await open(this.path, "a+", AUDIT_FILE_MODE);
    try {
      const stat = await handle.stat();
      // A file made by someone else (or before a umask change) is narrowed to the owner.
      if ((stat.mode & 0o777) !== AUDIT_FILE_MODE) {
        await handle
          .chmod(AUDIT_FILE_MODE)
          .catch((error) => this.#log?.warn("audit sink file: cannot narrow the file mode to 0600", { path: this.path, error: String(error) }));
      }
      if (stat.size === 0) this.#startedAt = this.#now();
      else this.#startedAt ??= stat.birthtimeMs > 0 ? stat.birthtimeMs : stat.mtimeMs;
      this.#size = stat.size;
      // A line cut short by a failed write (disk full) must not swallow the next record.
      if (stat.size > 0) {
        const last = Buffer.alloc(1);
        await handle.read(last, 0, 1, stat.size - 1);
        if (last[0] !== 0x0a) {
          await writeAll(handle, Buffer.from("\n"));
          this.#size += 1;
        }
      }
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
    this.#handle = handle;
  }

  async #rotate(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    if (handle) {
      await handle.sync().catch(() => undefined);
      await handle.close();
    }
    const target = await this.#freeRotatedName();
    await rename(this.path, target);
    this.#startedAt = undefined;
    this.#size = 0;
    await this.#prune().catch((error) =>
      this.#log?.warn("audit sink file: deleting old rotated files failed", { dir: this.#options.dir, error: String(error) }),
    );
  }

  async #freeRotatedName(): Promise<string> {
    const { stem, ext } = splitName(this.#options.fileName);
    const stamp = rotationStamp(this.#now());
    for (let n = 0; ; n++) {
      const candidate = join(this.#options.dir, `${stem}.${stamp}${n === 0 ? "" : `.${n}`}${ext}`);
      const taken = await lstat(candidate).then(
        () => true,
        (error: NodeJS.ErrnoException) => {
          if (error.code === "ENOENT") return false;
          throw error;
        },
      );
      if (!taken) return candidate;
    }
  }

  async #prune(): Promise<void> {
    const rotated = await this.rotatedFiles();
    const excess = rotated.length - this.#options.retain;
    for (const path of rotated.slice(0, Math.max(0, excess))) {
      await unlink(path).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== "ENOENT") throw error;
      });
    }
  }
}

async function writeAll(handle: FileHandle, data: Buffer): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    const { bytesWritten } = await handle.write(data, offset, data.length - offset);
    offset += bytesWritten;
  }
}

/** "audit.jsonl" → { stem: "audit", ext: ".jsonl" }; a name without an extension keeps ext "". */
export function splitName(fileName: string): { stem: string; ext: string } {
  const ext = extname(fileName);
  return { stem: ext ? fileName.slice(0, -ext.length) : fileName, ext };
}

/** UTC time as it appears in rotated names: ISO 8601 with ":" replaced by "-" (portable file names). */
export function rotationStamp(ms: number): string {
  return new Date(ms).toISOString().replace(/:/g, "-");
}

/** The rotated files of `fileName` among `names`, oldest first (by their time, then their counter). */
export function rotatedOldestFirst(names: readonly string[], fileName: string): string[] {
  const { stem, ext } = splitName(fileName);
  const pattern = new RegExp(`^${escapeRegExp(stem)}\\.(\\d{4}-\\d{2}-\\d{2}T\\d{2}-\\d{2}-\\d{2}\\.\\d{3}Z)(?:\\.(\\d+))?${escapeRegExp(ext)}$`);
  return names
    .map((name) => ({ name, match: pattern.exec(name) }))
    .filter((e): e is { name: string; match: RegExpExecArray } => e.match !== null)
    .sort((a, b) => compare(a.match[1]!, b.match[1]!) || Number(a.match[2] ?? 0) - Number(b.match[2] ?? 0))
    .map((e) => e.name);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
