import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, mkdtemp, readdir, rename, rm, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join, resolve, sep } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import * as tar from "tar-stream";
import { ImageBuildError } from "@isol8/kit";

/** Where unpacked npm packages are kept between `isol8 setup` runs. */
export function npmCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "isol8", "npm");
}

export interface NpmPackageFileOptions {
  progress?: (message: string) => void;
  /** Defaults to npmCacheDir(). */
  cacheDir?: string;
}

/**
 * Fetches an npm package with the host's own `npm` (so its registry, proxy and CA settings
 * apply: containers may not reach the registry at all) and returns the absolute path of
 * `file` inside the unpacked package. Unpacked packages are cached by spec, so pin versions:
 * a range would stay at whatever it first resolved to.
 */
export async function npmPackageFile(spec: string, file: string, options: NpmPackageFileOptions = {}): Promise<string> {
  const cacheDir = options.cacheDir ?? npmCacheDir();
  const packageDir = join(cacheDir, cacheKey(spec));
  const target = resolve(packageDir, "package", file);
  if (!target.startsWith(join(packageDir, "package") + sep)) {
    throw new ImageBuildError(`npmPackageFile(${JSON.stringify(spec)}, ${JSON.stringify(file)}): the file must be inside the package.`);
  }
  if (!(await isFile(target))) {
    await fetchPackage(spec, packageDir, cacheDir, options.progress ?? (() => {}));
    if (!(await isFile(target))) {
      throw new ImageBuildError(`npm package ${spec} has no file ${file} (unpacked in ${join(packageDir, "package")}).`);
    }
  }
  return target;
}

function cacheKey(spec: string): string {
  // Readable for humans, plus a hash so "a/b" and "a_b" never share a directory.
  const readable = spec.replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 80);
  return `${readable}-${createHash("sha256").update(spec).digest("hex").slice(0, 8)}`;
}

async function fetchPackage(spec: string, packageDir: string, cacheDir: string, progress: (message: string) => void): Promise<void> {
  await mkdir(cacheDir, { recursive: true });
  // Work in a temp dir inside the cache and rename at the end, so an interrupted download
  // never leaves a half-unpacked package that later runs would trust.
  const work = await mkdtemp(join(cacheDir, ".tmp-"));
  try {
    progress(`Downloading ${spec} with npm`);
    await runNpmPack(spec, work);
    const tarball = (await readdir(work)).find((name) => name.endsWith(".tgz"));
    if (!tarball) throw new ImageBuildError(`npm pack ${spec} produced no tarball.`);
    progress(`Unpacking ${tarball}`);
    const unpacked = join(work, "unpacked");
    await unpackTarball(join(work, tarball), unpacked);
    await rename(unpacked, packageDir).catch(async (error: NodeJS.ErrnoException) => {
      // Another process finished the same package first: theirs is as good as ours.
      if (error.code !== "ENOTEMPTY" && error.code !== "EEXIST") throw error;
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function runNpmPack(spec: string, destination: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    // cwd is the scratch dir so a project's package.json or workspace never changes what npm
    // does; the user's and global npmrc (registry, proxy, cafile) still apply.
    execFile(
      "npm",
      ["pack", spec, "--pack-destination", destination, "--ignore-scripts", "--loglevel=error"],
      { cwd: destination, maxBuffer: 16 * 1024 * 1024 },
      (error, _stdout, stderr) => {
        if (!error) return resolvePromise();
        if ((error as NodeJS.ErrnoException).code === "ENOENT") {
          reject(
            new ImageBuildError(`Fetching ${spec} needs npm on this host, and none was found on PATH. Install Node.js with npm, then rerun 'isol8 setup'.`, {
              cause: error,
            }),
          );
          return;
        }
        const tail = String(stderr).trim().split("\n").slice(-15).join("\n");
        reject(new ImageBuildError(`'npm pack ${spec}' failed (check the registry, proxy and cafile settings of the host's npm):\n${tail}`, { cause: error }));
      },
    );
  });
}

/** Unpacks regular files and directories; npm tarballs of binaries need nothing else. */
async function unpackTarball(tarball: string, into: string): Promise<void> {
  const root = resolve(into);
  const extract = tar.extract();
  const reading = pipeline(createReadStream(tarball), createGunzip(), extract);
  for await (const entry of extract) {
    const target = resolve(root, entry.header.name);
    const inside = target.startsWith(root + sep);
    if (inside && entry.header.type === "file") {
      await mkdir(dirname(target), { recursive: true });
      await pipeline(entry, createWriteStream(target, { mode: (entry.header.mode ?? 0o644) & 0o777 }));
    } else {
      if (inside && entry.header.type === "directory") await mkdir(target, { recursive: true });
      entry.resume();
    }
  }
  await reading;
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
}
