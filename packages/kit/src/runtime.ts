import type { ContextKernel } from "./contexts.js";

/**
 * What a runtime plugin registers: how to name the code file, how to run it, and the image
 * recipe that provides the interpreter. The core knows no runtime by name.
 */
export interface RuntimeDefinition {
  /** Registry key, e.g. "python". */
  readonly name: string;
  /** File extensions this runtime runs; the first is the default for `code`. Used by the CLI to pick a runtime from a file name. */
  readonly extensions: readonly string[];
  /** argv that runs the code file (an absolute path inside the container). */
  command(file: string): string[];
  /** Environment every execution of this runtime gets (the request's env wins). */
  readonly env?: Readonly<Record<string, string>>;
  /** How the runtime's image is built. */
  readonly image: ImageRecipe;
  /** How `installPackages` installs packages for this runtime; without it the runtime refuses them. */
  readonly packages?: PackageInstaller;
  /** Starting the interpreter before the execution comes; without it every execution starts it afresh. */
  readonly warmStart?: WarmStart;
  /** Interpreter contexts (cells that keep state: contexts.ts); without it the runtime has none. */
  readonly context?: ContextKernel;
}

/**
 * A program the executor starts between executions, as the sandbox user, that does the
 * interpreter's start-up and then waits on fd 3 for the next request (a GO message:
 * packages/core/executor/PROTOCOL.md, "The standby"). For a GO with the warm flag whose argv is
 * this runtime's `command(file)`, it runs the file in-process exactly as the command would;
 * for anything else it execs the GO's argv.
 */
export interface WarmStart {
  /** argv of the waiting program. */
  readonly command: readonly string[];
  /**
   * Environment variables the interpreter reads at start-up: an execution whose values of
   * these differ from the ones the program was started with runs cold.
   */
  readonly startupEnv: RegExp;
}

/**
 * Installs packages into the sandbox before the code runs, as the sandbox user, in /sandbox.
 * The installer owns its package manager's flags; the engine validates names with `validName`
 * first (no shell, no flags) and passes them as separate argv entries.
 */
export interface PackageInstaller {
  /** A package spec this installer accepts (name, optional version), e.g. /^[a-z0-9][a-z0-9._-]*(==[0-9][\w.]*)?$/i. */
  readonly validName: RegExp;
  /** argv of the install command. `caBundle` is the in-container path of the CA bundle, when one is configured. */
  command(packages: readonly string[], options: { caBundle?: string }): string[];
  /** Environment for the install command (registry URLs, cache dirs, CA variables). */
  env?(options: { caBundle?: string }): Record<string, string>;
  /** Environment every execution gets so the code finds what was installed (e.g. PYTHONPATH). */
  readonly runEnv?: Readonly<Record<string, string>>;
  /**
   * argv that installs packages into a derived image while it is built (as root, outside
   * /sandbox, where this runtime's programs find them without `runEnv`), with the same registries
   * and `env()` as `command`. Without it, derived images of this runtime refuse packages.
   */
  imageCommand?(packages: readonly string[], options: { caBundle?: string }): string[];
}

/**
 * A runtime image recipe. The builder prepends `FROM <isol8 base image>` and the base gives
 * every image the sandbox user and /sandbox; the recipe adds the interpreter.
 */
export interface ImageRecipe {
  /**
   * Dockerfile instructions that follow the FROM line. The build context holds the files
   * `context()` returns. apt-get works (the build reaches Debian's mirror over HTTP).
   */
  readonly dockerfile: string;
  /**
   * Files the host prepares for the build context (e.g. a binary taken from an npm package
   * with the host's own npm configuration). Keys are paths inside the context.
   */
  context?(helpers: RecipeHelpers): Promise<Record<string, RecipeFile>>;
  /**
   * Everything outside `dockerfile` that changes the image (e.g. pinned package versions).
   * Part of the content hash: change it and `isol8 setup` rebuilds.
   */
  readonly version: string;
}

/** A file of the build context: inline content, a host file, or a host directory copied whole. */
export type RecipeFile = { content: Uint8Array | string; mode?: number } | { path: string; mode?: number } | { directory: string };

export interface RecipeHelpers {
  /**
   * Downloads an npm package tarball with the host's npm (its registry, proxy and CA settings)
   * and returns the absolute path of `file` inside the unpacked package.
   */
  npmPackageFile(spec: string, file: string): Promise<string>;
  /** Reports progress of long preparation steps. */
  progress(message: string): void;
}
