#!/usr/bin/env node
// isol8's benchmark harness: `pnpm bench` (full, < 10 minutes) or `pnpm bench --quick` (~1.5 minutes).
// Writes a table on the terminal, bench/results/latest.json, bench/results/latest.svg (and, for a
// full run, bench/latest.svg for the README). Local Docker only: nothing here contacts the network.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join, relative, resolve } from "node:path";
import { loadConfig, usage } from "./lib/config.mjs";
import { newDocker, removeContainer, sweepLeftovers, BENCH_LABEL } from "./lib/docker.mjs";
import { Budget, hardStop as hardStopFlag, log } from "./lib/util.mjs";
import { distNotes, gitInfo, ROOT } from "./lib/workspace.mjs";

let config;
try {
  config = loadConfig();
} catch (error) {
  process.stderr.write(`${error.message}\n\n${usage()}\n`);
  process.exit(2);
}
if (config.help) {
  process.stdout.write(`${usage()}\n`);
  process.exit(0);
}

const docker = newDocker();
try {
  await docker.ping();
} catch (error) {
  process.stderr.write(`Docker does not answer (${error.message}). Start it (bash scripts/ensure-docker.sh) and run pnpm bench again.\n`);
  process.exit(1);
}

// The engine modules load the built packages: fail with the reason (e.g. "run pnpm build").
let sections;
try {
  const [
    { latencyForRuntime, stopEngine },
    { coldForRuntime },
    { throughputSection },
    { cpuSection },
    { cliSection },
    { contextsSection },
    { overheadsSection },
    { profileSection },
    { latencyChart },
    { renderReport },
    { evaluateTargets },
  ] = await Promise.all([
    import("./lib/latency.mjs"),
    import("./lib/cold.mjs"),
    import("./lib/throughput.mjs"),
    import("./lib/cpu.mjs"),
    import("./lib/cli.mjs"),
    import("./lib/contexts.mjs"),
    import("./lib/overheads.mjs"),
    import("./lib/profile.mjs"),
    import("./lib/chart.mjs"),
    import("./lib/report.mjs"),
    import("./lib/targets.mjs"),
  ]);
  sections = {
    latencyForRuntime,
    stopEngine,
    coldForRuntime,
    throughputSection,
    cpuSection,
    cliSection,
    contextsSection,
    overheadsSection,
    profileSection,
    latencyChart,
    evaluateTargets,
    renderReport,
  };
} catch (error) {
  process.stderr.write(`Cannot load isol8's built packages: ${error.message}\n`);
  process.exit(1);
}

const outDir = resolve(ROOT, config.out);
mkdirSync(outDir, { recursive: true });
const runId = `${process.pid}-${Date.now().toString(36)}`;
const budget = new Budget(config.budget, config.quick ? 6 : 20);
const ctx = {
  docker,
  config,
  runId,
  budget,
  engines: new Set(),
  containers: new Set(),
  pids: new Set([process.pid]),
  children: new Set(),
  specs: new Map(),
  stopping: new Map(),
  notes: new Set(),
  tmpDir: join(outDir, ".tmp"),
};
const startedAt = Date.now();
const results = { meta: {}, latency: [], cold: [] };

async function cleanup() {
  for (const child of ctx.children) child.kill("SIGTERM");
  await Promise.allSettled([...ctx.engines].map((engine) => sections.stopEngine(ctx, engine)));
  await Promise.allSettled([...ctx.stopping.values()]); // every stop begun anywhere has finished
  await Promise.allSettled([...ctx.containers].map((id) => removeContainer(docker, id)));
  ctx.containers.clear();
  // Children get a moment to stop their engines; the sweep removes whatever is left anyway.
  const deadline = Date.now() + 15_000;
  while ([...ctx.children].some((c) => c.exitCode === null && c.signalCode === null) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const leftovers = await sweepLeftovers(docker, runId, ctx.pids, startedAt);
  const count = async () =>
    (await docker.listContainers({ all: true, filters: { label: [`${BENCH_LABEL}=${runId}`] } })).length +
    (
      await Promise.all(
        [...ctx.pids].map((pid) => docker.listContainers({ all: true, filters: { label: [`isol8.owner-pid=${pid}`, `isol8.owner-host=${os.hostname()}`] } })),
      )
    )
      .flat()
      .filter((c) => c.Created * 1000 >= startedAt - 2000).length;
  // A removal already in progress (409) finishes on Docker's side: give it a few seconds.
  let after = await count();
  for (let i = 0; after > 0 && i < 20; i++) {
    await new Promise((r) => setTimeout(r, 500));
    if (i === 10) await sweepLeftovers(docker, runId, ctx.pids, startedAt);
    after = await count();
  }
  rmSync(ctx.tmpDir, { recursive: true, force: true });
  return { ...leftovers, after };
}

let aborting = false;
async function abort(reason) {
  if (aborting) return;
  aborting = true;
  log(`aborting: ${reason}; cleaning up`);
  const leftovers = await cleanup().catch((error) => ({ error: String(error) }));
  log(`cleanup: ${JSON.stringify(leftovers)}`);
  process.exit(130);
}
process.on("SIGINT", () => abort("interrupted"));
process.on("SIGTERM", () => abort("terminated"));
// The hard stop: past the budget, whatever still runs is stopped (its engines, children and
// containers), so the section in flight fails fast and the partial results are written. Should
// even that hang, the process cleans up and exits.
const HARD_STOP_S = config.budget + 25;
const hardStop = setTimeout(async () => {
  ctx.notes.add(`the hard stop at ${HARD_STOP_S} s cut the section that was running`);
  log(`hard stop at ${HARD_STOP_S} s: stopping what still runs`);
  budget.deadline = 0;
  ctx.hardStopped = true;
  hardStopFlag.stopped = true;
  for (const child of ctx.children) child.kill("SIGTERM");
  await Promise.allSettled([...ctx.engines].map((engine) => sections.stopEngine(ctx, engine)));
  await Promise.allSettled([...ctx.containers].map((id) => removeContainer(docker, id)));
}, HARD_STOP_S * 1000);
hardStop.unref();
setTimeout(() => abort(`the run passed its hard stop by 30 s`), (HARD_STOP_S + 30) * 1000).unref();

const weights = { latency: 0.42, cold: 0.05, throughput: 0.15, cpu: 0.1, cli: 0.05, contexts: 0.04, overheads: 0.12, profile: 0.07 };
const order = ["latency", "cold", "throughput", "cpu", "cli", "contexts", "overheads", "profile"].filter((s) => config.sections.includes(s));
const loadStart = os.loadavg().map((x) => Math.round(x * 100) / 100);
log(
  `run ${runId}: ${config.quick ? "quick" : "full"} run, budget ${config.budget} s, runtimes ${config.runtimes.join(",")}, sections ${order.join(",")}; load ${loadStart.join(" ")}`,
);

for (let s = 0; s < order.length; s++) {
  const name = order[s];
  const remainingWeight = order.slice(s).reduce((sum, k) => sum + weights[k], 0);
  const deadline = budget.slice(weights[name], remainingWeight);
  // A full run skips what no longer fits; a quick (smoke) run does the minimum of every section,
  // bounded by the hard stop.
  if (ctx.hardStopped || (!config.quick && budget.expired())) {
    results[name] = { skipped: "budget" };
    continue;
  }
  log(`section ${name}: ${Math.round((deadline - Date.now()) / 1000)} s`);
  try {
    if (name === "latency" || name === "cold") {
      const fn = name === "latency" ? sections.latencyForRuntime : sections.coldForRuntime;
      // python (the headline target) weighs more; later runtimes get what earlier ones left.
      const w = config.runtimes.map((r) => (r === "python" ? 1.4 : 1));
      for (let i = 0; i < config.runtimes.length; i++) {
        if (ctx.hardStopped) {
          results[name].push({ runtime: config.runtimes[i], error: "not measured: the hard stop ended the run" });
          continue;
        }
        const rest = w.slice(i).reduce((a, b) => a + b, 0);
        const rtDeadline = Date.now() + Math.max(0, deadline - Date.now()) * (w[i] / rest);
        const runtime = config.runtimes[i];
        const r = await fn(ctx, runtime, rtDeadline).catch((error) => ({
          runtime,
          error: ctx.hardStopped ? "cut by the hard stop" : String(error?.message ?? error).slice(0, 600),
        }));
        if (r.error) log(`${name} ${runtime}: ${r.error}`);
        results[name].push(r);
      }
    } else if (name === "throughput") results.throughput = await sections.throughputSection(ctx, deadline);
    else if (name === "cpu") results.cpu = await sections.cpuSection(ctx, deadline);
    else if (name === "cli") results.cli = await sections.cliSection(ctx, deadline);
    else if (name === "contexts") results.contexts = await sections.contextsSection(ctx, deadline);
    else if (name === "overheads") results.overheads = await sections.overheadsSection(ctx, deadline);
    else if (name === "profile") results.profile = await sections.profileSection(ctx, deadline);
  } catch (error) {
    if (ctx.hardStopped) results[name] = { skipped: "cut by the hard stop" };
    else {
      log(`section ${name} failed: ${error?.stack ?? error}`);
      results[name] = { error: String(error?.message ?? error).slice(0, 800) };
    }
  }
}

clearTimeout(hardStop);
const leftovers = await cleanup();
results.leftovers = leftovers;

const cpu = os.cpus();
const version = await docker.version().catch(() => ({}));
const git = gitInfo();
const dirty = spawnSync("git", ["status", "--porcelain"], { cwd: ROOT, encoding: "utf8" }).stdout?.trim().length > 0;
const argv = process.argv.slice(2).filter((a) => a !== "--");
results.meta = {
  date: new Date(startedAt).toISOString().replace(/\.\d+Z$/, "Z"),
  command: `pnpm bench${argv.length ? ` ${argv.join(" ")}` : ""}`,
  machine: `${cpu.length} CPU × ${cpu[0]?.model?.trim() ?? "?"}, ${Math.round(os.totalmem() / 1024 ** 3)} GiB, Linux ${os.release()}, Docker ${version.Version ?? "?"} (API ${version.ApiVersion ?? "?"}), Node ${process.version}`,
  cpus: cpu.length,
  node: process.version,
  docker: { version: version.Version, api: version.ApiVersion },
  git,
  gitDirty: dirty,
  loadStart,
  loadEnd: os.loadavg().map((x) => Math.round(x * 100) / 100),
  durationMs: Date.now() - startedAt,
  budgetSeconds: config.budget,
  config,
  launcherEnv: process.env.ISOL8_LAUNCHER ?? null,
  notes: [...distNotes, ...ctx.notes],
  runId,
};
results.targets = sections.evaluateTargets(results);

const jsonPath = join(outDir, "latest.json");
const svgPath = join(outDir, "latest.svg");
writeFileSync(jsonPath, `${JSON.stringify(results, null, 2)}\n`);
const svg = sections.latencyChart(results);
writeFileSync(svgPath, svg);
const report = sections.renderReport(results);
writeFileSync(join(outDir, "latest.txt"), `${report}\n`);
const written = [jsonPath, svgPath, join(outDir, "latest.txt")];
if (!config.quick && !config.noCopyChart && config.sections.includes("latency")) {
  const committed = join(ROOT, "bench", "latest.svg");
  copyFileSync(svgPath, committed);
  written.push(committed);
}
process.stdout.write(`\n${report}\n\nWrote ${written.map((p) => relative(process.cwd(), p) || p).join(", ")}\n`);
process.exit(leftovers.after > 0 ? 1 : 0);
