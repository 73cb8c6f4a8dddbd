// Section 4: throughput at each concurrency (fast pool sized for it, engine in a child process so
// its memory is its own), and the floor's throughput at the same concurrency (bare execs into as
// many running containers): what this machine can do at all.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { PROGRAMS } from "./config.mjs";
import { bareExec, containerMemory } from "./docker.mjs";
import { resolveImage } from "./engines.mjs";
import { prepareFloor, removeFloor, startEngine, stopEngine } from "./latency.mjs";
import { assertNotStopped, hardStop, log, now, ratio, summarize } from "./util.mjs";

const CHILD = fileURLToPath(new URL("./throughput-child.mjs", import.meta.url));

function runChild(ctx, cfg, timeoutMs) {
  assertNotStopped("starting a throughput level");
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CHILD, JSON.stringify(cfg)], { stdio: ["ignore", "pipe", "pipe"] });
    ctx.pids.add(child.pid);
    ctx.children.add(child);
    let out = "";
    let err = "";
    child.stdout.on("data", (c) => (out += c));
    child.stderr.on("data", (c) => (err += c));
    const timer = setTimeout(() => child.kill("SIGTERM"), timeoutMs);
    child.once("close", (code) => {
      clearTimeout(timer);
      ctx.children.delete(child);
      const line = out.trim().split("\n").pop();
      try {
        resolve(JSON.parse(line));
      } catch {
        resolve({ c: cfg.c, error: `the child exited ${code} without a result: ${(err || out).slice(-600)}` });
      }
    });
  });
}

/** The hardened spec of the engine's containers for an image (the first pool container's). */
export async function captureSpec(ctx, runtime, image) {
  const key = `${runtime}@${image}`;
  if (ctx.specs.has(key)) return ctx.specs.get(key);
  const { engine, observer } = await startEngine(ctx, { image });
  try {
    await engine.start({ prewarm: { runtimes: [runtime] } });
    ctx.specs.set(key, observer.spec);
    return observer.spec;
  } finally {
    await stopEngine(ctx, engine);
  }
}

async function floorThroughput(ctx, runtime, spec, c, windowMs) {
  const floors = [];
  try {
    for (let i = 0; i < c; i++) floors.push(await prepareFloor(ctx, spec, runtime, "floor-throughput"));
    const expect = PROGRAMS[runtime].expect;
    const latencies = [];
    const t0 = now();
    const end = t0 + windowMs;
    await Promise.all(
      floors.map(async (floor) => {
        while (now() < end) {
          const s = now();
          const r = await bareExec(ctx.docker, floor.id, { argv: floor.argv, env: floor.env, user: floor.user });
          if (r.exitCode !== 0 || r.stdout !== expect) throw new Error(`floor exec failed: ${r.stderr.slice(0, 200)}`);
          latencies.push(now() - s);
        }
      }),
    );
    const elapsed = now() - t0;
    const mem = await containerMemory(ctx.docker, floors[0].id).catch(() => undefined);
    return {
      c,
      executions: latencies.length,
      seconds: Math.round(elapsed) / 1000,
      perSec: Math.round((latencies.length / (elapsed / 1000)) * 100) / 100,
      latency: summarize(latencies),
      containerMemory: mem,
    };
  } finally {
    for (const floor of floors) await removeFloor(ctx, floor);
  }
}

export async function throughputSection(ctx, deadline) {
  const runtime = ctx.config.runtimes.includes("python") ? "python" : ctx.config.runtimes[0];
  const img = await resolveImage(ctx.docker, runtime);
  if (!img.image) return { runtime, error: img.error };
  const spec = await captureSpec(ctx, runtime, img.image);
  // c=1 and c=4 (the target's pair) first, then the others: a short budget drops those.
  const priority = (c) => (c === 1 ? 0 : c === 4 ? 1 : 2 + c);
  const levels = [...ctx.config.concurrency].sort((a, b) => priority(a) - priority(b));
  const rows = [];
  for (let i = 0; i < levels.length; i++) {
    const c = levels[i];
    const left = deadline - Date.now();
    if (hardStop.stopped || (!ctx.config.quick && left < 6000 && rows.length > 0)) {
      rows.push({ c, skipped: "budget" });
      continue;
    }
    // Each level: engine (child) then floor, each its window, plus set-up: shrink the window to fit.
    const windowMs = Math.round(Math.min(ctx.config.throughputMs, Math.max(1000, left / (levels.length - i) / 2.6)));
    log(`throughput c=${c}: isol8 (fast pool ${c}+${c}, ${windowMs} ms window)`);
    const engineRow = await runChild(ctx, { runtime, c, windowMs, image: img.image, warmup: 2 }, windowMs + 180_000);
    log(`throughput c=${c}: floor`);
    const floorRow = await floorThroughput(ctx, runtime, spec, c, windowMs).catch((error) => ({ c, error: String(error.message) }));
    rows.push({ c, windowMs, isol8: engineRow, floor: floorRow });
    log(`throughput c=${c}: isol8 ${engineRow.perSec ?? engineRow.error}/s, floor ${floorRow.perSec ?? floorRow.error}/s`);
  }
  rows.sort((a, b) => a.c - b.c);
  const at = (c, key) => rows.find((r) => r.c === c)?.[key]?.perSec;
  const base = Math.min(...rows.filter((r) => !r.skipped).map((r) => r.c));
  for (const row of rows) {
    if (row.skipped) continue;
    row.isol8Scaling = ratio(at(row.c, "isol8"), at(base, "isol8"));
    row.floorScaling = ratio(at(row.c, "floor"), at(base, "floor"));
    row.isol8OverFloor = ratio(at(row.c, "isol8"), at(row.c, "floor"));
  }
  return { runtime, image: img.image, rows };
}
