import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { EXECUTOR_LABEL, EXECUTOR_PROTOCOL_VERSION } from "../engine/executor-protocol.js";
import { ImageBuildError } from "@isol8/kit";
import type { RuntimeDefinition } from "@isol8/kit";

/**
 * The base every runtime image starts from: Debian bookworm with the sandbox user.
 * Changing anything here changes every image's tag, so `isol8 setup` rebuilds them.
 */
export const BASE_RECIPE = {
  suite: "bookworm",
  /** Pulled when a registry answers; otherwise the same suite is built with debootstrap. */
  pullImage: "debian:bookworm-slim",
  /** Packages every image has on top of Debian's minimal set (procps: ps, kill, top, as programs expect). */
  packages: ["ca-certificates", "time", "procps"],
  /** Version of this recipe's layer (bump on any change to the base layer). */
  version: "6",
  /** Compiled in a builder stage and copied in; its source's hash is part of the base tag. */
  executor: { protocol: EXECUTOR_PROTOCOL_VERSION, builderPackages: ["gcc", "libc6-dev"] },
} as const;

/**
 * The last layer of every runtime image: /etc/passwd and /etc/group become links into the
 * container's /run/isol8 tmpfs, where the executor writes the image's own entries plus "sandbox"
 * with the container's uid (the root filesystem stays read-only). After the runtime's recipe, so
 * its package installs still find the real files.
 */
export const RUNTIME_IMAGE_TAIL = [
  "RUN mkdir -p /usr/lib/isol8 /run/isol8 && cp /etc/passwd /etc/group /usr/lib/isol8/ \\",
  "    && ln -sf /run/isol8/passwd /etc/passwd && ln -sf /run/isol8/group /etc/group",
  "",
].join("\n");
/** On the exec path the container's main process runs as nobody, so the sandbox user can never signal it. */
export const CONTAINER_MAIN_USER = "65534:65534";

export const IMAGE_LABELS = {
  managed: "isol8.managed",
  runtime: "isol8.runtime",
  recipeHash: "isol8.recipe-hash",
  /** The executor's protocol version: the engine uses the executor for images that carry it. */
  executor: EXECUTOR_LABEL,
} as const;

export const EXECUTOR_SOURCE_FILE = "isol8-executor.c";

/**
 * SHA-256 of executor/isol8-executor.c. Part of the base tag, so a change to the executor
 * rebuilds every image. Kept here rather than read at run time so that an app bundling isol8
 * (no package folder next to it) computes the same tags. `isol8 setup` refuses to build when
 * the file's hash differs, and a unit test checks it: after editing the C source, update this.
 */
export const EXECUTOR_SOURCE_SHA256 = "deb9db0a84ba72db49049d8cce5ca345a2a48f80d17758f5dd7b2496c56ed8fd";

/**
 * The executor's C source as shipped in the package (packages/core/executor), found by walking
 * up from this module: src/images/ when run from source, dist/ when built (package "files").
 */
export function findExecutorSource(): { path: string; sha256: string } | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const path = join(dir, "executor", EXECUTOR_SOURCE_FILE);
    if (existsSync(path)) return { path, sha256: createHash("sha256").update(readFileSync(path)).digest("hex") };
    dir = dirname(dir);
  }
  return undefined;
}

/** The source the image build compiles: it must be the one the tags were computed from. */
export function executorSourceForBuild(): string {
  const source = findExecutorSource();
  if (!source) {
    throw new ImageBuildError(
      `isol8's executor source (executor/${EXECUTOR_SOURCE_FILE}) is missing from the @isol8/core package near ${fileURLToPath(import.meta.url)}; reinstall @isol8/core.`,
    );
  }
  if (source.sha256 !== EXECUTOR_SOURCE_SHA256) {
    throw new ImageBuildError(
      `${source.path} has SHA-256 ${source.sha256}, but the image tags are computed from ${EXECUTOR_SOURCE_SHA256}: ` +
        `after changing the executor, set EXECUTOR_SOURCE_SHA256 in packages/core/src/images/tags.ts to the new hash.`,
    );
  }
  return source.path;
}

function shortHash(...parts: string[]): string {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part).update("\0");
  return hash.digest("hex").slice(0, 12);
}

/** The base tag: a hash of the recipe and of the executor's source, so a change to either rebuilds. */
export function baseImageTag(): string {
  return `isol8/base:${shortHash(JSON.stringify(BASE_RECIPE), EXECUTOR_SOURCE_SHA256)}`;
}

/** The tag a runtime's image gets: a hash of its recipe and the base, so an unchanged recipe is never rebuilt. */
export function runtimeImageTag(runtime: RuntimeDefinition): string {
  return `isol8/${runtime.name}:${runtimeRecipeHash(runtime)}`;
}

export function runtimeRecipeHash(runtime: RuntimeDefinition): string {
  return shortHash(baseImageTag(), runtime.name, runtime.image.dockerfile, runtime.image.version, RUNTIME_IMAGE_TAIL);
}
