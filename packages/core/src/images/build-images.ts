import type { DockerDriver } from "../docker/driver.js";
import type { RecipeHelpers, RuntimeDefinition } from "@isol8/kit";
import { ensureBaseImage, type EnsureBaseImageOptions } from "./base-image.js";
import { dockerBuild } from "./docker-build.js";
import { npmPackageFile } from "./npm-package.js";
import type { ProgressListener } from "./progress.js";
import { IMAGE_LABELS, RUNTIME_IMAGE_TAIL, baseImageTag, runtimeImageTag, runtimeRecipeHash } from "./tags.js";

export interface BuildReport {
  runtime: string;
  image: string;
  status: "built" | "up-to-date";
  durationMs: number;
}

export interface BuildImagesOptions {
  /**
   * Rebuild runtime images (without the build cache) even when up to date. The base image is
   * rebuilt only when missing; call ensureBaseImage({ force: true }) to rebuild it too.
   */
  force?: boolean;
  onProgress?: ProgressListener;
  /** Passed to ensureBaseImage when the base has to be built. */
  base?: Pick<EnsureBaseImageOptions, "mirror" | "pullIdleTimeoutMs">;
}

/**
 * Builds one image per runtime, tagged `runtimeImageTag(runtime)` and `isol8/<name>:latest`.
 * An image whose recipe-hash label matches is left alone, so a second `isol8 setup` costs
 * one inspect per runtime (the base is not even looked at then).
 */
export async function buildImages(driver: DockerDriver, runtimes: readonly RuntimeDefinition[], options: BuildImagesOptions = {}): Promise<BuildReport[]> {
  const emit = options.onProgress ?? (() => {});
  const reports: BuildReport[] = [];
  let baseReady = false;

  for (const runtime of runtimes) {
    let started = performance.now();
    const image = runtimeImageTag(runtime);
    const hash = runtimeRecipeHash(runtime);
    const status = (message: string) => emit({ target: runtime.name, kind: "status", message });
    const latest = { repo: `isol8/${runtime.name}`, tag: "latest" };

    if (!options.force && (await driver.imageLabels(image))?.[IMAGE_LABELS.recipeHash] === hash) {
      // Re-point :latest anyway: it may name another version's image after a downgrade.
      await driver.docker.getImage(image).tag(latest);
      status(`${image} is up to date`);
      reports.push({ runtime: runtime.name, image, status: "up-to-date", durationMs: performance.now() - started });
      continue;
    }

    if (!baseReady) {
      await ensureBaseImage(driver, { ...options.base, onProgress: options.onProgress });
      baseReady = true;
      // The base is reported on its own ("base" progress events); this runtime's time starts now.
      started = performance.now();
    }

    const helpers: RecipeHelpers = {
      progress: status,
      npmPackageFile: (spec, file) => npmPackageFile(spec, file, { progress: status }),
    };
    const files = (await runtime.image.context?.(helpers)) ?? {};
    status(`Building ${image}`);
    await dockerBuild(driver, {
      target: runtime.name,
      tags: [image, `${latest.repo}:${latest.tag}`],
      // The recipe runs apt-get non-interactively without having to say so; ARG does not persist into the image.
      dockerfile: `FROM ${baseImageTag()}\nARG DEBIAN_FRONTEND=noninteractive\n${runtime.image.dockerfile.replace(/\n?$/, "\n")}${RUNTIME_IMAGE_TAIL}`,
      files,
      labels: { [IMAGE_LABELS.managed]: "true", [IMAGE_LABELS.runtime]: runtime.name, [IMAGE_LABELS.recipeHash]: hash },
      nocache: options.force,
      onProgress: options.onProgress,
    });
    await removeDanglingImages(driver);
    const durationMs = performance.now() - started;
    status(`Built ${image} in ${(durationMs / 1000).toFixed(1)} s`);
    reports.push({ runtime: runtime.name, image, status: "built", durationMs });
  }
  return reports;
}

/**
 * A forced rebuild moves the tag and leaves the old image untagged. Only those dangling isol8
 * images go: older tagged versions may still serve another isol8 install on this machine,
 * and an image a container still uses refuses removal (which is fine).
 */
async function removeDanglingImages(driver: DockerDriver): Promise<void> {
  const images = await driver.docker.listImages({ filters: { dangling: ["true"], label: [`${IMAGE_LABELS.managed}=true`] } }).catch(() => []);
  for (const image of images)
    await driver.docker
      .getImage(image.Id)
      .remove()
      .catch(() => {});
}
