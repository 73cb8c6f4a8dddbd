import type * as z from "zod";
import { InvalidOptionsError, Isol8Error, PluginError } from "./errors.js";
import { formatZodError } from "./schemas.js";
import type { Kit } from "./kit.js";

const PLUGIN_BRAND = Symbol.for("isol8.plugin");

export interface Isol8Plugin<Api = unknown> {
  /** "isol8:runtime-python" for first-party plugins, "<vendor>:<thing>" for others; also every tap name. */
  readonly name: string;
  /**
   * What the plugin offers its user and other plugins (as Rollup's `api`): an audit plugin's
   * sink, a network mode's state. Set by `setup`; undefined for plugins that offer nothing.
   */
  readonly api?: Api;
  /** Apply-order tier: "pre" plugins are applied first, "post" last. Taps still order by stage. */
  readonly enforce?: "pre" | "post";
  /** Names of plugins that must be present (and are applied first). */
  readonly dependencies?: readonly string[];
  /**
   * Synchronous: register into the kit's registries and tap its hooks. Async work goes in
   * kit.hooks.ready. The kit it receives knows the plugin (`kit.plugin`): what it registers is
   * owned by this plugin without naming it again. A function, not a method: called detached.
   */
  apply: (kit: Kit) => void;
}

/** What a config's `plugins` array accepts: plugins, nested arrays, and falsy entries (so `cond && plugin()` works). */
export type PluginOption = Isol8Plugin | false | null | undefined | readonly PluginOption[];

export function isIsol8Plugin(value: unknown): value is Isol8Plugin {
  return (
    typeof value === "object" &&
    value !== null &&
    ((value as Record<symbol, unknown>)[PLUGIN_BRAND] === true ||
      (typeof (value as Isol8Plugin).name === "string" && typeof (value as Isol8Plugin).apply === "function"))
  );
}

/** A plugin whose `api` is present (not optional) when its setup returns one. */
export type PluginWithApi<Api> = Isol8Plugin<Api> & (undefined extends Api ? unknown : { readonly api: Api });

/** What `setup` returns: the apply function, or it with the plugin's API. */
export type PluginSetup<Api> = ((kit: Kit) => void) | { apply: (kit: Kit) => void; api: Api };

interface PluginDefinition<Schema extends z.ZodType, Api> {
  name: string;
  /** The plugin's own options schema: bad options fail when the factory is called, naming the plugin. */
  options?: Schema;
  enforce?: "pre" | "post";
  dependencies?: readonly string[];
  /** Runs once per plugin instance (each factory call): make the instance's state here. */
  setup(options: z.output<Schema>): PluginSetup<Api>;
}

/**
 * Makes a plugin factory. `definePlugin({ name, options, setup })` returns `(options?) => plugin`;
 * options are validated by the plugin's zod schema when the factory is called. When `setup`
 * returns `{ apply, api }`, the plugin carries `api`.
 */
export function definePlugin<Schema extends z.ZodType = z.ZodType<undefined>, Api = undefined>(
  definition: PluginDefinition<Schema, Api>,
): (options?: z.input<Schema>) => PluginWithApi<Api> {
  return (rawOptions?: z.input<Schema>) => {
    let options: z.output<Schema> = rawOptions as z.output<Schema>;
    if (definition.options) {
      const parsed = definition.options.safeParse(rawOptions ?? {});
      if (!parsed.success) {
        throw new InvalidOptionsError(`Invalid options for plugin ${definition.name}: ${formatZodError(parsed.error, "options")}`, {
          plugin: definition.name,
        });
      }
      options = parsed.data;
    }
    const made = definition.setup(options);
    const { apply, api } = typeof made === "function" ? { apply: made, api: undefined } : made;
    return Object.freeze({
      [PLUGIN_BRAND]: true,
      name: definition.name,
      enforce: definition.enforce,
      dependencies: definition.dependencies,
      apply,
      ...(api !== undefined && { api }),
    }) as PluginWithApi<Api>;
  };
}

/** Flattens, drops falsy entries, checks names and dependencies, and orders pre → normal → post. */
export function resolvePlugins(list: readonly PluginOption[]): Isol8Plugin[] {
  const flat: Isol8Plugin[] = [];
  const visit = (option: PluginOption, index: string) => {
    if (!option) return;
    if (Array.isArray(option)) {
      // Array.isArray narrows a readonly array to any[]: say what it holds.
      (option as readonly PluginOption[]).forEach((o, i) => visit(o, `${index}[${i}]`));
      return;
    }
    if (!isIsol8Plugin(option)) {
      throw new InvalidOptionsError(`plugins${index}: expected an isol8 plugin ({ name, apply }); did you forget to call the plugin factory?`);
    }
    flat.push(option as Isol8Plugin);
  };
  list.forEach((o, i) => visit(o, `[${i}]`));

  const names = new Set<string>();
  for (const plugin of flat) {
    if (names.has(plugin.name)) throw new Isol8Error("ISOL8_ERR_DUPLICATE_NAME", `Plugin ${plugin.name} is listed twice.`, { plugin: plugin.name });
    names.add(plugin.name);
  }
  for (const plugin of flat) {
    for (const dependency of plugin.dependencies ?? []) {
      if (!names.has(dependency)) {
        throw new Isol8Error("ISOL8_ERR_PLUGIN", `Plugin ${plugin.name} needs plugin ${dependency}; add it to the plugins list.`, { plugin: plugin.name });
      }
    }
  }
  const tier = (p: Isol8Plugin) => (p.enforce === "pre" ? 0 : p.enforce === "post" ? 2 : 1);
  const sorted = flat
    .map((plugin, index) => ({ plugin, index }))
    .sort((a, b) => tier(a.plugin) - tier(b.plugin) || a.index - b.index)
    .map((e) => e.plugin);
  // Stable topological pass: each plugin after its dependencies, otherwise in tier/list order.
  const placed = new Set<string>();
  const ordered: Isol8Plugin[] = [];
  while (sorted.length > 0) {
    const next = sorted.findIndex((p) => (p.dependencies ?? []).every((d) => placed.has(d)));
    if (next === -1) {
      throw new Isol8Error("ISOL8_ERR_PLUGIN", `Plugins ${sorted.map((p) => p.name).join(", ")} depend on each other in a cycle.`, { plugin: sorted[0]!.name });
    }
    const [plugin] = sorted.splice(next, 1);
    placed.add(plugin!.name);
    ordered.push(plugin!);
  }
  return ordered;
}

/**
 * Applies each plugin to the kit, each through a view of it that knows the plugin (registrations
 * are owned by it); a throw is wrapped as a PluginError naming the plugin.
 */
export function applyPlugins(kit: Kit, plugins: readonly Isol8Plugin[]): void {
  for (const plugin of plugins) {
    try {
      plugin.apply(kit.forPlugin(plugin.name));
    } catch (error) {
      if (Isol8Error.isInstance(error)) throw error;
      throw new PluginError(plugin.name, "apply", error);
    }
  }
}
