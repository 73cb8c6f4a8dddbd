import * as z from "zod";
import { ConfigError } from "../errors.js";
import { resolvePlugins, type Isol8Plugin, type PluginOption } from "../plugin.js";
import { engineOptionsSchema, formatZodError, type EngineOptions } from "../schemas.js";

export interface Isol8Config {
  /** The plugins that make up engines built from this config (runtimes, pools, policies, sinks). */
  plugins?: PluginOption[];
  /** Engine options every engine built from this config starts from. */
  defaults?: EngineOptions;
  /**
   * Settings of `isol8 serve`: API keys with their tenants, policy ceilings, limits. Typed loosely
   * here; @isol8/server validates it with its own schema (which names a bad key).
   */
  server?: Record<string, unknown>;
}

/** Typed identity: gives `isol8.config.ts` autocompletion and type checks. */
export function defineConfig(config: Isol8Config): Isol8Config {
  return config;
}

const configSchema = z.strictObject({
  // Entries are checked by resolvePlugins, whose messages name the nested position and the likely mistake.
  plugins: z.array(z.unknown(), { error: "expected an array of plugins" }).optional(),
  defaults: z.record(z.string(), z.unknown(), { error: "expected an object of engine options" }).optional(),
  server: z.record(z.string(), z.unknown(), { error: "expected an object of server settings" }).optional(),
});

export interface ResolvedConfig {
  plugins: Isol8Plugin[];
  /** Whether the config listed its plugins (a config without a `plugins` key leaves the choice to the caller). */
  hasPlugins: boolean;
  defaults: EngineOptions;
  /** The `server` section as written (validated by @isol8/server when a server starts). */
  server?: Record<string, unknown>;
  /** The file the config came from, or undefined for the built-in defaults. */
  filepath?: string;
}

/** Validates a config object: unknown keys and bad values fail with the key's path and what was expected. */
export function validateConfig(config: unknown, filepath?: string): ResolvedConfig {
  const where = filepath ? ` in ${filepath}` : "";
  const parsed = configSchema.safeParse(config ?? {});
  if (!parsed.success) throw new ConfigError(`Invalid isol8 config${where}: ${formatZodError(parsed.error)}`, { filepath });
  const defaults = (parsed.data.defaults ?? {}) as EngineOptions;
  const options = engineOptionsSchema.safeParse(defaults);
  if (!options.success) throw new ConfigError(`Invalid isol8 config${where}: ${formatZodError(options.error, "defaults")}`, { filepath });
  let plugins: Isol8Plugin[];
  try {
    plugins = resolvePlugins((parsed.data.plugins ?? []) as PluginOption[]);
  } catch (error) {
    throw new ConfigError(`Invalid isol8 config${where}: ${(error as Error).message}`, { filepath, cause: error });
  }
  return { plugins, hasPlugins: parsed.data.plugins !== undefined, defaults, filepath, ...(parsed.data.server && { server: parsed.data.server }) };
}
