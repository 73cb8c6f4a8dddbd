import { definePlugin, type PoolStrategy } from "@isol8/kit";
import * as z from "zod";
import { FAST_POOL_DEFAULTS, FastPool } from "./fast-pool.js";

export { FastPool, FAST_POOL_DEFAULTS, retryDelayMs, type FastPoolOptions, type FastPoolStats, type RuntimePoolStats } from "./fast-pool.js";

export const PLUGIN_NAME = "isol8:pool-fast";

export const fastPoolOptionsSchema = z.strictObject({
  /** How often idle clean containers are checked and dead ones replaced (ms); 0 turns the sweep off. */
  healthCheckIntervalMs: z.number().int().nonnegative().default(FAST_POOL_DEFAULTS.healthCheckIntervalMs),
  /** A wipe slower than this (ms) counts as failed: the container is destroyed and replaced. */
  wipeTimeoutMs: z.number().int().positive().default(FAST_POOL_DEFAULTS.wipeTimeoutMs),
});

export type FastPoolPluginOptions = z.input<typeof fastPoolOptionsSchema>;

/**
 * The "fast" pool strategy: containers are wiped (every process of the sandbox user killed;
 * /sandbox, /tmp and /dev/shm emptied) and reused. Select it with `poolStrategy: "fast"`
 * (the engine's default when this plugin is loaded); size it with `poolSize`.
 */
export const fastPool = definePlugin({
  name: PLUGIN_NAME,
  options: fastPoolOptionsSchema,
  setup: (options) => (kit) => {
    const strategy: PoolStrategy = (context) => new FastPool(context, options);
    kit.poolStrategies.register("fast", strategy, PLUGIN_NAME);
  },
});

export default fastPool;
