import { createHash } from "node:crypto";
import type { RuntimeDefinition } from "../runtime.js";

/**
 * The base every runtime image starts from: Debian bookworm with the sandbox user.
 * Changing anything here changes every image's tag, so `isol8 setup` rebuilds them.
 */
export const BASE_RECIPE = {
  suite: "bookworm",
  /** Pulled when a registry answers; otherwise the same suite is built with debootstrap. */
  pullImage: "debian:bookworm-slim",
  /** Packages every image has on top of Debian's minimal set. */
  packages: ["ca-certificates", "time"],
  /** The unprivileged user code runs as (uid and gid). */
  sandboxUid: 1000,
  /** Version of this recipe's layer (bump on any change to the base layer). */
  version: "2",
} as const;

/** The user and group ids code runs as. Pool wipes and kills run as this user too. */
export const SANDBOX_USER = `${BASE_RECIPE.sandboxUid}:${BASE_RECIPE.sandboxUid}`;
/** The container's main process runs as nobody, so the sandbox user can never signal it. */
export const CONTAINER_MAIN_USER = "65534:65534";

export const IMAGE_LABELS = {
  managed: "isol8.managed",
  runtime: "isol8.runtime",
  recipeHash: "isol8.recipe-hash",
} as const;

function shortHash(...parts: string[]): string {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part).update("\0");
  return hash.digest("hex").slice(0, 12);
}

export function baseImageTag(): string {
  return `isol8/base:${shortHash(JSON.stringify(BASE_RECIPE))}`;
}

/** The tag a runtime's image gets: a hash of its recipe and the base, so an unchanged recipe is never rebuilt. */
export function runtimeImageTag(runtime: RuntimeDefinition): string {
  return `isol8/${runtime.name}:${runtimeRecipeHash(runtime)}`;
}

export function runtimeRecipeHash(runtime: RuntimeDefinition): string {
  return shortHash(baseImageTag(), runtime.name, runtime.image.dockerfile, runtime.image.version);
}
