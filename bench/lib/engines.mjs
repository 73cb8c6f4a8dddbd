// Engines as users build them (the batteries-included `isol8` entry, default plugins), with three
// bench-only plugins that observe without changing behaviour: the pool strategies "fast" and
// "secure" are the plugins' own FastPool/SecurePool classes, built through a context wrapper that
// times create/wipe/isAlive/destroy and lets the bench see the pool's state (to wait until it is
// settled); a sandboxSpec tap that records the final hardened spec (as Docker create options) (the baselines reuse it);
// optional marks on the pipeline's hooks for the profile.
import { importWorkspace } from "./workspace.mjs";
import { hardStop, now, sleep } from "./util.mjs";

export const isol8 = await importWorkspace("isol8");
const { FastPool } = await importWorkspace("@isol8/plugin-pool-fast");
const { SecurePool } = await importWorkspace("@isol8/plugin-pool-secure");

/** Whether this build of the engine knows the `launcher` option (the executor work). */
export const launcherSupported = isol8.engineOptionsSchema.safeParse({ launcher: "exec" }).success;
const EXECUTOR_PROTOCOL_VERSION = isol8.executorProtocol?.EXECUTOR_PROTOCOL_VERSION;
const EXECUTOR_LABEL = isol8.executorProtocol?.EXECUTOR_LABEL ?? "isol8.executor";

const OPS = ["create", "wipe", "isAlive", "destroy"];

export class EngineObserver {
  engine;
  pool;
  /** The final container spec of the engine's first container (after every sandboxSpec tap, as Docker create options). */
  spec;
  timings = Object.fromEntries(OPS.map((op) => [op, []]));
  active = Object.fromEntries(OPS.map((op) => [op, 0]));
  /** Hook marks for the profile: beforeAcquire (validation and beforeExec done) and afterExec (result built, container released). */
  marks = { beforeAcquire: [], afterExec: [] };
  /** What-if (profile only): the pool context answers isAlive without a round trip. */
  skipIsAlive = false;

  wrapContext(ctx) {
    const timed =
      (op, fn) =>
      async (...args) => {
        this.active[op]++;
        const t0 = now();
        try {
          return await fn(...args);
        } finally {
          this.timings[op].push(now() - t0);
          this.active[op]--;
        }
      };
    const wipe = timed("wipe", ctx.wipe);
    const isAlive = timed("isAlive", ctx.isAlive);
    return {
      ...ctx,
      size: ctx.size,
      log: ctx.log,
      create: timed("create", ctx.create),
      destroy: timed("destroy", ctx.destroy),
      wipe,
      isAlive: (container) => (this.skipIsAlive ? Promise.resolve(true) : isAlive(container)),
    };
  }

  /** The pool's numbers for a runtime (FastPool: clean/dirty/wiping/creating/waiters; SecurePool: ready/creating/waiters). */
  stats(runtime) {
    return this.pool?.stats().runtimes[runtime];
  }

  /**
   * Waits until the pool has no work in flight that an execution would compete with: fast: nothing
   * being wiped or created and a clean container ready; secure: a ready container and no destroy in
   * flight (creates of replacements are the secure pool's own steady cost and are not waited for).
   */
  async settled(runtime, { timeoutMs = 30_000 } = {}) {
    const t0 = Date.now();
    for (;;) {
      if (hardStop.stopped) return Date.now() - t0;
      const s = this.stats(runtime);
      if (!s) return Date.now() - t0; // no pool (yet) or the runtime never used: nothing to wait for
      {
        const idle =
          "clean" in s
            ? s.clean >= 1 && s.wiping === 0 && s.creating === 0 && s.waiters === 0 && this.active.wipe === 0
            : s.ready >= 1 && s.waiters === 0 && this.active.destroy === 0;
        if (idle) return Date.now() - t0;
      }
      if (Date.now() - t0 > timeoutMs) return Date.now() - t0;
      await sleep(3);
    }
  }
}

/** The default pool plugins, same names and classes, built through the observer's context wrapper. */
function observedPools(observer) {
  return [
    {
      name: "isol8:pool-fast",
      apply(kit) {
        kit.poolStrategies.register("fast", (ctx) => (observer.pool = new FastPool(observer.wrapContext(ctx))), "isol8:pool-fast");
      },
    },
    {
      name: "isol8:pool-secure",
      apply(kit) {
        kit.poolStrategies.register("secure", (ctx) => (observer.pool = new SecurePool(observer.wrapContext(ctx))), "isol8:pool-secure");
      },
    },
  ];
}

function benchTaps(observer, withMarks) {
  return {
    name: "bench:observe",
    enforce: "post",
    apply(kit) {
      kit.hooks.sandboxSpec.tap({ name: "bench:observe", stage: isol8.STAGE_SPEC_LABELS + 1 }, (spec) => {
        // The baselines run the same container through Docker directly: its create options.
        observer.spec ??= isol8.dockerCreateOptions(structuredClone(spec));
        return spec;
      });
      if (!withMarks) return;
      kit.hooks.beforeAcquire.tap({ name: "bench:observe", stage: isol8.STAGE_OBSERVE + 1 }, () => {
        observer.marks.beforeAcquire.push(now());
        return undefined;
      });
      kit.hooks.afterExec.tap({ name: "bench:observe", stage: isol8.STAGE_POLICY - 1 }, () => {
        observer.marks.afterExec.push(now());
      });
    },
  };
}

/** The observing plugins, for engines the bench does not build itself (the server's). */
export function observingPlugins(observer, { marks = false } = {}) {
  return [...observedPools(observer), benchTaps(observer, marks)];
}

/** A batteries-included engine with the observers; `plugins` replace or add to the defaults. */
export function makeEngine(options, { plugins = [], docker, marks = false } = {}) {
  const observer = new EngineObserver();
  const engine = new isol8.DockerIsol8(options, {
    plugins: isol8.defaultPlugins(...observingPlugins(observer, { marks }), ...plugins),
    ...(docker && { docker }),
  });
  observer.engine = engine;
  return { engine, observer };
}

/** Runs one execute() and checks its output. */
export async function timedExecute(engine, _observer, request, expect) {
  const t0 = now();
  const result = await engine.execute(request);
  const ms = now() - t0;
  if (result.exitCode !== 0 || (expect !== undefined && result.stdout !== expect)) {
    throw new Error(
      `unexpected result for ${request.runtime}: exit ${result.exitCode}, stdout ${JSON.stringify(result.stdout.slice(0, 200))}, stderr ${JSON.stringify(result.stderr.slice(0, 300))}`,
    );
  }
  return { ms, result, t0 };
}

/** Runs one executeStream() to its exit event: total time and time to the first output chunk. */
export async function timedStream(engine, _observer, request, expect) {
  const t0 = now();
  let first;
  let stdout = "";
  let exit;
  for await (const event of engine.executeStream(request)) {
    if (event.type === "stdout" || event.type === "stderr") {
      first ??= now() - t0;
      if (event.type === "stdout") stdout += event.data;
    } else if (event.type === "exit") exit = event.result;
    else if (event.type === "error") throw new Error(`executeStream error: ${event.data}`);
  }
  const ms = now() - t0;
  if (!exit || exit.exitCode !== 0 || (expect !== undefined && stdout !== expect))
    throw new Error(`unexpected stream result: ${JSON.stringify(exit ?? {}).slice(0, 300)}`);
  return { ms, first, result: exit };
}

async function imageLabels(docker, tag) {
  try {
    const info = await docker.getImage(tag).inspect();
    return info.Config?.Labels ?? {};
  } catch (error) {
    if (error?.statusCode === 404) return undefined;
    throw error;
  }
}

/**
 * The image to benchmark a runtime with: the tag this engine build expects (what `isol8 setup`
 * builds), else the runtime's `latest`, else its newest isol8 image. A fallback is reported.
 */
export async function resolveImage(docker, runtime) {
  const probe = new isol8.DockerIsol8({}, { plugins: isol8.defaultPlugins() });
  const expected = probe.imageFor(runtime);
  let labels = await imageLabels(docker, expected);
  if (labels) return { image: expected, expected, fallback: false, executor: labels[EXECUTOR_LABEL] };
  const latest = `isol8/${runtime}:latest`;
  labels = await imageLabels(docker, latest);
  if (labels) return { image: latest, expected, fallback: true, executor: labels[EXECUTOR_LABEL] };
  const list = await docker.listImages({ filters: { label: [`isol8.runtime=${runtime}`] } });
  list.sort((a, b) => b.Created - a.Created);
  const tag = list.find((i) => i.RepoTags?.length && i.RepoTags[0] !== "<none>:<none>")?.RepoTags[0];
  if (tag) return { image: tag, expected, fallback: true, executor: list[0].Labels?.[EXECUTOR_LABEL] };
  return { image: undefined, expected, fallback: true, error: `no image for ${runtime}: run isol8 setup (expected ${expected})` };
}

/** An image of the runtime that carries the executor this engine speaks (label isol8.executor), if any. */
export async function resolveExecutorImage(docker, runtime) {
  if (EXECUTOR_PROTOCOL_VERSION === undefined) return undefined;
  const want = String(EXECUTOR_PROTOCOL_VERSION);
  const probe = new isol8.DockerIsol8({}, { plugins: isol8.defaultPlugins() });
  const expected = probe.imageFor(runtime);
  if ((await imageLabels(docker, expected))?.[EXECUTOR_LABEL] === want) return expected;
  const list = await docker.listImages({ filters: { label: [`isol8.runtime=${runtime}`, `${EXECUTOR_LABEL}=${want}`] } });
  list.sort((a, b) => b.Created - a.Created);
  return list.find((i) => i.RepoTags?.length && i.RepoTags[0] !== "<none>:<none>")?.RepoTags[0];
}

/** The runtime's command and env for a code file, as the engine runs it. */
export function runtimeInvocation(runtime) {
  const probe = new isol8.DockerIsol8({}, { plugins: isol8.defaultPlugins() });
  const def = probe.kit.runtimes.get(runtime);
  const file = `/sandbox/main${def.extensions[0] ?? ""}`;
  const env = { ...def.env, ...def.packages?.runEnv };
  return { file, argv: def.command(file), env: Object.entries(env).map(([k, v]) => `${k}=${v}`) };
}
