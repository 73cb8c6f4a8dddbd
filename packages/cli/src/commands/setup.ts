import { buildDerivedImage, buildImages, createEngine, InvalidOptionsError, parseRegistry } from "@isol8/core";
import { loadCliConfig } from "../cli-config.js";
import { buildProgress } from "../build-progress.js";
import { pushImages } from "../push-images.js";

export interface SetupFlags {
  force?: boolean;
  runtime?: string[];
  verbose?: boolean;
  config?: string;
  /** Push every image built or found up to date to this registry (`host[:port]/path`), by digest into --push-manifest. */
  push?: string;
  registryAuth?: string;
  pushManifest?: string;
}

/**
 * `isol8 setup`: builds (or finds up to date) the image of every registered runtime, then the
 * derived images of the config's `images` whose runtime is among them, showing progress.
 */
export async function setupCommand(flags: SetupFlags): Promise<number> {
  const config = await loadCliConfig(flags.config);
  // Images are built and pushed with the local Docker engine whatever sandbox driver the config
  // chooses: setup never makes a sandbox, so a Kubernetes config needs no kubeconfig here.
  const engine = createEngine(config, { driver: "docker" });
  const registered = engine.kit.runtimes.names();
  const names = flags.runtime?.length
    ? flags.runtime
        .flatMap((r) => r.split(","))
        .map((r) => r.trim())
        .filter(Boolean)
    : registered;
  for (const name of names) {
    if (!engine.kit.runtimes.has(name)) throw new InvalidOptionsError(`--runtime: unknown runtime "${name}"; registered: ${registered.join(", ")}`);
  }
  if (flags.push !== undefined) parseRegistry(flags.push); // a bad --push fails before the builds, not after
  await engine.docker.ping();
  const { onProgress } = buildProgress(flags.verbose);
  const reports = await buildImages(
    engine.docker,
    names.map((n) => engine.kit.runtimes.get(n)),
    { force: flags.force, onProgress },
  );
  for (const report of reports) {
    process.stdout.write(`${report.runtime.padEnd(8)} ${report.status.padEnd(10)} ${report.image}  ${(report.durationMs / 1000).toFixed(1)}s\n`);
  }
  const images = reports.map((r) => r.image);
  for (const [name, recipe] of Object.entries(engine.options.images)) {
    if (!engine.kit.runtimes.has(recipe.runtime)) {
      throw new InvalidOptionsError(`images.${name}.runtime: unknown runtime "${recipe.runtime}"; registered: ${registered.join(", ")}`);
    }
    if (!names.includes(recipe.runtime)) continue;
    const runtime = engine.kit.runtimes.get(recipe.runtime);
    const report = await buildDerivedImage(engine.docker, { name, recipe, runtime, caBundle: engine.options.caBundle, force: flags.force, onProgress });
    process.stdout.write(`${report.name.padEnd(8)} ${report.status.padEnd(10)} ${report.image}  ${(report.durationMs / 1000).toFixed(1)}s\n`);
    images.push(report.image);
  }
  if (flags.push !== undefined) {
    await pushImages(engine.docker.docker, { registry: flags.push, registryAuth: flags.registryAuth, manifestPath: flags.pushManifest, images, onProgress });
  }
  return 0;
}
