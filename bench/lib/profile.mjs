// Section 6: where the time goes between the floor and isol8. Every Docker API call of the engine
// is timed through a traced dockerode client (assembly.docker; no engine code is changed), hook
// marks split the engine's own work, and what-if variants measure concrete cuts:
//   - no isAlive inspect on acquire (the pool context answers "alive" without a round trip) and
//     the exit code in-band (the exec inspect after the stream is answered locally): simulated,
//     combined in one variant;
//   - replays of the engine's exact exec (its runner script and tar on stdin) and of a lean runner
//     as bare execs, to split the in-container cost from the engine's.
// The wipe on release, once a what-if here (a prototype pool), has landed in the fast pool
// (plugins/pool-fast): every engine measured here wipes a container when it is released.
import { PROGRAMS } from "./config.mjs";
import { bareExec, newDocker, traceDocker } from "./docker.mjs";
import { launcherSupported, resolveExecutorImage, resolveImage, runtimeInvocation, timedExecute } from "./engines.mjs";
import { prepareFloor, removeFloor, startEngine, stopEngine } from "./latency.mjs";
import { captureSpec } from "./throughput.mjs";
import { log, loopGuard, now, ratio, rotate, summarize } from "./util.mjs";

const STEP_NAMES = {
  pre: "validate + beforeExec (execute() → beforeAcquire)",
  toAcquire: "beforeAcquire → first pool API call (tar, pool bookkeeping)",
  isAlive: "isAlive: GET /containers/:id/json",
  gapCreate: "gap → exec create (engine)",
  execCreate: "POST /containers/:id/exec",
  gapStart: "gap → exec start (engine)",
  execStart: "POST /exec/:id/start → upgrade",
  stream: "stream: upgrade → end (program runs)",
  gapInspect: "gap → exec inspect (engine)",
  execInspect: "GET /exec/:id/json (exit code)",
  post: "result + release (→ afterExec)",
  tail: "afterExec → execute() resolves",
  runRoundTrip: "executor round trip (no Docker API call)",
};

function analyseEngine(execs, tracer, marks) {
  const steps = Object.fromEntries([...Object.keys(STEP_NAMES), "total", "apiCalls", "apiMs", "nodeMs", "backgroundCalls"].map((k) => [k, []]));
  for (const e of execs) {
    const inWin = tracer.calls.filter((c) => c.t0 >= e.t0 && c.t0 <= e.t1);
    const fg = inWin.filter((c) => c.kind !== "wipe");
    const bg = inWin.filter((c) => c.kind === "wipe");
    const isAlive = fg.find((c) => c.path === "/containers/:id/json");
    const create = fg.find((c) => c.path === "/containers/:id/exec" && c.kind === "run");
    const start = fg.find((c) => c.path === "/exec/:id/start" && c.kind === "run");
    const inspect = fg.find((c) => c.path === "/exec/:id/json" && c.kind === "run");
    const bA = marks.beforeAcquire.find((t) => t >= e.t0 && t <= e.t1);
    const aE = marks.afterExec.find((t) => t >= e.t0 && t <= e.t1);
    const push = (k, v) => Number.isFinite(v) && steps[k].push(v);
    push("total", e.t1 - e.t0);
    push("pre", bA - e.t0);
    push("toAcquire", (isAlive?.t0 ?? create?.t0) - bA);
    if (isAlive) push("isAlive", isAlive.t1 - isAlive.t0);
    if (create) {
      push("gapCreate", create.t0 - (isAlive?.t1 ?? bA));
      push("execCreate", create.t1 - create.t0);
    }
    if (start && create) {
      push("gapStart", start.t0 - create.t1);
      push("execStart", start.t1 - start.t0);
      push("stream", start.t2 - start.t1);
    }
    if (inspect && start) {
      push("gapInspect", inspect.t0 - start.t2);
      push("execInspect", inspect.t1 - inspect.t0);
      push("post", aE - inspect.t1);
    }
    if (!create) push("runRoundTrip", aE - (isAlive?.t1 ?? bA));
    push("tail", e.t1 - aE);
    push("apiCalls", fg.length);
    push("backgroundCalls", bg.length);
    const apiMs = fg.reduce((sum, c) => sum + ((c.t2 ?? c.t1) - c.t0), 0);
    push("apiMs", apiMs);
    push("nodeMs", e.t1 - e.t0 - apiMs);
  }
  return Object.fromEntries(Object.entries(steps).map(([k, v]) => [k, summarize(v)]));
}

function analyseFloor(execs, tracer) {
  const steps = { total: [], execCreate: [], gapStart: [], execStart: [], stream: [], gapInspect: [], execInspect: [], apiCalls: [] };
  for (const e of execs) {
    const inWin = tracer.calls.filter((c) => c.t0 >= e.t0 && c.t0 <= e.t1);
    const create = inWin.find((c) => c.path === "/containers/:id/exec");
    const start = inWin.find((c) => c.path === "/exec/:id/start");
    const inspect = inWin.find((c) => c.path === "/exec/:id/json");
    steps.total.push(e.t1 - e.t0);
    steps.apiCalls.push(inWin.length);
    if (create && start && inspect) {
      steps.execCreate.push(create.t1 - create.t0);
      steps.gapStart.push(start.t0 - create.t1);
      steps.execStart.push(start.t1 - start.t0);
      steps.stream.push(start.t2 - start.t1);
      steps.gapInspect.push(inspect.t0 - start.t2);
      steps.execInspect.push(inspect.t1 - inspect.t0);
    }
  }
  return Object.fromEntries(Object.entries(steps).map(([k, v]) => [k, summarize(v)]));
}

export async function profileSection(ctx, deadline) {
  const rt = ctx.config.runtimes.includes("python") ? "python" : ctx.config.runtimes[0];
  // Three engines and two floor containers to start: with less time than this left, the profile would only be cut.
  const minimum = 20_000;
  if (!ctx.config.quick && deadline - Date.now() < minimum)
    return { runtime: rt, skipped: `budget (${Math.round((deadline - Date.now()) / 1000)} s left, needs ${minimum / 1000} s)` };
  const img = await resolveImage(ctx.docker, rt);
  if (!img.image) return { runtime: rt, error: img.error };
  const request = { runtime: rt, code: PROGRAMS[rt].code };
  const expect = PROGRAMS[rt].expect;
  const options = { image: img.image, poolStrategy: "fast", poolSize: { clean: 1, dirty: 1 }, ...(launcherSupported ? { launcher: "exec" } : {}) };

  const variantDefs = [
    { key: "base", label: `isol8 (fast pool, ${launcherSupported ? "exec" : "default"} launcher)` },
    // The two serial round trips are measured step by step above (removing one saves its time);
    // end to end they hide in the noise of a shared machine, so they only run combined.
    { key: "all", label: "what-if: no isAlive inspect + exit code in-band (simulated)", skipIsAlive: true, fakeInspect: true },
  ];
  const executorImage = launcherSupported ? await resolveExecutorImage(ctx.docker, rt) : undefined;
  if (executorImage) {
    variantDefs.push({ key: "executor", label: `launcher executor (${executorImage})`, options: { image: executorImage, launcher: "executor" } });
  }

  const spec = await captureSpec(ctx, rt, img.image);
  const floorDocker = newDocker();
  const floorTracer = traceDocker(floorDocker);
  const inv = runtimeInvocation(rt);
  const variants = [];
  let floor;
  let wipeFloor;
  try {
    floor = await prepareFloor(ctx, spec, rt, "floor-profile");
    // The wipe empties /sandbox: its replay gets a container of its own.
    wipeFloor = await prepareFloor(ctx, spec, rt, "floor-profile-wipe");
    for (const def of variantDefs) {
      const fake = { enabled: Boolean(def.fakeInspect) };
      const docker = newDocker();
      const tracer = traceDocker(docker, { fakeExecInspect: fake });
      tracer.captureStdin = def.key === "base";
      const made = await startEngine(ctx, { ...options, ...def.options }, { docker, marks: true });
      made.observer.skipIsAlive = Boolean(def.skipIsAlive);
      variants.push({ def, made, tracer, execs: [] });
    }
    await Promise.all(variants.map((v) => v.made.engine.start({ prewarm: { runtimes: [rt] } })));
    const base = variants[0];
    // Warm-up (also captures the engine's exact exec for the replay).
    for (const v of variants)
      for (let i = 0; i < 2; i++) {
        await v.made.observer.settled(rt);
        await timedExecute(v.made.engine, v.made.observer, request, expect);
      }
    const captured = base.tracer.captured;
    const replay = captured?.stdin
      ? { argv: captured.Cmd, env: captured.Env ?? [], user: floor.user, workdir: captured.WorkingDir, stdin: captured.stdin }
      : undefined;
    const wipeCmd = base.tracer.capturedWipe;
    const wipeReplay = wipeCmd ? { argv: wipeCmd.Cmd, env: wipeCmd.Env ?? [], user: wipeFloor.user, workdir: wipeCmd.WorkingDir } : undefined;
    const lean = {
      argv: ["sh", "-c", 'cat > "$0" && exec "$@"', inv.file, ...inv.argv],
      env: floor.env,
      user: floor.user,
      stdin: Buffer.from(`${PROGRAMS[rt].code}\n`),
    };
    const floorSides = [
      {
        key: "floor",
        label: "floor: bare exec of the program",
        run: (marks) => bareExec(floorDocker, floor.id, { argv: floor.argv, env: floor.env, user: floor.user, marks }),
      },
      ...(replay
        ? [{ key: "replay", label: "floor: isol8's exact exec replayed (runner script + tar on stdin)", run: () => bareExec(floorDocker, floor.id, replay) }]
        : []),
      { key: "lean", label: "floor: lean runner (code on stdin, cat > file; exec)", run: () => bareExec(floorDocker, floor.id, lean) },
      ...(wipeReplay
        ? [{ key: "wipe", label: "the pool's wipe alone, replayed as a bare exec", expect: "", run: () => bareExec(floorDocker, wipeFloor.id, wipeReplay) }]
        : []),
    ];
    const floorExecs = Object.fromEntries(floorSides.map((s) => [s.key, []]));
    const all = [...variants.map((v) => ({ type: "engine", v })), ...floorSides.map((s) => ({ type: "floor", s }))];
    for (const v of variants) v.tracer.calls.length = 0;
    floorTracer.calls.length = 0;
    const interleavedDeadline = Date.now() + (deadline - Date.now()) * 0.8;
    const guard = loopGuard(interleavedDeadline, ctx.config.profileRuns, Math.min(2, ctx.config.profileRuns));
    for (let i = 0; guard.more(i); i++) {
      for (const item of rotate(all, i)) {
        if (item.type === "engine") {
          const { v } = item;
          await v.made.observer.settled(rt);
          const t0 = now();
          await timedExecute(v.made.engine, v.made.observer, request, expect);
          v.execs.push({ t0, t1: now() });
          await v.made.observer.settled(rt); // its background work stays out of the next side's run
        } else {
          const t0 = now();
          const r = await item.s.run({});
          if (r.exitCode !== 0 || r.stdout !== (item.s.expect ?? expect))
            throw new Error(`${item.s.label} failed: exit ${r.exitCode} ${r.stderr.slice(0, 300)}`);
          floorExecs[item.s.key].push({ t0, t1: now() });
        }
      }
    }
    // Back to back (no settling): does the wipe on release (and the warm start) cost anything when
    // executions follow each other at once? Blocks of 5 consecutive runs per engine, the engines
    // alternating.
    const b2bKeys = ["base", "executor"];
    const b2b = variants.filter((v) => b2bKeys.includes(v.def.key)).map((v) => ({ v, samples: [] }));
    const b2bGuard = loopGuard(deadline, Math.max(10, Math.round(ctx.config.profileRuns / 2)), 5);
    for (let i = 0; b2bGuard.more(b2b[0].samples.length); i++) {
      for (const item of rotate(b2b, i)) {
        await item.v.made.observer.settled(rt);
        for (let k = 0; k < 5; k++) item.samples.push((await timedExecute(item.v.made.engine, item.v.made.observer, request, expect)).ms);
        await item.v.made.observer.settled(rt);
      }
    }
    const inspectSizes = variants[0].tracer.calls.filter((c) => c.bodyRef).map((c) => Buffer.byteLength(JSON.stringify(c.bodyRef)));
    const wipeBase = summarize(base.made.observer.timings.wipe);
    const out = {
      runtime: rt,
      image: img.image,
      truncated: guard.truncated,
      stepNames: STEP_NAMES,
      floor: Object.fromEntries(floorSides.map((s) => [s.key, { label: s.label, ...analyseFloor(floorExecs[s.key], floorTracer) }])),
      variants: variants.map((v) => ({
        key: v.def.key,
        label: v.def.label,
        ...analyseEngine(v.execs, v.tracer, v.made.observer.marks),
        wipe: summarize(v.made.observer.timings.wipe),
        isAliveOp: summarize(v.made.observer.timings.isAlive),
      })),
      containerInspectBytes: inspectSizes.length ? Math.max(...inspectSizes) : null,
      wipe: wipeBase,
      runnerScriptBytes: replay ? Buffer.byteLength(replay.argv.join(" ")) : null,
      payloadBytes: replay ? replay.stdin.length : null,
      backToBack: b2b.map(({ v, samples }) => ({ key: v.def.key, label: v.def.label, ...summarize(samples) })),
    };
    const baseP50 = out.variants[0].total.p50;
    for (const v of out.variants) {
      v.gainP50 = v.total.p50 !== null && baseP50 !== null ? Math.round((baseP50 - v.total.p50) * 10) / 10 : null;
      v.overFloor = ratio(v.total.p50, out.floor.floor.total.p50);
    }
    log(`profile: ${out.variants.map((v) => `${v.key} ${v.total.p50}`).join(", ")}; floor ${out.floor.floor.total.p50}`);
    return out;
  } finally {
    for (const v of variants) await stopEngine(ctx, v.made.engine);
    if (floor) await removeFloor(ctx, floor);
    if (wipeFloor) await removeFloor(ctx, wipeFloor);
  }
}
