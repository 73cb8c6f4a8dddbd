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

export type RecipeFile = { content: Uint8Array | string; mode?: number } | { path: string; mode?: number };

export interface RecipeHelpers {
  /**
   * Downloads an npm package tarball with the host's npm (its registry, proxy and CA settings)
   * and returns the absolute path of `file` inside the unpacked package.
   */
  npmPackageFile(spec: string, file: string): Promise<string>;
  /** Reports progress of long preparation steps. */
  progress(message: string): void;
}
