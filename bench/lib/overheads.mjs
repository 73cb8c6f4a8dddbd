// Section 5: what each feature costs, as interleaved pairs on python with the fast pool (each side
// settles before and after its run): filtered network vs none, resourceUsage on vs off, executeStream vs
// execute, auditing to a file vs none, seccomp strict vs unconfined (cold), RemoteIsol8 through the
// server on 127.0.0.1 vs DockerIsol8, launcher executor vs exec.
import { fork } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { PROGRAMS } from "./config.mjs";
import { BENCH_LABEL } from "./docker.mjs";
import { isol8, launcherSupported, resolveExecutorImage, resolveImage, timedExecute, timedStream } from "./engines.mjs";
import { floorOnce, prepareFloor, removeFloor, startEngine, stopEngine } from "./latency.mjs";
import { captureSpec } from "./throughput.mjs";
import { importWorkspace } from "./workspace.mjs";
import { assertNotStopped, hardStop, log, loopGuard, now, ratio, rotate, sleep, summarize } from "./util.mjs";

const SERVE_CHILD = fileURLToPath(new URL("./serve-child.mjs", import.meta.url));

/** Interleaves the sides (rotating their order each round), warm-up first; the first side is the reference. */
async function compare(ctx, name, sides, deadline) {
  const n = ctx.config.overheadRuns;
  for (const side of sides)
    for (let i = 0; i < Math.min(ctx.config.warmup, 3); i++) {
      await side.settle?.();
      await side.run();
    }
  const samples = sides.map(() => []);
  const extra = sides.map(() => []);
  const guard = loopGuard(deadline, n, Math.min(2, n));
  for (let i = 0; guard.more(samples[0].length); i++) {
    for (const k of rotate(
      sides.map((_, j) => j),
      i,
    )) {
      await sides[k].settle?.();
      const r = await sides[k].run();
      await sides[k].settle?.(); // background work of this side stays out of the next side's run
      samples[k].push(typeof r === "number" ? r : r.ms);
      if (typeof r === "object" && r.first !== undefined) extra[k].push(r.first);
    }
  }
  const out = {
    name,
    truncated: guard.truncated,
    sides: sides.map((side, k) => ({
      label: side.label,
      ...summarize(samples[k]),
      ...(extra[k].length ? { firstChunk: summarize(extra[k]) } : {}),
      ...(side.note ? { note: side.note } : {}),
    })),
  };
  const ref = out.sides[0];
  for (const side of out.sides.slice(1)) {
    side.overRef = ratio(side.p50, ref.p50);
    side.deltaP50 = side.p50 !== null && ref.p50 !== null ? Math.round((side.p50 - ref.p50) * 10) / 10 : null;
  }
  log(`overhead ${name}: ${out.sides.map((s) => `${s.label} p50 ${s.p50}`).join(", ")}`);
  return out;
}

function engineSide(ctx, label, made, runtime, { stream = false, program = PROGRAMS[runtime] } = {}) {
  const request = { runtime, code: program.code };
  const expect = program.expect;
  return {
    label,
    settle: () => made.observer.settled(runtime),
    run: () => (stream ? timedStream(made.engine, made.observer, request, expect) : timedExecute(made.engine, made.observer, request, expect)),
  };
}

async function withEngines(ctx, list, body) {
  const made = [];
  try {
    for (const [options, extra] of list) made.push(await startEngine(ctx, options, extra));
    // Started (and their pools filled) at once: nothing is measured yet.
    await Promise.all(made.map((m) => m.engine.start({ prewarm: { runtimes: [ctx.overheadRuntime] } })));
    return await body(made);
  } finally {
    for (const m of made) await stopEngine(ctx, m.engine);
  }
}

async function networkPair(ctx, image, deadline) {
  let networkFilter;
  try {
    ({ networkFilter } = await importWorkspace("@isol8/plugin-network-filter"));
  } catch (error) {
    return { name: "network: filtered vs none", skipped: error.message };
  }
  const node = await resolveImage(ctx.docker, "node");
  if (!node.image) return { name: "network: filtered vs none", skipped: `the filtered mode's proxy needs a node image: ${node.error}` };
  const rt = ctx.overheadRuntime;
  return withEngines(
    ctx,
    [[{ image, network: "none" }], [{ image, network: "filtered" }, { plugins: [networkFilter({ image: node.image })] }]],
    ([none, filtered]) => compare(ctx, "network: filtered vs none", [engineSide(ctx, "none", none, rt), engineSide(ctx, "filtered", filtered, rt)], deadline),
  );
}

async function resourceUsagePair(ctx, image, deadline) {
  const rt = ctx.overheadRuntime;
  return withEngines(ctx, [[{ image, resourceUsage: false }], [{ image, resourceUsage: true }]], async ([off, on]) => {
    const probe = await timedExecute(on.engine, on.observer, { runtime: rt, code: PROGRAMS[rt].code }, PROGRAMS[rt].expect);
    const result = await compare(ctx, "resourceUsage: on vs off", [engineSide(ctx, "off", off, rt), engineSide(ctx, "on", on, rt)], deadline);
    result.sample = probe.result.resourceUsage ?? null;
    return result;
  });
}

/** Auditing every execution to a JSON Lines file (code and output included) vs no audit sink (figure moved here from audit-file's tests). */
async function auditFilePair(ctx, image, deadline) {
  let fileAudit;
  try {
    ({ fileAudit } = await importWorkspace("@isol8/plugin-audit-file"));
  } catch (error) {
    return { name: "audit to a file vs none", skipped: error.message };
  }
  const rt = ctx.overheadRuntime;
  const dir = join(ctx.tmpDir, `audit-${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  try {
    return await withEngines(
      ctx,
      [[{ image }], [{ image, audit: { sinks: ["file"], includeCode: true, includeOutput: true } }, { plugins: [fileAudit({ dir })] }]],
      ([none, file]) => compare(ctx, "audit to a file vs none", [engineSide(ctx, "none", none, rt), engineSide(ctx, "file", file, rt)], deadline),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The strict seccomp profile vs "unconfined" on a cold execution (no pool: a container is created
 * and started per run, where a profile costs, if anywhere). Moved here from seccomp's tests.
 */
async function seccompPair(ctx, image, deadline) {
  const rt = ctx.overheadRuntime;
  // A pool that keeps nothing: every execution gets a container created and started for it. Such a
  // pool never has a clean container to wait for: a side is settled when its engine holds no container.
  const cold = { image, poolSize: { clean: 0, dirty: 0 } };
  const side = (label, made) => ({
    ...engineSide(ctx, label, made, rt),
    settle: async () => {
      const t0 = Date.now();
      while ((await made.engine.docker.listContainers({ "isol8.engine": made.engine.id })).length > 0 && Date.now() - t0 < 30_000) await sleep(5);
    },
  });
  return withEngines(ctx, [[{ ...cold, security: { seccomp: "unconfined" } }], [{ ...cold, security: { seccomp: "strict" } }]], ([unconfined, strict]) =>
    compare(ctx, "seccomp strict vs unconfined (cold execution)", [side("unconfined", unconfined), side("strict", strict)], deadline),
  );
}

async function streamPair(ctx, image, deadline) {
  const rt = ctx.overheadRuntime;
  return withEngines(ctx, [[{ image }]], ([made]) =>
    compare(
      ctx,
      "executeStream vs execute (same engine)",
      [engineSide(ctx, "execute", made, rt), engineSide(ctx, "executeStream", made, rt, { stream: true })],
      deadline,
    ),
  );
}

async function remotePair(ctx, image, deadline) {
  const name = "RemoteIsol8 via server on 127.0.0.1 vs DockerIsol8";
  let RemoteIsol8;
  try {
    ({ RemoteIsol8 } = await importWorkspace("@isol8/remote"));
    await importWorkspace("@isol8/server");
  } catch (error) {
    return { name, skipped: error.message };
  }
  const rt = ctx.overheadRuntime;
  assertNotStopped("starting the server");
  const apiKey = randomBytes(18).toString("base64url");
  const child = fork(SERVE_CHILD, [JSON.stringify({ image, apiKey, runtime: rt })], { stdio: ["ignore", "ignore", "pipe", "ipc"] });
  ctx.pids.add(child.pid);
  ctx.children.add(child);
  let stderr = "";
  child.stderr.on("data", (c) => (stderr = (stderr + c).slice(-2000)));
  const pending = new Map();
  let seq = 0;
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start within 90 s: ${stderr}`)), 90_000);
    child.on("message", (m) => {
      if (m.type === "ready") {
        clearTimeout(timer);
        resolve(m.url);
      } else if (m.type === "error") {
        clearTimeout(timer);
        reject(new Error(m.error));
      } else if (m.type === "settled") pending.get(m.id)?.(m.waited);
    });
    child.once("exit", (code) => reject(new Error(`the server exited (${code}): ${stderr}`)));
  });
  try {
    const url = await ready;
    if (!/^http:\/\/127\.0\.0\.1:\d+/.test(String(url))) throw new Error(`the server did not report a loopback URL (${url})`);
    const remote = new RemoteIsol8({ host: url, apiKey });
    await remote.start();
    // Answered by the server process; a server that is gone (or a stuck answer) never holds the run.
    child.once("exit", () => {
      for (const resolve of pending.values()) resolve(-1);
      pending.clear();
    });
    const settleRemote = () =>
      new Promise((resolve) => {
        if (!child.connected) return resolve(-1);
        const id = ++seq;
        const timer = setTimeout(() => {
          pending.delete(id);
          resolve(-1);
        }, 25_000);
        pending.set(id, (waited) => {
          clearTimeout(timer);
          pending.delete(id);
          resolve(waited);
        });
        child.send({ type: "settle", id, runtime: rt });
      });
    const request = { runtime: rt, code: PROGRAMS[rt].code };
    const result = await withEngines(ctx, [[{ image, poolStrategy: "fast", poolSize: { clean: 1, dirty: 1 } }]], ([local]) =>
      compare(
        ctx,
        name,
        [
          engineSide(ctx, "DockerIsol8", local, rt),
          {
            label: "RemoteIsol8",
            settle: settleRemote,
            run: async () => {
              const r = await timedExecute(remote, undefined, request, PROGRAMS[rt].expect);
              return r.ms;
            },
            note: `server ${url}`,
          },
        ],
        deadline,
      ),
    );
    await remote.stop?.().catch(() => undefined);
    return result;
  } catch (error) {
    return { name, error: String(error.message ?? error).slice(0, 800) };
  } finally {
    if (child.connected) {
      const stopped = new Promise((resolve) => {
        child.once("exit", resolve);
        setTimeout(resolve, 30_000);
      });
      child.send({ type: "stop" });
      await stopped;
    }
    if (child.exitCode === null) child.kill("SIGKILL");
    ctx.children.delete(child);
  }
}

async function launcherPair(ctx, deadline, rt = ctx.overheadRuntime, program = PROGRAMS[rt]) {
  const name = `launcher: executor vs exec (${rt}: ${program.code})`;
  if (!launcherSupported) return { name, skipped: "this engine build has no `launcher` option" };
  const image = await resolveExecutorImage(ctx.docker, rt);
  if (!image) return { name, skipped: `no ${rt} image carries the executor (label isol8.executor): build them with isol8 setup` };
  const spec = await captureSpec(ctx, rt, image);
  const floor = await prepareFloor(ctx, spec, rt, "floor-launcher", program);
  try {
    return await withEngines(ctx, [[{ image, launcher: "exec" }], [{ image, launcher: "executor" }]], async ([exec, executor]) => {
      const launched = executor.observer.spec?.Labels?.["isol8.launcher"];
      const result = await compare(
        ctx,
        name,
        [
          engineSide(ctx, "exec", exec, rt, { program }),
          { ...engineSide(ctx, "executor", executor, rt, { program }), note: `containers labelled isol8.launcher=${launched}` },
          { label: "floor (bare exec)", run: () => floorOnce(ctx, floor, rt, undefined, program) },
        ],
        deadline,
      );
      result.image = image;
      return result;
    });
  } finally {
    await removeFloor(ctx, floor);
  }
}

/**
 * Issue 7's round trip: `true` and PING through the executor's launcher alone (no engine around
 * it), in a container made from the engine's own spec: back to back (one right after another),
 * and from idle (after a pause, as a request that comes alone would see it).
 */
async function executorRoundTrip(ctx, deadline, rt = ctx.overheadRuntime) {
  const name = "executor round trip: `true` and PING through the launcher alone";
  if (!launcherSupported || !isol8.ExecutorLauncher) return { name, skipped: "this engine build has no executor" };
  const image = await resolveExecutorImage(ctx.docker, rt);
  if (!image) return { name, skipped: `no ${rt} image carries the executor (label isol8.executor): build them with isol8 setup` };
  const spec = await captureSpec(ctx, rt, image);
  const driver = new isol8.DockerDriver();
  const launcher = new isol8.ExecutorLauncher(driver);
  assertNotStopped("starting the round-trip container");
  const id = await driver.startContainer({ ...spec, Labels: { ...spec.Labels, [BENCH_LABEL]: ctx.runId } }, { beforeStart: (cid) => launcher.attach(cid) });
  ctx.containers.add(id);
  try {
    await launcher.ready(id);
    const trueRun = () => launcher.run(id, { argv: ["true"], env: {}, payload: Buffer.alloc(0), onOutput: () => {} });
    const timed = async (fn) => {
      const t0 = now();
      await fn();
      return now() - t0;
    };
    const samples = { true: [], ping: [], trueIdle: [] };
    const n = ctx.config.overheadRuns;
    const guard = loopGuard(deadline, n, Math.min(2, n));
    for (let i = 0; i < 3; i++) await trueRun();
    while (guard.more(samples.trueIdle.length)) {
      await sleep(50);
      samples.trueIdle.push(await timed(trueRun));
      for (let k = 0; k < 3; k++) {
        samples.true.push(await timed(trueRun));
        samples.ping.push(await timed(() => launcher.ping(id)));
      }
    }
    const out = {
      name,
      image,
      truncated: guard.truncated,
      sides: [
        { label: "`true`, back to back", ...summarize(samples.true) },
        { label: "`true`, from idle (50 ms pause)", ...summarize(samples.trueIdle) },
        { label: "PING (no program)", ...summarize(samples.ping) },
      ],
    };
    log(`overhead ${name}: ${out.sides.map((s) => `${s.label} p50 ${s.p50}`).join(", ")}`);
    return out;
  } finally {
    launcher.detach(id);
    ctx.containers.delete(id);
    await driver.removeContainer(id).catch(() => undefined);
  }
}

export async function overheadsSection(ctx, deadline) {
  const rt = ctx.config.runtimes.includes("python") ? "python" : ctx.config.runtimes[0];
  ctx.overheadRuntime = rt;
  const img = await resolveImage(ctx.docker, rt);
  if (!img.image) return { runtime: rt, error: img.error };
  const parts = [
    ["network", (d) => networkPair(ctx, img.image, d)],
    ["resourceUsage", (d) => resourceUsagePair(ctx, img.image, d)],
    ["stream", (d) => streamPair(ctx, img.image, d)],
    ["audit-file", (d) => auditFilePair(ctx, img.image, d)],
    ["seccomp", (d) => seccompPair(ctx, img.image, d)],
    ["remote", (d) => remotePair(ctx, img.image, d)],
    ["launcher", (d) => launcherPair(ctx, d)],
    ["executor-roundtrip", (d) => executorRoundTrip(ctx, d)],
    // The smallest round trip: bash running `true` (issue 7's "true round trip").
    ...(ctx.config.runtimes.includes("bash") || ctx.config.quick ? [["launcher-true", (d) => launcherPair(ctx, d, "bash", { code: "true", expect: "" })]] : []),
  ];
  const results = [];
  for (let i = 0; i < parts.length; i++) {
    const [key, fn] = parts[i];
    const left = deadline - Date.now();
    // Each comparison starts engines (and a server or a proxy): below a few seconds it cannot run.
    if (hardStop.stopped || (!ctx.config.quick && left <= 8000)) {
      results.push({ key, skipped: "budget" });
      continue;
    }
    const partDeadline = Date.now() + left / (parts.length - i);
    log(`overhead: ${key}`);
    const r = await fn(partDeadline).catch((error) =>
      hardStop.stopped ? { skipped: "cut by the hard stop" } : { error: String(error?.message ?? error).slice(0, 800) },
    );
    results.push({ key, ...r });
  }
  return { runtime: rt, image: img.image, comparisons: results };
}
