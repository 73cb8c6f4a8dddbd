#!/usr/bin/env node
// Executor vs Docker exec, in one run on this machine (loopback Docker only, bounded).
//
//   node bench/executor-vs-exec.mjs [--iterations 40] [--warmup 5] [--concurrency 4]
//
// Needs the built packages and images: `pnpm -r --filter @isol8/core --filter "@isol8/plugin-runtime-*"
// --filter isol8 run build && node packages/cli/dist/bin.js setup`.
//
// Measures, interleaved round by round so a change in the machine's load hits every path alike
// (each sample from an idle engine: its pool has finished the wipe and warm start after the last):
//   executor  `print(1)` in python through the engine (fast pool, launcher "executor"), with the
//             warm start (the interpreter started between executions) and without
//   exec      the same through the engine with one Docker exec per execution (launcher "exec")
//   bare exec a bare Docker Engine API exec of `python3 -c 'print(1)'` into a running container:
//             create + start + read to the end, nothing else (the floor of any exec-based path)
//   raw       `python3 -c 'print(1)'` through the executor's launcher alone (no engine, no files tar)
//   true      `true` through the executor's launcher, no engine around it (one round trip), and a PING
//   spawn     for reference: fork + exec + wait of /bin/true by a process inside the container
//             (no isol8, no Docker in the loop): what starting any program costs on this machine now
// then throughput back to back at concurrency N vs 1, warm start on and off. Prints p50/p95, ratios
// and the targets.
import { parseArgs } from "node:util";
import { DockerDriver, ExecutorLauncher, baseSandboxSpec, engineOptionsSchema, executorMainProcess } from "@isol8/core";
import { DockerIsol8 } from "isol8";

const { values } = parseArgs({
  options: {
    iterations: { type: "string", default: "40" },
    warmup: { type: "string", default: "5" },
    concurrency: { type: "string", default: "4" },
    "throughput-runs": { type: "string", default: "60" },
  },
});
const N = Math.min(500, Math.max(5, Number(values.iterations)));
const WARMUP = Math.min(50, Math.max(1, Number(values.warmup)));
const CONCURRENCY = Math.min(8, Math.max(2, Number(values.concurrency)));
const THROUGHPUT_RUNS = Math.min(200, Math.max(CONCURRENCY, Number(values["throughput-runs"])));
// The whole benchmark gives up after this long, whatever happens.
const DEADLINE = setTimeout(() => {
  console.error("bench: gave up after 10 minutes");
  process.exit(2);
}, 600_000);
DEADLINE.unref();

const PY = { runtime: "python", code: "print(1)" };
/** Runs inside the container: p50 and p95 of fork + exec + wait of /bin/true, in ms. */
const SPAWN_PROBE = [
  "import os, time",
  "ts = []",
  "for _ in range(60):",
  "    t = time.perf_counter(); pid = os.fork()",
  "    if pid == 0: os.execv('/bin/true', ['true'])",
  "    os.waitpid(pid, 0); ts.append((time.perf_counter() - t) * 1000)",
  "ts.sort(); print(ts[30], ts[57])",
].join("\n");

const quantile = (samples, q) => {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * (sorted.length - 1) + 0.5))];
};
const fmt = (ms) => `${ms.toFixed(2).padStart(7)} ms`;
const time = async (fn) => {
  const start = performance.now();
  await fn();
  return performance.now() - start;
};

async function bareExec(driver, containerId, user) {
  const exec = await driver.docker.getContainer(containerId).exec({
    Cmd: ["python3", "-c", "print(1)"],
    User: user,
    AttachStdout: true,
    AttachStderr: true,
  });
  const stream = await exec.start({ hijack: true, stdin: false });
  await new Promise((resolve, reject) => {
    stream.on("data", () => {});
    stream.once("end", resolve);
    stream.once("close", resolve);
    stream.once("error", reject);
  });
}

/** The sandbox uid of the bench's own executor container (from isol8's range). */
const BENCH_UID = 1_500_000_123;

/** A container like the engine's, with the executor as main process, and our own launcher on it. */
async function executorContainer(driver, launcher, image) {
  // The engine's own base spec for an executor sandbox (one definition: packages/core/src/engine/sandbox-spec.ts).
  const base = baseSandboxSpec(engineOptionsSchema.parse({ memoryLimit: "512m", pidsLimit: 64 }), image, BENCH_UID, executorMainProcess(BENCH_UID));
  const id = await driver.create(
    { ...base, labels: { ...base.labels, "isol8.managed": "true", "isol8.bench": "executor-vs-exec", "isol8.owner-pid": String(process.pid) } },
    { beforeStart: (id) => launcher.attach(id) },
  );
  await launcher.ready(id);
  return id;
}

const driver = new DockerDriver();
// Fast-pool engines, as the engine is normally used: after each execution the pool wipes the
// container (and, with the warm start, starts the next interpreter) while the engine is idle.
const viaExecutor = new DockerIsol8({ launcher: "executor", poolSize: { clean: 1, dirty: 1 } });
const viaExecutorCold = new DockerIsol8({ launcher: "executor", poolSize: { clean: 1, dirty: 1 }, warmStart: false });
const viaExec = new DockerIsol8({ launcher: "exec", poolSize: { clean: 1, dirty: 1 } });
const floorEngine = new DockerIsol8({ mode: "persistent", launcher: "exec" });
const launcher = new ExecutorLauncher(driver);
const engines = [viaExecutor, viaExecutorCold, viaExec, floorEngine];
let rawId;
let failed = false;
try {
  const image = viaExecutor.imageFor("python");
  console.log(
    `image ${image}; ${N} measured rounds after ${WARMUP} warm-up rounds; load average ${(await import("node:os"))
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
  await Promise.all(engines.slice(0, 3).map((engine) => engine.start({ prewarm: { runtimes: ["python"] } })));
  const floorContainer = (await floorEngine.execute(PY)).containerId; // a plain running container (`sleep infinity` as nobody)
  const floorUid = (await driver.inspectContainer(floorContainer)).Config.Labels["isol8.uid"];
  rawId = await executorContainer(driver, launcher, image);
  const trueRun = () => launcher.run(rawId, { argv: ["true"], env: {}, payload: Buffer.alloc(0), onOutput: () => {} });

  const samples = { executor: [], executorCold: [], exec: [], bare: [], rawPython: [], true: [], ping: [], trueIdle: [], spawnP50: [], spawnP95: [] };
  const paths = {
    executor: () => viaExecutor.execute(PY),
    executorCold: () => viaExecutorCold.execute(PY),
    exec: () => viaExec.execute(PY),
    bare: () => bareExec(driver, floorContainer, `${floorUid}:${floorUid}`),
    rawPython: () => launcher.run(rawId, { argv: ["python3", "-c", "print(1)"], env: {}, payload: Buffer.alloc(0), onOutput: () => {} }),
    trueIdle: trueRun,
  };
  // Each sample starts from an idle engine (IDLE_MS after the last one, so every pool has finished
  // its wipe and warm start), the paths in turn, so a drift of the machine's load hits them alike.
  // `true` and PING are also measured back to back (BLOCK in a row): a round trip right after
  // another skips the idle CPUs' wake-up.
  const IDLE_MS = 150;
  const BLOCK = 4;
  for (let round = 0; round < WARMUP + N; round++) {
    const measured = round >= WARMUP;
    for (const [key, fn] of Object.entries(paths)) {
      await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
      const ms = await time(fn);
      if (measured) samples[key].push(ms);
    }
    for (let i = 0; i < BLOCK; i++) {
      const t = await time(trueRun);
      const p = await time(() => launcher.ping(rawId));
      if (measured) {
        samples.true.push(t);
        samples.ping.push(p);
      }
    }
    if (measured && round % 5 === 0) {
      let text = "";
      await launcher.run(rawId, { argv: ["python3", "-c", SPAWN_PROBE], env: {}, payload: Buffer.alloc(0), onOutput: (_s, chunk) => void (text += chunk) });
      const [p50, p95] = text.trim().split(/\s+/).map(Number);
      samples.spawnP50.push(p50);
      samples.spawnP95.push(p95);
    }
  }

  const p = (key) => ({ p50: quantile(samples[key], 0.5), p95: quantile(samples[key], 0.95) });
  const rows = [
    ["executor + warm start: python print(1), execute()", p("executor")],
    ["executor, warm start off: python print(1), execute()", p("executorCold")],
    ["executor: python3 -c 'print(1)', launcher.run only", p("rawPython")],
    ["exec path: python print(1), execute()", p("exec")],
    ["bare Docker API exec of python3 -c 'print(1)'", p("bare")],
    ["executor: `true` round trip, back to back", p("true")],
    ["executor: `true` round trip, from idle", p("trueIdle")],
    ["executor: PING round trip (no program)", p("ping")],
    ["reference: fork+exec+wait of /bin/true in the box", { p50: quantile(samples.spawnP50, 0.5), p95: quantile(samples.spawnP95, 0.5) }],
  ];
  console.log("\n" + "".padEnd(54) + "     p50        p95");
  for (const [name, { p50, p95 }] of rows) console.log(`${name.padEnd(54)} ${fmt(p50)} ${fmt(p95)}`);

  // Throughput: THROUGHPUT_RUNS executions back to back, by 1 and by CONCURRENCY callers, on a fast
  // pool sized for the concurrency (clean = dirty = c): warm start on and off.
  const throughput = async (workers, warmStart, request = PY) => {
    const engine = new DockerIsol8({ launcher: "executor", poolSize: { clean: workers, dirty: workers }, warmStart });
    try {
      await engine.start({ prewarm: { runtimes: ["python"] } });
      // Warm-up until the pool has grown to its steady size (c in use + c clean): its creates
      // (hundreds of ms of Docker's CPU each) must not fall in the measured window.
      await Promise.all(
        Array.from({ length: workers }, async () => {
          for (let i = 0; i < 3; i++) await engine.execute(request);
        }),
      );
      await new Promise((resolve) => setTimeout(resolve, 3000));
      let left = THROUGHPUT_RUNS;
      const start = performance.now();
      await Promise.all(
        Array.from({ length: workers }, async () => {
          while (left-- > 0) await engine.execute(request);
        }),
      );
      return THROUGHPUT_RUNS / ((performance.now() - start) / 1000);
    } finally {
      await engine.stop();
    }
  };
  const tput = {};
  for (const warmStart of [true, false]) tput[warmStart] = [await throughput(1, warmStart), await throughput(CONCURRENCY, warmStart)];
  // The same with a program that waits instead of computing (100 ms asleep): what the engine
  // itself does with concurrent executions once the CPUs are not the limit.
  const SLEEPY = { runtime: "python", code: "import time\ntime.sleep(0.1)" };
  const sleepy = [await throughput(1, true, SLEEPY), await throughput(CONCURRENCY, true, SLEEPY)];

  const ex = p("executor").p50;
  const floor = p("bare").p50;
  console.log(`\nthroughput, python print(1), back to back (${THROUGHPUT_RUNS} executions):`);
  for (const warmStart of [true, false]) {
    const [t1, tN] = tput[warmStart];
    console.log(
      `  warm start ${warmStart ? "on: " : "off:"} ${t1.toFixed(1)}/s at concurrency 1, ${tN.toFixed(1)}/s at concurrency ${CONCURRENCY} (${(tN / t1).toFixed(2)}×)`,
    );
  }
  console.log(
    `  a waiting program (time.sleep(0.1)), warm start on: ${sleepy[0].toFixed(1)}/s at concurrency 1, ${sleepy[1].toFixed(1)}/s at concurrency ${CONCURRENCY} (${(sleepy[1] / sleepy[0]).toFixed(2)}×)`,
  );
  console.log("\nratios (p50):");
  console.log(`  exec path / executor + warm start        ${(p("exec").p50 / ex).toFixed(2)}×`);
  console.log(`  warm start off / on                      ${(p("executorCold").p50 / ex).toFixed(2)}×`);
  console.log(`  bare exec floor / executor + warm start  ${(floor / ex).toFixed(2)}×`);
  console.log(`  executor + warm start / bare exec floor  ${(ex / floor).toFixed(2)}`);
  const [t1, tN] = tput[true];
  const targets = [
    [`executor warm python p50 ≤ 25 ms`, ex <= 25, fmt(ex)],
    [`executor warm python p50 below the bare-exec floor`, ex < floor, `${fmt(ex)} vs ${fmt(floor)}`],
    [`\`true\` round trip p50 < 3 ms (back to back)`, p("true").p50 < 3, fmt(p("true").p50)],
    [
      `throughput at concurrency ${CONCURRENCY} ≥ 3× concurrency 1`,
      tN >= 3 * t1,
      `${(tN / t1).toFixed(2)}× (a CPU-bound program on ${(await import("node:os")).cpus().length} CPUs)`,
    ],
  ];
  console.log("\ntargets (issue 7):");
  for (const [name, ok, figure] of targets) console.log(`  ${ok ? "met   " : "MISSED"} ${name}: ${figure.trim()}`);
} catch (error) {
  failed = true;
  console.error("bench failed:", error);
} finally {
  if (rawId) {
    launcher.detach(rawId);
    await driver.removeContainer(rawId).catch(() => undefined);
  }
  await Promise.allSettled(engines.map((engine) => engine.stop()));
}
process.exit(failed ? 1 : 0);
