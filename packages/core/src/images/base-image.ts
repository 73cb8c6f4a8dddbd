import { spawn } from "node:child_process";
import { constants } from "node:fs";
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import type { DockerDriver } from "../docker/driver.js";
import { ImageBuildError } from "@isol8/kit";
import { dockerBuild } from "./docker-build.js";
import type { ProgressListener } from "./progress.js";
import { EXECUTOR_PATH } from "../engine/executor-protocol.js";
import { BASE_RECIPE, EXECUTOR_SOURCE_FILE, IMAGE_LABELS, baseImageTag, executorSourceForBuild } from "./tags.js";

const DEFAULT_MIRROR = "http://deb.debian.org/debian";

export interface EnsureBaseImageOptions {
  /** Rebuild even when the base tag exists. */
  force?: boolean;
  onProgress?: ProgressListener;
  /** Debian mirror for debootstrap (plain HTTP works where HTTPS is intercepted). */
  mirror?: string;
  /** Give up on `docker pull` after this long without any progress (default 20 s). */
  pullIdleTimeoutMs?: number;
}

export interface BaseImageReport {
  image: string;
  status: "built" | "up-to-date";
  /** Where Debian came from when built: a registry pull or a local debootstrap. */
  source?: "pull" | "debootstrap";
  durationMs: number;
}

/**
 * Makes sure the base image (Debian bookworm + the sandbox user + isol8's executor) exists.
 * Debian comes from a registry when one answers, otherwise from debootstrap against Debian's
 * mirror, so `isol8 setup` works on machines that reach no container registry. The executor
 * (packages/core/executor) is compiled from its C source in a builder stage of the same Debian
 * with Debian's gcc, and only the binary is copied into the base; the image is labelled with
 * its protocol version (`isol8.executor`), which runtime images inherit.
 */
export async function ensureBaseImage(driver: DockerDriver, options: EnsureBaseImageOptions = {}): Promise<BaseImageReport> {
  const started = performance.now();
  const emit = options.onProgress ?? (() => {});
  const status = (message: string) => emit({ target: "base", kind: "status", message });
  const image = baseImageTag();
  if (!options.force && (await driver.imageExists(image))) {
    return { image, status: "up-to-date", durationMs: performance.now() - started };
  }

  // Checked first: the executor's source must be the one the tag was computed from.
  const executorSource = executorSourceForBuild();
  let from: string = BASE_RECIPE.pullImage;
  let source: BaseImageReport["source"] = "pull";
  let imported: string | undefined;
  if (!(await driver.imageExists(from)) && !(await tryPull(driver, from, options.pullIdleTimeoutMs ?? 20_000, status))) {
    imported = await debootstrapImage(driver, options.mirror ?? DEFAULT_MIRROR, emit);
    from = imported;
    source = "debootstrap";
  }

  try {
    status(`Building ${image} from ${from}`);
    const executor = BASE_RECIPE.executor;
    await dockerBuild(driver, {
      target: "base",
      tags: [image],
      labels: { [IMAGE_LABELS.managed]: "true", [IMAGE_LABELS.executor]: String(executor.protocol) },
      nocache: options.force,
      onProgress: options.onProgress,
      // The executor's C source, from this package (never a prebuilt binary).
      files: { [EXECUTOR_SOURCE_FILE]: { path: executorSource, mode: 0o644 } },
      dockerfile: [
        // Builder stage: the same Debian with Debian's compiler; only the binary leaves it.
        `FROM ${from} AS executor-build`,
        "ARG DEBIAN_FRONTEND=noninteractive",
        `RUN apt-get update && apt-get install -y --no-install-recommends ${executor.builderPackages.join(" ")} \\`,
        "    && rm -rf /var/lib/apt/lists/*",
        `COPY ${EXECUTOR_SOURCE_FILE} /src/${EXECUTOR_SOURCE_FILE}`,
        `RUN gcc -std=c11 -O2 -Wall -Wextra -Werror -static \\`,
        `    -o /src/isol8-executor /src/${EXECUTOR_SOURCE_FILE}`,
        "",
        `FROM ${from}`,
        // An ARG, not ENV: apt needs it while building, programs must not inherit it.
        "ARG DEBIAN_FRONTEND=noninteractive",
        `RUN apt-get update && apt-get install -y --no-install-recommends ${BASE_RECIPE.packages.join(" ")} \\`,
        "    && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin",
        // No sandbox user here: each container has its own uid (the executor names it "sandbox"
        // in /run/isol8, see RUNTIME_IMAGE_TAIL). 0700 as the tmpfs's mode option says: Docker
        // gives the tmpfs this directory's mode (what the pool's wipe restores and checks); the
        // tmpfs's uid option gives it the container's sandbox uid.
        "RUN mkdir -p /sandbox && chmod 700 /sandbox",
        `COPY --from=executor-build /src/isol8-executor ${EXECUTOR_PATH}`,
        "ENV HOME=/sandbox",
        "WORKDIR /sandbox",
        'CMD ["bash"]',
        "",
      ].join("\n"),
    });
  } finally {
    // The imported rootfs lives on as the base's parent layer; only its tag goes.
    if (imported)
      await driver.docker
        .getImage(imported)
        .remove({ noprune: true })
        .catch(() => {});
  }
  const durationMs = performance.now() - started;
  status(`Built ${image} in ${(durationMs / 1000).toFixed(1)} s`);
  return { image, status: "built", source, durationMs };
}

/** Pulls `image`; false (never a throw) when no registry answers within the idle bound. */
async function tryPull(driver: DockerDriver, image: string, idleMs: number, status: (m: string) => void): Promise<boolean> {
  status(`Pulling ${image}`);
  const abort = new AbortController();
  let timer = setTimeout(() => abort.abort(), idleMs);
  // Idle, not total: a slow but progressing download is fine; an unreachable registry is not.
  const touch = () => {
    clearTimeout(timer);
    timer = setTimeout(() => abort.abort(), idleMs);
  };
  try {
    const stream = (await driver.docker.pull(image, { abortSignal: abort.signal })) as Readable;
    for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
      touch();
      const message = JSON.parse(line || "{}") as { error?: string };
      if (message.error) throw new Error(message.error);
    }
    if (!(await driver.imageExists(image))) throw new Error("the pull ended without the image");
    return true;
  } catch (error) {
    const reason = abort.signal.aborted ? `no answer within ${Math.round(idleMs / 1000)} s` : (error as Error).message.trim();
    status(`Pulling ${image} failed (${reason}); building it with debootstrap instead`);
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** Builds a minimal Debian rootfs with debootstrap and imports it; returns the imported tag. */
async function debootstrapImage(driver: DockerDriver, mirror: string, emit: ProgressListener): Promise<string> {
  const status = (message: string) => emit({ target: "base", kind: "status", message });
  const log = (message: string) => emit({ target: "base", kind: "log", message });
  const isRoot = process.getuid?.() === 0;
  let debootstrap = await findExecutable("debootstrap");
  if (!debootstrap && isRoot && (await findExecutable("apt-get"))) {
    status("Installing debootstrap with apt-get");
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    const install = ["install", "-y", "--no-install-recommends", "debootstrap"];
    // A fresh machine may have no package lists yet: update only when the first try fails.
    if ((await run("apt-get", install, log, env)) !== 0) {
      await run("apt-get", ["update"], log, env);
      await run("apt-get", install, log, env);
    }
    debootstrap = await findExecutable("debootstrap");
  }
  const noRegistry = `No container registry answered for ${BASE_RECIPE.pullImage}, so isol8 builds Debian ${BASE_RECIPE.suite} itself with debootstrap`;
  if (!debootstrap) {
    throw new ImageBuildError(
      `${noRegistry}, and debootstrap is not installed. Install it ('sudo apt-get install debootstrap') and run 'isol8 setup' as root, ` +
        `or make ${BASE_RECIPE.pullImage} available ('docker pull' or 'docker load').`,
    );
  }
  if (!isRoot) {
    throw new ImageBuildError(
      `${noRegistry}, which needs root. Run 'sudo isol8 setup' once, or make ${BASE_RECIPE.pullImage} available ('docker pull' or 'docker load').`,
    );
  }

  // Not /tmp: it is often a small tmpfs or noexec, and debootstrap runs programs inside the rootfs.
  const scratch = (await access("/var/tmp", constants.W_OK).then(
    () => true,
    () => false,
  ))
    ? "/var/tmp"
    : tmpdir();
  const rootfs = await mkdtemp(join(scratch, "isol8-rootfs-"));
  try {
    status(`Running debootstrap ${BASE_RECIPE.suite} from ${mirror} (about a minute)`);
    const code = await run(debootstrap, ["--variant=minbase", BASE_RECIPE.suite, rootfs, mirror], log);
    if (code !== 0) throw new ImageBuildError(`debootstrap ${BASE_RECIPE.suite} ${mirror} failed with exit code ${code}; see the lines above.`);
    await tidyRootfs(rootfs, mirror);

    const tag = `isol8/rootfs:${baseImageTag().split(":")[1]}`;
    status(`Importing the rootfs as ${tag}`);
    await importRootfs(driver, rootfs, tag);
    return tag;
  } finally {
    await removeRootfs(rootfs);
  }
}

/**
 * Makes the debootstrap rootfs behave like Debian's official slim image: updates and security
 * in apt's sources, and apt/dpkg configured to keep no package caches, indexes of other
 * languages, docs, man pages or locales (without this, the python3 layer carried 86 MB of apt
 * caches).
 */
async function tidyRootfs(rootfs: string, mirror: string): Promise<void> {
  const suite = BASE_RECIPE.suite;
  const sources = [`deb ${mirror} ${suite} main`, `deb ${mirror} ${suite}-updates main`];
  // The security archive lives beside the default mirror; a custom mirror may not carry it.
  if (mirror === DEFAULT_MIRROR) sources.push(`deb http://deb.debian.org/debian-security ${suite}-security main`);
  const clean = "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true";
  const files: Record<string, string[]> = {
    "etc/apt/sources.list": sources,
    "etc/apt/apt.conf.d/docker-clean": [
      `DPkg::Post-Invoke { "${clean}"; };`,
      `APT::Update::Post-Invoke { "${clean}"; };`,
      'Dir::Cache::pkgcache "";',
      'Dir::Cache::srcpkgcache "";',
    ],
    "etc/apt/apt.conf.d/docker-no-languages": ['Acquire::Languages "none";'],
    "etc/apt/apt.conf.d/docker-gzip-indexes": ['Acquire::GzipIndexes "true";', 'Acquire::CompressionTypes::Order:: "gz";'],
    "etc/dpkg/dpkg.cfg.d/docker": [
      "path-exclude /usr/share/doc/*",
      "path-include /usr/share/doc/*/copyright",
      ...["man", "groff", "info", "lintian", "linda", "locale"].map((dir) => `path-exclude /usr/share/${dir}/*`),
    ],
  };
  for (const [path, lines] of Object.entries(files)) {
    await mkdir(join(rootfs, path, ".."), { recursive: true });
    await writeFile(join(rootfs, path), lines.join("\n") + "\n");
  }
  // What the dpkg excludes keep out of later installs, removed from the packages already there.
  await run("find", [join(rootfs, "usr/share/doc"), "-mindepth", "1", "-not", "-name", "copyright", "-not", "-type", "d", "-delete"], () => {});
  for (const dir of [
    "usr/share/man",
    "usr/share/groff",
    "usr/share/info",
    "usr/share/lintian",
    "usr/share/locale",
    "var/cache/apt",
    "var/lib/apt/lists",
    "var/log",
  ]) {
    await rm(join(rootfs, dir), { recursive: true, force: true });
  }
  for (const dir of ["usr/share/man", "usr/share/locale", "var/cache/apt/archives/partial", "var/lib/apt/lists/partial", "var/log/apt"]) {
    await mkdir(join(rootfs, dir), { recursive: true });
  }
}

async function importRootfs(driver: DockerDriver, rootfs: string, tag: string): Promise<void> {
  // Docker provides /dev, /proc and /sys at run time; device nodes in the tar only get in the way.
  const tar = spawn("tar", ["-C", rootfs, "--numeric-owner", "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*", "-c", "."], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  tar.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number>((resolve) => tar.once("close", (code) => resolve(code ?? 1)));
  const [repo, version] = tag.split(":");
  try {
    const stream = (await driver.docker.importImage(tar.stdout as unknown as NodeJS.ReadableStream, { repo, tag: version })) as Readable;
    for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
      const message = JSON.parse(line || "{}") as { error?: string };
      if (message.error) throw new ImageBuildError(`Importing the debootstrap rootfs failed: ${message.error}`);
    }
    const code = await exited;
    if (code !== 0) throw new ImageBuildError(`tar of the debootstrap rootfs failed (exit ${code}): ${stderr.trim()}`);
  } finally {
    // A failed import leaves tar blocked on a pipe nobody reads.
    if (tar.exitCode === null) tar.kill();
  }
}

/** debootstrap mounts /proc and /sys inside the rootfs; a failed run may leave them mounted. */
async function removeRootfs(rootfs: string): Promise<void> {
  const mounts = await readFile("/proc/mounts", "utf8").catch(() => "");
  const inside = mounts
    .split("\n")
    .map((line) => line.split(" ")[1] ?? "")
    .filter((point) => point.startsWith(rootfs + "/"))
    .sort((a, b) => b.length - a.length);
  for (const point of inside) await run("umount", ["-l", point], () => {});
  await rm(rootfs, { recursive: true, force: true });
}

function run(command: string, args: string[], onLine: (line: string) => void, env?: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], env });
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream, crlfDelay: Infinity }).on("line", (line) => line.trim() && onLine(line));
    }
    child.once("error", (error) => {
      onLine(`${command}: ${error.message}`);
      resolve(127);
    });
    child.once("close", (code) => resolve(code ?? 1));
  });
}

/** Like `which`, but also looks in the sbin directories a non-root PATH often lacks. */
async function findExecutable(name: string): Promise<string | undefined> {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/sbin", "/usr/bin", "/bin"];
  for (const dir of dirs.filter(Boolean)) {
    const candidate = join(dir, name);
    if (
      await access(candidate, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return candidate;
  }
  return undefined;
}
