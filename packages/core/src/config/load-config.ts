import { cosmiconfig, defaultLoaders } from "cosmiconfig";
import { ConfigError, Isol8Error } from "@isol8/kit";
import { validateConfig, type ResolvedConfig } from "@isol8/kit";

export const CONFIG_SEARCH_PLACES = [
  "package.json",
  "isol8.config.ts",
  "isol8.config.mts",
  "isol8.config.js",
  "isol8.config.mjs",
  "isol8.config.cjs",
  "isol8.config.json",
  ".isol8rc",
  ".isol8rc.json",
  ".isol8rc.ts",
  ".isol8rc.js",
  ".isol8rc.mjs",
];

type Loader = (filepath: string, content: string) => unknown;

/** A loader whose failure names the file it was loading. */
function naming(loader: Loader): Loader {
  return async (filepath, content) => {
    try {
      return await loader(filepath, content);
    } catch (error) {
      if (Isol8Error.isInstance(error)) throw error;
      throw new ConfigError(`Could not load the isol8 config ${filepath}: ${(error as Error).message}`, { filepath, cause: error });
    }
  };
}

/**
 * A TypeScript config goes through jiti: it transpiles in-process (no `typescript` compiler, no
 * network), local .ts imports of the config work, and it is loaded only when such a file is found,
 * so a JSON or JavaScript config (or none) costs nothing. cosmiconfig 9 has no .mts/.cts loader.
 */
const loadTypeScript: Loader = async (filepath) => {
  const { createJiti } = await import("jiti");
  const module = await createJiti(import.meta.url, { interopDefault: true }).import<{ default?: unknown }>(filepath);
  return module.default || module;
};

function explorer() {
  const ts = naming(loadTypeScript);
  const loaders = Object.fromEntries(Object.entries(defaultLoaders).map(([ext, loader]) => [ext, naming(loader as Loader)]));
  return cosmiconfig("isol8", {
    searchPlaces: CONFIG_SEARCH_PLACES,
    loaders: { ...loaders, ".ts": ts, ".mts": ts, ".cts": ts },
    searchStrategy: "project",
    cache: false,
  });
}

/**
 * Finds and loads the isol8 config: `path` when given, else the nearest one from `cwd` up to the
 * project's package.json. Returns the validated config and the file it came from; with no file,
 * an empty config (no plugins).
 */
export async function loadConfig(options: { cwd?: string; path?: string } = {}): Promise<ResolvedConfig> {
  let result: { config: unknown; filepath: string } | null;
  try {
    result = options.path ? await explorer().load(options.path) : await explorer().search(options.cwd ?? process.cwd());
  } catch (error) {
    if (Isol8Error.isInstance(error)) throw error;
    const code = (error as { code?: string }).code;
    if (options.path && code === "ENOENT") {
      throw new ConfigError(`Config file not found: ${options.path}`, { filepath: options.path, code: "ISOL8_ERR_CONFIG_NOT_FOUND", cause: error });
    }
    throw new ConfigError(`Could not load the isol8 config${options.path ? ` ${options.path}` : ""}: ${(error as Error).message}`, {
      filepath: options.path,
      cause: error,
    });
  }
  if (!result) return validateConfig({});
  let config: unknown;
  try {
    config = result.config;
    if (typeof config === "function") config = await (config as () => unknown)();
    config = await config;
  } catch (error) {
    if (Isol8Error.isInstance(error)) throw error;
    throw new ConfigError(`Could not load the isol8 config ${result.filepath}: ${(error as Error).message}`, { filepath: result.filepath, cause: error });
  }
  return validateConfig(config, result.filepath);
}
