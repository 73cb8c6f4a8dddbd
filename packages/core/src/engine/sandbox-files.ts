import { posix } from "node:path";
import { Readable } from "node:stream";
import * as tar from "tar-stream";
import { InvalidRequestError } from "@isol8/kit";
import { SANDBOX_DIR, WRITABLE_ROOTS } from "@isol8/kit";

/**
 * Resolves a user-given path to an absolute path inside /sandbox or /tmp. Relative paths are
 * taken from /sandbox. `..` segments and absolute paths elsewhere are refused, so a request can
 * never name a file outside the sandbox's writable trees.
 */
export function resolveSandboxPath(path: string, field: string): string {
  if (typeof path !== "string" || path.length === 0) throw new InvalidRequestError(`${field}: expected a non-empty path`);
  if (path.includes("\0")) throw new InvalidRequestError(`${field}: path ${JSON.stringify(path)} contains a NUL byte`);
  if (path.split("/").includes("..")) {
    throw new InvalidRequestError(`${field}: path ${JSON.stringify(path)} contains "..": paths must stay inside ${WRITABLE_ROOTS.join(" or ")}`);
  }
  const absolute = posix.normalize(path.startsWith("/") ? path : posix.join(SANDBOX_DIR, path)).replace(/\/+$/, "");
  const inside = WRITABLE_ROOTS.some((root) => absolute.startsWith(`${root}/`));
  if (!inside) {
    throw new InvalidRequestError(
      `${field}: path ${JSON.stringify(path)} is outside ${WRITABLE_ROOTS.join(" and ")}: files can only be written to and read from there`,
    );
  }
  return absolute;
}

export interface TarEntry {
  /** Absolute path inside the container. */
  path: string;
  content: Uint8Array | string;
  mode?: number;
}

/** Packs entries into a tar archive whose names are relative to "/" (extracted with `tar -x -C /`). */
export async function packTar(entries: readonly TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on("data", (chunk) => chunks.push(chunk as Buffer));
    pack.on("end", resolve);
    pack.on("error", reject);
  });
  for (const entry of entries) {
    const content =
      typeof entry.content === "string" ? Buffer.from(entry.content) : Buffer.from(entry.content.buffer, entry.content.byteOffset, entry.content.byteLength);
    pack.entry({ name: entry.path.replace(/^\/+/, ""), mode: entry.mode ?? 0o644, size: content.length, mtime: new Date() }, content);
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** Reads the regular files of a tar archive into a map of absolute path → content. Links and devices are skipped. */
export async function unpackTar(archive: Buffer): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const extract = tar.extract();
  await new Promise<void>((resolve, reject) => {
    extract.on("entry", (header, stream, next) => {
      const parts: Buffer[] = [];
      stream.on("data", (part) => parts.push(part as Buffer));
      stream.on("end", () => {
        if (header.type === "file") files.set(`/${header.name.replace(/^\/+/, "")}`, Buffer.concat(parts));
        next();
      });
      stream.resume();
    });
    extract.on("finish", resolve);
    extract.on("error", reject);
    Readable.from([archive]).pipe(extract);
  });
  return files;
}
