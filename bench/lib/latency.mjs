// Section 1–2: warm latency per runtime (fast and secure pools) against `docker run --rm` and the
// bare-exec floor, all in one block per runtime so the three see the same load.
import { PROGRAMS } from "./config.mjs";
import { bareExec, dockerRun, dockerRunArgs, floorSpec, sandboxUser, startContainer } from "./docker.mjs";
import { launcherSupported, makeEngine, resolveImage, runtimeInvocation, timedExecute } from "./engines.mjs";
import { assertNotStopped, log, loopGuard, now, ratio, rotate, summarize } from "./util.mjs";

/** Writes the program file into a floor container once (the floor then runs the same file isol8 runs). */
export async function prepareFloor(ctx, spec, runtime, role = "floor", program = PROGRAMS[runtime]) {
  assertNotStopped(`starting a ${role} container`);
  const id = await startContainer(ctx.docker, floorSpec(spec, ctx.runId, role));
  ctx.containers.add(id);
  const inv = runtimeInvocation(runtime);
  const env = [...(spec.Env ?? []), ...inv.env];
  const user = sandboxUser(spec);
  try {
    const put = await bareExec(ctx.docker, id, { argv: ["sh", "-c", 'cat > "$0"', inv.file], env, user, stdin: Buffer.from(`${program.code}\n`) });
    if (put.exitCode !== 0) throw new Error(`could not write the program into the floor container: ${put.stderr}`);
  } catch (error) {
    await removeFloor(ctx, { id });
    throw error;
  }
  return { id, argv: inv.argv, env, user };
}

export async function floorOnce(ctx, floor, runtime, docker = ctx.docker, program = PROGRAMS[runtime]) {
  const t0 = now();
  const r = await bareExec(docker ?? ctx.docker, floor.id, { argv: floor.argv, env: floor.env, user: floor.user });
  const ms = now() - t0;
  if (r.exitCode !== 0 || r.stdout !== program.expect) throw new Error(`floor exec of ${runtime} failed: exit ${r.exitCode} ${r.stderr.slice(0, 300)}`);
  return ms;
}

export function removeFloor(ctx, floor) {
  ctx.containers.delete(floor.id);
  return ctx.docker
    .getContainer(floor.id)
    .remove({ force: true })
    .catch(() => undefined);
}

/** `docker run --rm` of the same image and program file, with the flags of the engine's own spec. */
function dockerRunCommand(ctx, spec, runtime) {
  const inv = runtimeInvocation(runtime);
  // The program file is written first (the container is new), then the runtime's own command runs it.
  const argv = ["sh", "-c", 'printf "%s\\n" "$ISOL8_BENCH_CODE" > "$0" && exec "$@"', inv.file, ...inv.argv];
  return dockerRunArgs(spec, { runId: ctx.runId, env: [...inv.env, `ISOL8_BENCH_CODE=${PROGRAMS[runtime].code}`], argv, seccompDir: ctx.tmpDir });
}

export async function startEngine(ctx, options, extra = {}) {
  assertNotStopped("starting an engine");
  const made = makeEngine(options, extra);
  ctx.engines.add(made.engine);
  // After the hard stop no engine (re)starts, not even through execute()'s implicit start.
  const start = made.engine.start.bind(made.engine);
  made.engine.start = (startOptions) => {
    assertNotStopped("starting an engine");
    return start(startOptions);
  };
  return made;
}

/** Stops an engine once; a second caller (the hard stop, a section's finally) waits for the same stop. */
export async function stopEngine(ctx, engine) {
  ctx.engines.delete(engine);
  let stopping = ctx.stopping.get(engine);
  if (!stopping) {
    stopping = engine.stop().catch((error) => log(`stopping an engine failed: ${error.message}`));
    ctx.stopping.set(engine, stopping);
  }
  await stopping;
}

export async function latencyForRuntime(ctx, runtime, deadline) {
  const { config } = ctx;
  const out = { runtime };
  const img = await resolveImage(ctx.docker, runtime);
  Object.assign(out, { image: img.image, expectedImage: img.expected, imageFallback: img.fallback });
  if (!img.image) return { ...out, error: img.error };
  if (img.fallback) ctx.notes.add(`${runtime}: the image this engine build expects (${img.expected}) is not built; measured ${img.image} (run isol8 setup)`);
  const request = { runtime, code: PROGRAMS[runtime].code };
  const expect = PROGRAMS[runtime].expect;
  const t0 = Date.now();
  const span = deadline - t0;
  const phaseDeadline = (share) => Date.now() + Math.max(0, deadline - Date.now()) * share;

  // Every engine of the block starts (and fills its pool) at once, before anything is measured:
  // idle pool containers cost nothing, and on a loaded machine the set-up is most of the time.
  // The fast engine uses the default launcher ("auto": the executor when the image carries it);
  // when it does, a second fast engine forces the exec launcher, so both ways of starting a
  // program are measured side by side.
  log(`${runtime}: starting the engines (image ${img.image})`);
  const engines = [];
  const fast = await startEngine(ctx, { image: img.image, poolStrategy: "fast", poolSize: { clean: 1, dirty: 1 } });
  engines.push(fast);
  let fastExec =
    launcherSupported && img.executor
      ? await startEngine(ctx, { image: img.image, poolStrategy: "fast", poolSize: { clean: 1, dirty: 1 }, launcher: "exec" })
      : undefined;
  if (fastExec) engines.push(fastExec);
  const secure = await startEngine(ctx, { image: img.image, poolStrategy: "secure", poolSize: { clean: config.securePool, dirty: 1 } });
  engines.push(secure);
  let floor;
  try {
    await Promise.all(engines.map((m) => m.engine.start({ prewarm: { runtimes: [runtime] } })));
    const spec = fast.observer.spec;
    out.launcher = spec?.Labels?.["isol8.launcher"] ?? "exec";
    if (fastExec && out.launcher === "exec") {
      // "auto" picked exec anyway (e.g. ISOL8_LAUNCHER=exec): the second engine adds nothing.
      await stopEngine(ctx, fastExec.engine);
      engines.splice(engines.indexOf(fastExec), 1);
      fastExec = undefined;
    }
    floor = await prepareFloor(ctx, spec, runtime);

    // (a) The floor and the fast pool(s), interleaved (the order rotates each round). A pool settles
    // before and after each of its runs, so its background work (the wipe) overlaps only its own run.
    let settleMs = 0;
    const sides = [
      { key: "floor", run: () => floorOnce(ctx, floor, runtime) },
      { key: "fast", made: fast },
      ...(fastExec ? [{ key: "fastExec", made: fastExec }] : []),
    ];
    const runSide = async (side) => {
      if (!side.made) return { ms: await side.run() };
      settleMs += await side.made.observer.settled(runtime);
      const r = await timedExecute(side.made.engine, side.made.observer, request, expect);
      settleMs += await side.made.observer.settled(runtime);
      return { ms: r.ms, cold: r.result.coldStart };
    };
    for (let i = 0; i < config.warmup; i++) for (const side of sides) await runSide(side);
    const samples = Object.fromEntries(sides.map((side) => [side.key, []]));
    const colds = Object.fromEntries(sides.map((side) => [side.key, 0]));
    const guard = loopGuard(phaseDeadline(0.5), config.runs, Math.min(3, config.runs));
    for (let i = 0; guard.more(samples.fast.length); i++) {
      for (const side of rotate(sides, i)) {
        const r = await runSide(side);
        samples[side.key].push(r.ms);
        if (r.cold) colds[side.key]++;
      }
    }
    out.floor = summarize(samples.floor);
    out.fast = { ...summarize(samples.fast), coldStarts: colds.fast, truncated: guard.truncated, wanted: config.runs, settleWaitMs: Math.round(settleMs) };
    if (fastExec) out.fastExec = { ...summarize(samples.fastExec), coldStarts: colds.fastExec, truncated: guard.truncated, wanted: config.runs };
    out.wipe = summarize(fast.observer.timings.wipe);
    if (fastExec) out.wipeExec = summarize(fastExec.observer.timings.wipe);
    log(
      `${runtime}: floor p50 ${out.floor.p50} ms, fast (${out.launcher}) p50 ${out.fast.p50} ms${out.fastExec ? `, fast (exec) p50 ${out.fastExec.p50} ms` : ""} (n=${samples.fast.length})`,
    );
    await stopEngine(ctx, fast.engine);
    if (fastExec) await stopEngine(ctx, fastExec.engine);

    // (b) docker run --rm: same image, program file and hardening flags (the engine's own spec).
    // No warm-up run: the image's layers are in the page cache since the engines' containers started.
    const args = dockerRunCommand(ctx, spec, runtime);
    out.dockerRunCommand = `docker ${args.map((a) => (/[\s"'$]/.test(a) ? `'${a.replace(/'/g, "'\\''")}'` : a)).join(" ")}`.replace(
      /seccomp=\S+/,
      "seccomp=<the engine's profile>",
    );
    const runSamples = [];
    const runGuard = loopGuard(phaseDeadline(0.36), config.dockerRuns, Math.min(1, config.dockerRuns));
    while (runGuard.more(runSamples.length)) {
      const r = await dockerRun(args);
      if (r.exitCode !== 0 || r.stdout !== expect) throw new Error(`docker run failed (exit ${r.exitCode}): ${r.stderr.slice(0, 400)}`);
      runSamples.push(r.ms);
    }
    out.dockerRun = { ...summarize(runSamples), truncated: runGuard.truncated, wanted: config.dockerRuns };
    log(`${runtime}: docker run --rm p50 ${out.dockerRun.p50} ms (n=${runSamples.length})`);

    // (c) The secure pool: a fresh container per execution. Paced: each run waits (untimed) until a
    // ready container is there and the last one's removal is done; the creates of replacements go on
    // in the background (the secure pool's own steady cost). A floor sample every 4th run shows that load.
    if (!config.quick && (Date.now() >= deadline || ctx.budget.expired())) {
      out.secure = { skipped: "budget" };
    } else {
      await timedExecute(secure.engine, secure.observer, request, expect); // warm-up
      const secureSamples = [];
      const floorDuring = [];
      let cold = 0;
      let waitMs = 0;
      const secureGuard = loopGuard(deadline, config.secureRuns, Math.min(1, config.secureRuns));
      const tLoop = now();
      for (let i = 0; secureGuard.more(secureSamples.length); i++) {
        if (i % 4 === 0) floorDuring.push(await floorOnce(ctx, floor, runtime));
        waitMs += await secure.observer.settled(runtime);
        const r = await timedExecute(secure.engine, secure.observer, request, expect);
        secureSamples.push(r.ms);
        if (r.result.coldStart) cold++;
      }
      out.secure = {
        ...summarize(secureSamples),
        coldStarts: cold,
        truncated: secureGuard.truncated,
        wanted: config.secureRuns,
        poolSize: config.securePool,
        refillWaitMs: Math.round(waitMs),
        sustainedPerSec: Math.round((secureSamples.length / ((now() - tLoop) / 1000)) * 100) / 100,
        create: summarize(secure.observer.timings.create),
      };
      out.floorDuringSecure = summarize(floorDuring);
      log(`${runtime}: secure p50 ${out.secure.p50} ms (n=${secureSamples.length}, cold ${cold}, create p50 ${out.secure.create.p50} ms)`);
    }
  } finally {
    for (const m of engines) await stopEngine(ctx, m.engine);
    if (floor) await removeFloor(ctx, floor);
  }
  return finish(out, t0, span);
}

function finish(out, t0, span) {
  out.ratios = {
    fastOverFloor: ratio(out.fast?.p50, out.floor?.p50),
    dockerRunOverFast: ratio(out.dockerRun?.p50, out.fast?.p50),
    fastExecOverFloor: ratio(out.fastExec?.p50, out.floor?.p50),
    dockerRunOverFastExec: ratio(out.dockerRun?.p50, out.fastExec?.p50),
    secureOverFloor: ratio(out.secure?.p50, out.floor?.p50),
    dockerRunOverSecure: ratio(out.dockerRun?.p50, out.secure?.p50),
    floorOverDockerRun: ratio(out.floor?.p50, out.dockerRun?.p50),
  };
  out.wallMs = Date.now() - t0;
  out.budgetMs = span;
  return out;
}
