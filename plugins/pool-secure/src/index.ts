import { definePlugin, type PoolStrategy } from "@isol8/kit";
import * as z from "zod";
import { SECURE_POOL_DEFAULTS, SecurePool } from "./secure-pool.js";

export { SecurePool, SECURE_POOL_DEFAULTS, retryDelayMs, type SecurePoolOptions, type SecurePoolStats, type SecureRuntimeStats } from "./secure-pool.js";

export const PLUGIN_NAME = "isol8:pool-secure";

export const securePoolOptionsSchema = z.strictObject({
  /** How often ready containers are checked and dead ones replaced (ms); 0 turns the sweep off. */
  healthCheckIntervalMs: z.number().int().nonnegative().default(SECURE_POOL_DEFAULTS.healthCheckIntervalMs),
});

export type SecurePoolPluginOptions = z.input<typeof securePoolOptionsSchema>;

/**
 * The "secure" pool strategy: every execution gets a fresh container that no other execution
 * has used, made ready in the background; used containers are destroyed. Select it with
 * `poolStrategy: "secure"`; `poolSize` (its `clean` part) sets how many wait ready per runtime.
 */
export const securePool = definePlugin({
  name: PLUGIN_NAME,
  options: securePoolOptionsSchema,
  setup: (options) => (kit) => {
    const strategy: PoolStrategy = (context) => new SecurePool(context, options);
    kit.poolStrategies.register("secure", strategy, PLUGIN_NAME);
  },
});

export default securePool;
