// Section 3: cold start — a new engine's first execution, per runtime (construction, start, the
// first container's create and start, the execution).
import { PROGRAMS } from "./config.mjs";
import { resolveImage, timedExecute } from "./engines.mjs";
import { startEngine, stopEngine } from "./latency.mjs";
import { log, loopGuard, now, summarize } from "./util.mjs";

export async function coldForRuntime(ctx, runtime, deadline) {
  const img = await resolveImage(ctx.docker, runtime);
  if (!img.image) return { runtime, error: img.error };
  const request = { runtime, code: PROGRAMS[runtime].code };
  const totals = [];
  const starts = [];
  const firsts = [];
  const coldFlags = [];
  const guard = loopGuard(deadline, ctx.config.coldRuns, 1);
  while (guard.more(totals.length)) {
    const t0 = now();
    const { engine, observer } = await startEngine(ctx, { image: img.image });
    try {
      await engine.start();
      const t1 = now();
      const r = await timedExecute(engine, observer, request, PROGRAMS[runtime].expect);
      const t2 = now();
      totals.push(t2 - t0);
      starts.push(t1 - t0);
      firsts.push(t2 - t1);
      coldFlags.push(r.result.coldStart);
    } finally {
      await stopEngine(ctx, engine);
    }
  }
  const out = {
    runtime,
    image: img.image,
    total: summarize(totals),
    engineStart: summarize(starts),
    firstExecute: summarize(firsts),
    coldStartFlag: coldFlags.every(Boolean),
    truncated: guard.truncated,
  };
  log(`${runtime}: cold start p50 ${out.total.p50} ms (engine start ${out.engineStart.p50}, first execute ${out.firstExecute.p50})`);
  return out;
}
