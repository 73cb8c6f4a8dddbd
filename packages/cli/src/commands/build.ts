import { buildDerivedImage, buildImages, createEngine, derivedImageSchema, InvalidOptionsError, type ResolvedDerivedImage } from "@isol8/core";
import { loadCliConfig } from "../cli-config.js";
import { buildProgress } from "../build-progress.js";

export interface BuildFlags {
  runtime: string;
  tag: string;
  apt?: string[];
  pip?: string[];
  npm?: string[];
  file?: string[];
  setup?: string;
  buildNetwork?: string;
  force?: boolean;
  verbose?: boolean;
  config?: string;
}

/** A Docker image reference without a registry port: name[/name...][:tag]. */
const TAG = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?$/;

/** Which runtimes each package flag is for (the runtime's installer decides what a name may be). */
const PACKAGE_FLAGS = { pip: ["python"], npm: ["node", "bun"] } as const;

/**
 * `isol8 build`: a one-off derived image (the runtime's image plus Debian packages, the runtime's
 * packages, files and a setup script) under the tag given, printed on stdout. An unchanged recipe
 * is not rebuilt; a failing one leaves nothing under the tag.
 */
export async function buildCommand(flags: BuildFlags): Promise<number> {
  if (!TAG.test(flags.tag)) {
    throw new InvalidOptionsError(`--tag: expected a Docker image name such as my-python or my-python:1 (lowercase), got ${JSON.stringify(flags.tag)}`);
  }
  // isol8/<runtime>:<hash> and isol8/image-<name>:<hash> are setup's: a one-off tag must not move them.
  if (flags.tag.startsWith("isol8/")) throw new InvalidOptionsError(`--tag: names under isol8/ are isol8 setup's own; choose another name than ${flags.tag}`);
  const recipe = recipeFromFlags(flags);
  const config = await loadCliConfig(flags.config);
  const engine = createEngine(config);
  const registered = engine.kit.runtimes.names();
  if (!engine.kit.runtimes.has(flags.runtime))
    throw new InvalidOptionsError(`--runtime: unknown runtime "${flags.runtime}"; registered: ${registered.join(", ")}`);
  const runtime = engine.kit.runtimes.get(flags.runtime);
  await engine.docker.ping();

  const { onProgress, elapsed } = buildProgress(flags.verbose);
  await buildImages(engine.docker, [runtime], { onProgress });
  const report = await buildDerivedImage(engine.docker, {
    name: flags.tag,
    recipe,
    runtime,
    tag: flags.tag,
    caBundle: engine.options.caBundle,
    force: flags.force,
    onProgress,
  });
  process.stderr.write(
    `${elapsed()} [${flags.tag}] ${report.status === "built" ? "built" : "up to date"}; run it with: isol8 run --image ${flags.tag} -r ${flags.runtime} ...\n`,
  );
  process.stdout.write(`${report.image}\n`);
  return 0;
}

/** The flags as a derived-image recipe, checked by the same schema as a config's `images`; errors name the flag. */
function recipeFromFlags(flags: BuildFlags): ResolvedDerivedImage {
  for (const [flag, runtimes] of Object.entries(PACKAGE_FLAGS)) {
    if ((flags[flag as keyof typeof PACKAGE_FLAGS]?.length ?? 0) > 0 && !(runtimes as readonly string[]).includes(flags.runtime)) {
      throw new InvalidOptionsError(`--${flag}: for runtime ${runtimes.join(" or ")}, not "${flags.runtime}"`);
    }
  }
  const files: Record<string, string> = {};
  for (const entry of flags.file ?? []) {
    const colon = entry.lastIndexOf(":");
    if (colon <= 0 || colon === entry.length - 1) {
      throw new InvalidOptionsError(`--file: expected SRC:DEST (a host file or directory and an absolute path in the image), got ${JSON.stringify(entry)}`);
    }
    files[entry.slice(colon + 1)] = entry.slice(0, colon);
  }
  const parsed = derivedImageSchema.safeParse({
    runtime: flags.runtime,
    apt: flags.apt ?? [],
    packages: [...(flags.pip ?? []), ...(flags.npm ?? [])],
    files,
    ...(flags.setup !== undefined && { setupScript: flags.setup }),
    ...(flags.buildNetwork !== undefined && { buildNetwork: flags.buildNetwork }),
  });
  if (!parsed.success) {
    const flagOf: Record<string, string> = {
      apt: "--apt",
      packages: flags.npm?.length ? "--npm" : "--pip",
      files: "--file",
      setupScript: "--setup",
      buildNetwork: "--build-network",
    };
    // A bad record key (a --file DEST) carries its own messages inside: show those.
    const message = parsed.error.issues
      .flatMap((issue) => (issue.code === "invalid_key" ? issue.issues.map((inner) => ({ ...inner, path: issue.path })) : [issue]))
      .map((issue) => {
        const [field, ...rest] = issue.path.map(String);
        const where = field === "files" ? `--file (DEST ${rest[0]})` : `${flagOf[field ?? ""] ?? field}${rest.length ? ` #${Number(rest[0]) + 1}` : ""}`;
        return `${where}: ${issue.message}`;
      })
      .join("; ");
    throw new InvalidOptionsError(message);
  }
  return parsed.data;
}
