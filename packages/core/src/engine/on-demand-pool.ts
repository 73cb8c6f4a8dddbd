import type { ContainerPool, PoolContext, PooledContainer } from "@isol8/kit";

/**
 * The pool used when no pool strategy is configured: a fresh container for every acquisition,
 * destroyed on release. Correct and simple; the pool plugins make it fast.
 */
export function onDemandPool(context: PoolContext): ContainerPool {
  const live = new Set<PooledContainer>();
  return {
    async acquire(runtime) {
      const container = await context.create(runtime);
      live.add(container);
      return { container, coldStart: true };
    },
    async release(container) {
      live.delete(container);
      await context.destroy(container);
    },
    async prewarm() {},
    async drain() {
      const all = [...live];
      live.clear();
      await Promise.allSettled(all.map((c) => context.destroy(c)));
    },
  };
}
