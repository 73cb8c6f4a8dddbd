// One throughput level in a process of its own, so the memory figures are the engine's alone:
// a fast-pool engine sized for the concurrency, `c` workers executing back to back for a window.
// Prints one JSON line. Usage: node throughput-child.mjs '<json config>'
import { newDocker, engineContainersMemory } from "./docker.mjs";
import { makeEngine, timedExecute } from "./engines.mjs";
import { PROGRAMS } from "./config.mjs";
import { now, summarize } from "./util.mjs";

const cfg = JSON.parse(process.argv[2]);
const { runtime, c, windowMs, image, warmup, poolStrategy = "fast" } = cfg;
const request = { runtime, code: PROGRAMS[runtime].code };
const expect = PROGRAMS[runtime].expect;
const docker = newDocker();
const poolSize = poolStrategy === "fast" ? { clean: c, dirty: c } : { clean: Math.max(c, cfg.securePool ?? c), dirty: 1 };
const { engine, observer } = makeEngine({ image, poolStrategy, poolSize });

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await engine.stop().catch(() => undefined);
};
process.on("SIGTERM", () => stop().then(() => process.exit(143)));

try {
  await engine.start({ prewarm: { runtimes: [runtime] } });
  // Warm-up: every container of the pool has run once and been wiped.
  await Promise.all(
    Array.from({ length: c }, async () => {
      for (let i = 0; i < warmup; i++) await timedExecute(engine, undefined, request, expect);
    }),
  );
  await observer.settled(runtime);
  const memBase = process.memoryUsage();

  const latencies = [];
  let cold = 0;
  let peakRss = 0;
  let peakHeap = 0;
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  }, 100);
  const t0 = now();
  const end = t0 + windowMs;
  let midContainers;
  const mid = setTimeout(async () => {
    midContainers = await engineContainersMemory(docker, engine.id).catch(() => undefined);
  }, windowMs / 2);
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (now() < end) {
        const r = await timedExecute(engine, undefined, request, expect);
        latencies.push(r.ms);
        if (r.result.coldStart) cold++;
      }
    }),
  );
  const elapsed = now() - t0;
  clearInterval(sampler);
  clearTimeout(mid);
  const m = process.memoryUsage();
  const endContainers = await engineContainersMemory(docker, engine.id).catch(() => undefined);
  const out = {
    c,
    poolStrategy,
    poolSize,
    executions: latencies.length,
    seconds: Math.round(elapsed) / 1000,
    perSec: Math.round((latencies.length / (elapsed / 1000)) * 100) / 100,
    latency: summarize(latencies),
    coldStarts: cold,
    engineProcess: {
      rss: m.rss,
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      external: m.external,
      peakRss: Math.max(peakRss, m.rss),
      peakHeapUsed: Math.max(peakHeap, m.heapUsed),
      rssBeforeWindow: memBase.rss,
    },
    containers: { during: midContainers, after: endContainers },
    wipe: summarize(observer.timings.wipe),
    pid: process.pid,
  };
  await stop();
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
} catch (error) {
  await stop();
  process.stdout.write(`${JSON.stringify({ c, error: String(error?.stack ?? error).slice(0, 1000) })}\n`);
  process.exit(1);
}
