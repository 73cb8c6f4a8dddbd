import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import type { DockerDriver } from "../docker/driver.js";
import {
  ImageBuildError,
  InvalidOptionsError,
  type NamedRegistry,
  type RecipeFile,
  type ResolvedDerivedImage,
  type ResolvedEngineOptions,
  type RuntimeDefinition,
} from "@isol8/kit";
import { dockerBuild } from "./docker-build.js";
import type { ProgressListener } from "./progress.js";
import { IMAGE_LABELS, RUNTIME_IMAGE_TAIL, runtimeImageTag } from "./tags.js";

/** Bump on any change to how derived images are built: every derived image's tag changes. */
const DERIVED_RECIPE_VERSION = "1";
/** Where the engine's CA bundle sits while packages are installed (removed in the next step). */
const BUILD_CA_PATH = "/usr/lib/isol8/build-ca.pem";
const SETUP_SCRIPT_PATH = "/usr/lib/isol8/image-setup.sh";
/** Label naming the derived image's recipe (its name in `images`, or the one-off tag). */
const DERIVED_LABEL = "isol8.image";

/** The tag `isol8 setup` gives the derived image `name`: a hash of its recipe, so an unchanged recipe is never rebuilt. */
export function derivedImageTag(name: string, recipe: ResolvedDerivedImage, runtime: RuntimeDefinition, options: { caBundle?: string } = {}): string {
  return `isol8/image-${name}:${derivedRecipeHash(name, recipe, runtime, options)}`;
}

const hashes = new WeakMap<ResolvedDerivedImage, { key: string; hash: string }>();

/**
 * A hash of everything that makes the image: the runtime's image tag (so a new runtime recipe
 * rebuilds it), the Debian and runtime packages, the install command (registries), the files'
 * contents and the setup script. Memoized per recipe object: an engine reads the files once.
 */
export function derivedRecipeHash(name: string, recipe: ResolvedDerivedImage, runtime: RuntimeDefinition, options: { caBundle?: string } = {}): string {
  const base = runtimeImageTag(runtime);
  const install = packageInstallArgv(name, recipe, runtime, options);
  const key = JSON.stringify([base, install]);
  const memo = hashes.get(recipe);
  if (memo?.key === key) return memo.hash;
  const hash = createHash("sha256");
  for (const part of [
    DERIVED_RECIPE_VERSION,
    base,
    RUNTIME_IMAGE_TAIL,
    JSON.stringify(recipe.apt),
    JSON.stringify(install ?? null),
    recipe.setupScript ?? "",
  ]) {
    hash.update(part).update("\0");
  }
  for (const [dest, source] of Object.entries(recipe.files).sort(([a], [b]) => (a < b ? -1 : 1))) {
    hash
      .update(dest)
      .update("\0")
      .update(fileDigest(name, dest, source))
      .update("\0");
  }
  const result = hash.digest("hex").slice(0, 12);
  hashes.set(recipe, { key, hash: result });
  return result;
}

/**
 * The image an engine runs `runtime` in: with `image` naming one of `images`, that derived image
 * for its runtime (other runtimes keep their own); with `image` naming anything else, that Docker
 * image for every runtime (as before); without `image`, the runtime's own.
 */
export function resolveImage(
  options: Pick<ResolvedEngineOptions, "image" | "images" | "caBundle">,
  runtimes: Pick<NamedRegistry<RuntimeDefinition>, "get" | "has" | "names">,
  runtime: string,
): string {
  const definition = runtimes.get(runtime);
  const recipe = options.image === undefined ? undefined : options.images[options.image];
  if (options.image !== undefined && !recipe) return options.image;
  if (recipe && !runtimes.has(recipe.runtime)) {
    throw new InvalidOptionsError(`images.${options.image}.runtime: unknown runtime "${recipe.runtime}"; registered: ${runtimes.names().join(", ")}`);
  }
  if (!recipe || recipe.runtime !== runtime) return runtimeImageTag(definition);
  return derivedImageTag(options.image!, recipe, definition, options);
}

export interface BuildDerivedImageRequest {
  /** The recipe's name (in `images`, or the one-off image's tag): for messages and progress. */
  name: string;
  recipe: ResolvedDerivedImage;
  /** The runtime `recipe.runtime` names; its image must exist (buildImages builds it). */
  runtime: RuntimeDefinition;
  /** The image's tag; default derivedImageTag(name, ...). */
  tag?: string;
  /** A PEM CA bundle on the host for the package manager (the engine's `caBundle`). */
  caBundle?: string;
  /** Rebuild (without the build cache) even when the tag carries this recipe's hash. */
  force?: boolean;
  onProgress?: ProgressListener;
}

export interface DerivedImageReport {
  name: string;
  runtime: string;
  image: string;
  status: "built" | "up-to-date";
  durationMs: number;
}

/**
 * Builds a derived image FROM its runtime's image. The tag is applied only when every step
 * succeeded (Docker tags at the end of a build), so a failing recipe leaves nothing under it;
 * the error names the failing step (apt, packages, files[...], setupScript) and quotes its output.
 */
export async function buildDerivedImage(driver: DockerDriver, request: BuildDerivedImageRequest): Promise<DerivedImageReport> {
  const started = performance.now();
  const { name, recipe, runtime } = request;
  const emit = request.onProgress ?? (() => {});
  const status = (message: string) => emit({ target: name, kind: "status", message });
  const hashOptions = { caBundle: request.caBundle };
  const hash = derivedRecipeHash(name, recipe, runtime, hashOptions);
  const image = request.tag ?? derivedImageTag(name, recipe, runtime, hashOptions);
  const report = (status: DerivedImageReport["status"]) => ({ name, runtime: runtime.name, image, status, durationMs: performance.now() - started });

  const previous = await driver.imageLabels(image);
  if (!request.force && previous?.[IMAGE_LABELS.recipeHash] === hash) {
    status(`${image} is up to date`);
    return report("up-to-date");
  }
  const previousId = previous && (await driver.docker.getImage(image).inspect()).Id;
  const base = runtimeImageTag(runtime);
  if (!(await driver.imageExists(base))) {
    throw new ImageBuildError(`images.${name}: the ${runtime.name} image ${base} does not exist yet; run 'isol8 setup --runtime ${runtime.name}' first.`);
  }

  const { steps, files } = derivedDockerfile(name, recipe, runtime, request.caBundle);
  status(`Building ${image} from ${base}`);
  await dockerBuild(driver, {
    target: name,
    tags: [image],
    dockerfile: steps.map((s) => s.instruction).join("\n") + "\n",
    stepNames: steps.map((s) => s.name),
    files,
    labels: { [IMAGE_LABELS.managed]: "true", [IMAGE_LABELS.runtime]: runtime.name, [IMAGE_LABELS.recipeHash]: hash, [DERIVED_LABEL]: name },
    nocache: request.force,
    network: recipe.buildNetwork,
    onProgress: request.onProgress,
  });
  // The tag moved: the image it named before goes, unless a container still uses it.
  if (previousId) {
    const now = await driver.docker.getImage(image).inspect();
    if (now.Id !== previousId)
      await driver.docker
        .getImage(previousId)
        .remove()
        .catch(() => undefined);
  }
  const done = report("built");
  status(`Built ${image} in ${(done.durationMs / 1000).toFixed(1)} s`);
  return done;
}

interface Step {
  /** What the step is in the recipe's terms, named in a build failure. */
  name: string;
  /** One Dockerfile instruction. */
  instruction: string;
}

/** The Dockerfile, one instruction per step, and its build context. */
function derivedDockerfile(
  name: string,
  recipe: ResolvedDerivedImage,
  runtime: RuntimeDefinition,
  caBundle?: string,
): { steps: Step[]; files: Record<string, RecipeFile> } {
  const steps: Step[] = [
    { name: "from", instruction: `FROM ${runtimeImageTag(runtime)}` },
    { name: "from", instruction: "ARG DEBIAN_FRONTEND=noninteractive" },
    // The runtime image links /etc/passwd and /etc/group into /run/isol8 (empty while building):
    // the real files come back for apt's maintainer scripts, and the last step links them again.
    { name: "prepare", instruction: "RUN rm -f /etc/passwd /etc/group && cp /usr/lib/isol8/passwd /usr/lib/isol8/group /etc/" },
  ];
  const files: Record<string, RecipeFile> = {};
  if (recipe.apt.length) {
    steps.push({
      name: "apt",
      instruction: `RUN apt-get update && apt-get install -y --no-install-recommends ${recipe.apt.join(" ")} && rm -rf /var/lib/apt/lists/*`,
    });
  }
  const ca = caBundle && recipe.packages.length ? BUILD_CA_PATH : undefined;
  const argv = packageInstallArgv(name, recipe, runtime, { caBundle });
  if (argv) {
    if (ca) {
      files["build-ca.pem"] = { path: caBundle!, mode: 0o644 };
      steps.push({ name: "packages", instruction: `COPY build-ca.pem ${ca}` });
    }
    const env = Object.entries(runtime.packages?.env?.({ caBundle: ca }) ?? {}).map(([k, v]) => `${k}=${v}`);
    steps.push({ name: "packages", instruction: `RUN ${JSON.stringify(["env", ...env, ...argv])}` });
    if (ca) steps.push({ name: "packages", instruction: `RUN ${JSON.stringify(["rm", "-f", ca])}` });
  }
  Object.entries(recipe.files).forEach(([dest, source], i) => {
    files[`files/${i}`] = typeof source === "string" ? hostFile(name, dest, source) : { content: source.content, mode: source.mode ?? 0o644 };
    steps.push({ name: `files[${dest}]`, instruction: `COPY ${JSON.stringify([`files/${i}`, dest])}` });
  });
  if (recipe.setupScript) {
    files["setup.sh"] = { content: recipe.setupScript, mode: 0o755 };
    steps.push({ name: "setupScript", instruction: `COPY setup.sh ${SETUP_SCRIPT_PATH}` });
    steps.push({ name: "setupScript", instruction: `RUN ${JSON.stringify(["bash", "-e", SETUP_SCRIPT_PATH])}` });
  }
  steps.push({ name: "finish", instruction: RUNTIME_IMAGE_TAIL.trim() });
  return { steps, files };
}

/** The runtime's image install command for the recipe's packages, checked; undefined without packages. */
function packageInstallArgv(name: string, recipe: ResolvedDerivedImage, runtime: RuntimeDefinition, options: { caBundle?: string }): string[] | undefined {
  if (!recipe.packages.length) return undefined;
  const installer = runtime.packages;
  if (!installer?.imageCommand) {
    throw new InvalidOptionsError(`images.${name}.packages: runtime "${runtime.name}" cannot install packages into an image (its plugin has no imageCommand)`);
  }
  recipe.packages.forEach((spec, i) => {
    if (!installer.validName.test(spec) || spec.startsWith("-")) {
      throw new InvalidOptionsError(
        `images.${name}.packages[${i}]: ${JSON.stringify(spec)} is not a valid ${runtime.name} package name (expected a name with an optional version, matching ${installer.validName})`,
      );
    }
  });
  return installer.imageCommand(recipe.packages, { caBundle: options.caBundle ? BUILD_CA_PATH : undefined });
}

function hostFile(name: string, dest: string, source: string): RecipeFile {
  const path = resolve(source);
  const info = statOrThrow(name, dest, path);
  return info.isDirectory() ? { directory: path } : { path };
}

function statOrThrow(name: string, dest: string, path: string) {
  try {
    const info = statSync(path);
    if (!info.isFile() && !info.isDirectory()) throw new Error("not a regular file or a directory");
    return info;
  } catch (error) {
    throw new InvalidOptionsError(`images.${name}.files[${JSON.stringify(dest)}]: cannot read ${path}: ${(error as Error).message}`);
  }
}

/** Content hash of a file entry (a host file, a host directory's files and names, or inline content). */
function fileDigest(name: string, dest: string, source: ResolvedDerivedImage["files"][string]): string {
  const hash = createHash("sha256");
  if (typeof source !== "string")
    return hash
      .update(`inline:${source.mode ?? 0o644}:`)
      .update(source.content)
      .digest("hex");
  const path = resolve(source);
  const info = statOrThrow(name, dest, path);
  if (info.isFile())
    return hash
      .update(`file:${info.mode & 0o777}:`)
      .update(readFileSync(path))
      .digest("hex");
  const entries = readdirSync(path, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort();
  for (const file of entries) {
    hash
      .update(relative(path, file).split(sep).join("/"))
      .update("\0")
      .update(String(statSync(file).mode & 0o777))
      .update(readFileSync(file))
      .update("\0");
  }
  return hash.digest("hex");
}
