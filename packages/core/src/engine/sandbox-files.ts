import { posix } from "node:path";
import * as tar from "modern-tar";
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

/**
 * Packs entries into a tar archive whose names are relative to "/" (extracted with `tar -x -C /`):
 * plain ustar regular files (a PAX header only for a name ustar cannot hold), as GNU tar expects.
 */
export async function packTar(entries: readonly TarEntry[]): Promise<Buffer> {
  const mtime = new Date();
  const archive = await tar.packTar(
    entries.map((entry) => {
      const body = typeof entry.content === "string" ? Buffer.from(entry.content) : entry.content;
      return { header: { name: entry.path.replace(/^\/+/, ""), type: "file" as const, mode: entry.mode ?? 0o644, size: body.byteLength, mtime }, body };
    }),
  );
  return Buffer.from(archive.buffer, archive.byteOffset, archive.byteLength);
}

/** Reads the regular files of a tar archive into a map of absolute path → content. Links and devices are skipped. */
export async function unpackTar(archive: Buffer): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const entry of await tar.unpackTar(archive, { strict: true })) {
    if (entry.header.type === "file" && entry.data)
      files.set(`/${entry.header.name.replace(/^\/+/, "")}`, Buffer.from(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength));
  }
  return files;
}
