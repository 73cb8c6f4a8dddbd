// Section: the CLI's one-shot path as a user meets it, whole processes timed from spawn to exit:
// `isol8 run -e 'print(1)'` (the built CLI, packages/cli/dist/bin.js: Node start, module loading,
// the engine's start, its own container created, started, run and removed) against
// `docker run --rm <the same image> python3 -c 'print(1)'`. Interleaved, the order alternating.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { BENCH_LABEL, dockerRun } from "./docker.mjs";
import { resolveImage } from "./engines.mjs";
import { assertNotStopped, log, loopGuard, now, ratio, rotate, sleep, summarize } from "./util.mjs";
import { ROOT } from "./workspace.mjs";

const CLI = join(ROOT, "packages", "cli", "dist", "bin.js");

/** One `node bin.js run -e print(1)` in `cwd`: wall time from spawn to exit, its output, its pid. */
function cliRun(ctx, cwd, timeoutMs = 120_000) {
  assertNotStopped("a CLI run");
  return new Promise((resolve, reject) => {
    const t0 = now();
    const child = spawn(process.execPath, [CLI, "run", "-e", "print(1)"], { cwd, stdio: ["ignore", "pipe", "pipe"] });
    // The engine in the CLI labels its container with the CLI's pid: the leftover sweep finds it.
    ctx.pids.add(child.pid);
    ctx.children.add(child);
    const out = [];
    const err = [];
    child.stdout.on("data", (c) => out.push(c));
    child.stderr.on("data", (c) => err.push(c));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (e) => {
      clearTimeout(timer);
      ctx.children.delete(child);
      reject(e);
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      ctx.children.delete(child);
      resolve({ ms: now() - t0, pid: child.pid, exitCode: code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
  });
}

/** Waits (untimed for the comparison) until no container of the CLI process is left; returns how long that took. */
async function containerGone(ctx, pid, timeoutMs = 20_000) {
  const t0 = now();
  const filters = { label: [`isol8.owner-pid=${pid}`, `isol8.owner-host=${os.hostname()}`] };
  while (now() - t0 < timeoutMs) {
    if ((await ctx.docker.listContainers({ all: true, filters })).length === 0) return now() - t0;
    await sleep(20);
  }
  return null;
}

export async function cliSection(ctx, deadline) {
  const runtime = "python";
  if (!existsSync(CLI)) return { skipped: "packages/cli/dist/bin.js is missing: run pnpm build" };
  const img = await resolveImage(ctx.docker, runtime);
  if (!img.image) return { error: img.error };
  // The CLI runs the image this build expects; the comparison needs that very image.
  if (img.fallback) return { skipped: `the image the CLI runs (${img.expected}) is not built: run isol8 setup` };
  // A directory with no isol8 config up to the root, as most users run it: the repository's own
  // isol8.config.ts would add its loading (a TypeScript config goes through jiti) to every run.
  const cwd = mkdtempSync(join(os.tmpdir(), "isol8-bench-cli-"));
  try {
    return await measure(ctx, deadline, img, cwd);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
}

async function measure(ctx, deadline, img, cwd) {
  const dockerArgs = [
    "run",
    "--rm",
    "--label",
    `${BENCH_LABEL}=${ctx.runId}`,
    "--label",
    `${BENCH_LABEL}.role=cli-docker-run`,
    img.image,
    "python3",
    "-c",
    "print(1)",
  ];
  const sides = {
    cli: async () => {
      const r = await cliRun(ctx, cwd);
      if (r.exitCode !== 0 || r.stdout !== "1\n") throw new Error(`isol8 run failed (exit ${r.exitCode}): ${r.stderr.slice(0, 400)}`);
      const tail = await containerGone(ctx, r.pid);
      return { ms: r.ms, tail };
    },
    dockerRun: async () => {
      const r = await dockerRun(dockerArgs);
      if (r.exitCode !== 0 || r.stdout !== "1\n") throw new Error(`docker run failed (exit ${r.exitCode}): ${r.stderr.slice(0, 400)}`);
      return { ms: r.ms };
    },
  };
  // Warm-up (not counted): the image's layers and the CLI's modules in the page cache.
  for (const key of ["dockerRun", "cli"]) await sides[key]();
  const samples = { cli: [], dockerRun: [] };
  const tails = [];
  const guard = loopGuard(deadline, ctx.config.cliRuns, Math.min(2, ctx.config.cliRuns));
  for (let i = 0; guard.more(samples.cli.length); i++) {
    for (const key of rotate(["cli", "dockerRun"], i)) {
      const r = await sides[key]();
      samples[key].push(r.ms);
      if (r.tail !== undefined) tails.push(r.tail);
    }
  }
  const cli = { ...summarize(samples.cli), truncated: guard.truncated, wanted: ctx.config.cliRuns };
  const dockerRunStats = { ...summarize(samples.dockerRun), truncated: guard.truncated, wanted: ctx.config.cliRuns };
  const stillThere = tails.filter((t) => t === null).length;
  const out = {
    image: img.image,
    command: `node packages/cli/dist/bin.js run -e 'print(1)'`,
    cwd: "a new empty directory under the system's temp dir (no isol8 config found)",
    dockerRunCommand: `docker run --rm ${img.image} python3 -c 'print(1)'`,
    cli,
    dockerRun: dockerRunStats,
    containerGoneAfterExit: summarize(tails.filter((t) => t !== null)),
    containersLeftAfterExit: stillThere,
    ratioP50: ratio(cli.p50, dockerRunStats.p50),
    ratioBest: ratio(cli.min, dockerRunStats.min),
  };
  log(`cli: isol8 run p50 ${cli.p50} ms (best ${cli.min}), docker run --rm p50 ${dockerRunStats.p50} ms (best ${dockerRunStats.min}), ${out.ratioP50}×`);
  return out;
}
