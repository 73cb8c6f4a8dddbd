#!/usr/bin/env node
// Executor vs Docker exec, in one run on this machine (loopback Docker only, bounded).
//
//   node bench/executor-vs-exec.mjs [--iterations 40] [--warmup 5] [--concurrency 4]
//
// Needs the built packages and images: `pnpm -r --filter @isol8/core --filter "@isol8/plugin-runtime-*"
// --filter isol8 run build && node packages/cli/dist/bin.js setup`.
//
// Measures, interleaved round by round so a change in the machine's load hits every path alike:
//   executor  warm `print(1)` in python through the engine (persistent container, launcher "executor")
//   exec      the same through the engine with one Docker exec per execution (launcher "exec")
//   bare exec a bare Docker Engine API exec of `python3 -c 'print(1)'` into a running container:
//             create + start + read to the end, nothing else (the floor of any exec-based path)
//   raw       `python3 -c 'print(1)'` through the executor's launcher alone (no engine, no files tar)
//   true      `true` through the executor's launcher, no engine around it (one round trip), and a PING
//   spawn     for reference: fork + exec + wait of /bin/true by a process inside the container
//             (no isol8, no Docker in the loop): what starting any program costs on this machine now
// then the executor's throughput at concurrency N vs 1. Prints p50/p95, ratios and the targets.
import { parseArgs } from "node:util";
import { DockerDriver, ExecutorLauncher, executorProtocol } from "@isol8/core";
import { DockerIsol8 } from "isol8";

const { values } = parseArgs({
  options: {
    iterations: { type: "string", default: "40" },
    warmup: { type: "string", default: "5" },
    concurrency: { type: "string", default: "4" },
    "throughput-runs": { type: "string", default: "24" },
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
const { EXECUTOR_PATH, EXECUTOR_CAPABILITIES } = executorProtocol;

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

async function bareExec(driver, containerId) {
  const exec = await driver.docker.getContainer(containerId).exec({
    Cmd: ["python3", "-c", "print(1)"],
    User: "1000:1000",
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

/** A container like the engine's, with the executor as main process, and our own launcher on it. */
async function executorContainer(driver, launcher, image) {
  const id = await driver.startContainer(
    {
      Image: image,
      Cmd: [EXECUTOR_PATH],
      User: "0:0",
      WorkingDir: "/sandbox",
      Env: ["HOME=/sandbox"],
      OpenStdin: true,
      StdinOnce: false,
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Labels: { "isol8.managed": "true", "isol8.bench": "executor-vs-exec", "isol8.owner-pid": String(process.pid) },
      HostConfig: {
        Init: true,
        ReadonlyRootfs: true,
        Tmpfs: { "/sandbox": "rw,exec,nosuid,nodev,size=64m,uid=1000,gid=1000,mode=0700", "/tmp": "rw,noexec,nosuid,nodev,size=64m,mode=1777" },
        CapDrop: ["ALL"],
        CapAdd: [...EXECUTOR_CAPABILITIES],
        SecurityOpt: ["no-new-privileges"],
        NetworkMode: "none",
        PidsLimit: 64,
        LogConfig: { Type: "none", Config: {} },
      },
    },
    { beforeStart: (id) => launcher.attach(id) },
  );
  await launcher.ready(id);
  return id;
}

const driver = new DockerDriver();
const viaExecutor = new DockerIsol8({ mode: "persistent", launcher: "executor" });
const viaExec = new DockerIsol8({ mode: "persistent", launcher: "exec" });
const launcher = new ExecutorLauncher(driver);
let rawId;
let failed = false;
try {
  const image = viaExecutor.imageFor("python");
  console.log(`image ${image}; ${N} measured rounds after ${WARMUP} warm-up rounds; load average ${(await import("node:os")).loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  // Warm containers: the first execution of each engine creates its persistent container.
  const first = await viaExec.execute(PY);
  await viaExecutor.execute(PY);
  const floorContainer = first.containerId; // running `sleep infinity` as nobody: a plain running container
  rawId = await executorContainer(driver, launcher, image);
  const trueRun = () => launcher.run(rawId, { argv: ["true"], env: {}, payload: Buffer.alloc(0), onOutput: () => {} });

  const samples = { executor: [], exec: [], bare: [], true: [], ping: [], spawnP50: [], spawnP95: [] };
  const paths = {
    executor: () => viaExecutor.execute(PY),
    exec: () => viaExec.execute(PY),
    bare: () => bareExec(driver, floorContainer),
    rawPython: () => launcher.run(rawId, { argv: ["python3", "-c", "print(1)"], env: {}, payload: Buffer.alloc(0), onOutput: () => {} }),
    true: trueRun,
    ping: () => launcher.ping(rawId),
  };
  samples.rawPython = [];
  // Rounds of BLOCK consecutive samples per path, paths in turn, with a short pause between
  // paths: a drift of the machine's load hits every path alike, and the work Docker does after
  // one path (ending an exec, say) does not land in the next path's samples.
  const BLOCK = 4;
  const rounds = Math.ceil(N / BLOCK);
  for (let round = 0; round < Math.ceil(WARMUP / BLOCK) + rounds; round++) {
    const measured = round >= Math.ceil(WARMUP / BLOCK);
    for (const [key, fn] of Object.entries(paths)) {
      await new Promise((resolve) => setTimeout(resolve, 30));
      for (let i = 0; i < BLOCK; i++) {
        const ms = await time(fn);
        if (measured) samples[key].push(ms);
      }
    }
    if (measured && round % 3 === 0) {
      let text = "";
      await launcher.run(rawId, { argv: ["python3", "-c", SPAWN_PROBE], env: {}, payload: Buffer.alloc(0), onOutput: (_s, chunk) => void (text += chunk) });
      const [p50, p95] = text.trim().split(/\s+/).map(Number);
      samples.spawnP50.push(p50);
      samples.spawnP95.push(p95);
    }
  }

  const p = (key) => ({ p50: quantile(samples[key], 0.5), p95: quantile(samples[key], 0.95) });
  const rows = [
    ["executor: python print(1), engine.execute (warm)", p("executor")],
    ["executor: python3 -c 'print(1)', launcher.run only", p("rawPython")],
    ["exec:     python print(1), engine.execute (warm)", p("exec")],
    ["bare Docker API exec of python3 -c 'print(1)'", p("bare")],
    ["executor: `true` round trip (launcher.run)", p("true")],
    ["executor: PING round trip (no program)", p("ping")],
    ["reference: fork+exec+wait of /bin/true in the box", { p50: quantile(samples.spawnP50, 0.5), p95: quantile(samples.spawnP95, 0.5) }],
  ];
  console.log("\n" + "".padEnd(52) + "     p50        p95");
  for (const [name, { p50, p95 }] of rows) console.log(`${name.padEnd(52)} ${fmt(p50)} ${fmt(p95)}`);

  // Throughput: THROUGHPUT_RUNS executions, one engine/container per worker, at 1 and at CONCURRENCY.
  const engines = [viaExecutor];
  for (let i = 1; i < CONCURRENCY; i++) {
    const engine = new DockerIsol8({ mode: "persistent", launcher: "executor" });
    engines.push(engine);
    await engine.execute(PY);
  }
  const throughput = async (workers) => {
    let left = THROUGHPUT_RUNS;
    const start = performance.now();
    await Promise.all(
      engines.slice(0, workers).map(async (engine) => {
        while (left-- > 0) await engine.execute(PY);
      }),
    );
    return THROUGHPUT_RUNS / ((performance.now() - start) / 1000);
  };
  const t1 = await throughput(1);
  const tN = await throughput(CONCURRENCY);
  await Promise.all(engines.slice(1).map((engine) => engine.stop()));

  const ex = p("executor").p50;
  const floor = p("bare").p50;
  console.log(`\nthroughput, python print(1) through the executor: ${t1.toFixed(1)}/s at concurrency 1, ${tN.toFixed(1)}/s at concurrency ${CONCURRENCY} (${(tN / t1).toFixed(2)}×)`);
  console.log("\nratios (p50):");
  console.log(`  exec path / executor         ${(p("exec").p50 / ex).toFixed(2)}×`);
  console.log(`  bare exec floor / executor   ${(floor / ex).toFixed(2)}×`);
  console.log(`  executor / bare exec floor   ${(ex / floor).toFixed(2)}`);
  console.log(`  \`true\` round trip − in-box spawn of /bin/true: ${(p("true").p50 - quantile(samples.spawnP50, 0.5)).toFixed(2)} ms (the executor's and the transport's share)`);
  const targets = [
    [`executor warm python p50 ≤ 25 ms`, ex <= 25, fmt(ex)],
    [`executor warm python p50 below the bare-exec floor`, ex < floor, `${fmt(ex)} vs ${fmt(floor)}`],
    [`\`true\` round trip p50 < 3 ms`, p("true").p50 < 3, fmt(p("true").p50)],
    [`throughput at concurrency ${CONCURRENCY} ≥ 3× concurrency 1`, tN >= 3 * t1, `${(tN / t1).toFixed(2)}×`],
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
  await Promise.allSettled([viaExecutor.stop(), viaExec.stop()]);
}
process.exit(failed ? 1 : 0);
