// Section: the host CPU one warm execution costs, isol8 (fast pool, default launcher: the executor
// with its warm python) against the floor (bare Docker API exec into a running container), in the
// same run: CPU over a window of back-to-back executions ÷ the executions in it. Both meters of
// host-cpu.mjs read every window; each measured window is paired with an idle window of the same
// length right before it (nothing of ours runs), whose rate is the background subtracted.
import { PROGRAMS } from "./config.mjs";
import { addDeltas, cpuDelta, hostCpuSupported, hostSaturated, meterTargets, sampleCpu } from "./host-cpu.mjs";
import { resolveImage, timedExecute } from "./engines.mjs";
import { bareExec } from "./docker.mjs";
import { floorOnce, prepareFloor, removeFloor, startEngine, stopEngine } from "./latency.mjs";
import { assertNotStopped, hardStop, log, now, ratio, rotate, sleep } from "./util.mjs";

const round2 = (x) => (Number.isFinite(x) ? Math.round(x * 100) / 100 : null);

/** One idle window then one measured window of `windowMs`; `run` executes once and is looped. */
async function pairedWindow(targets, windowMs, run, settle) {
  await settle?.();
  const i0 = sampleCpu(targets);
  await sleep(windowMs);
  const i1 = sampleCpu(targets);
  await settle?.();
  const m0 = sampleCpu(targets);
  const end = now() + windowMs;
  let executions = 0;
  while (now() < end && !hardStop.stopped) {
    await run();
    executions++;
  }
  // The work an execution leaves behind (the pool's wipe, the executor's next warm start) is its cost too.
  await settle?.();
  const m1 = sampleCpu(targets);
  return { idle: cpuDelta(i0, i1), measured: cpuDelta(m0, m1), executions };
}

/** Background-corrected per-execution figures of a side from its windows. */
function perExecution(windows) {
  const idle = addDeltas(windows.map((w) => w.idle));
  const measured = addDeltas(windows.map((w) => w.measured));
  const n = windows.reduce((s, w) => s + w.executions, 0);
  // The background is a rate: scaled to the measured windows' length (they run a little longer: settling).
  const scale = idle.wallMs > 0 ? measured.wallMs / idle.wallMs : 1;
  const net = (key) => measured[key] - idle[key] * scale;
  const per = (key) => (n > 0 ? net(key) / n : null);
  return {
    executions: n,
    measured: Object.fromEntries(Object.entries(measured).map(([k, v]) => [k, round2(v)])),
    idle: Object.fromEntries(Object.entries(idle).map(([k, v]) => [k, round2(v)])),
    perExec: {
      attributed: round2(per("attributed")),
      engine: round2(per("engine")),
      daemons: round2(per("daemons")),
      shims: round2(per("shims")),
      containers: round2(per("containers")),
      host: round2(per("host")),
      attributedRaw: round2(n > 0 ? measured.attributed / n : null),
      hostRaw: round2(n > 0 ? measured.host / n : null),
    },
    // How busy the machine was in the idle windows (share of all CPUs): the host-wide meter's noise.
    hostBackground: round2(idle.hostCapacity > 0 ? idle.host / idle.hostCapacity : null),
  };
}

/**
 * What a fresh interpreter costs by itself: `python3 -c pass` started and reaped `starts` times
 * inside the floor's container (its user, environment and limits: site, .pth files and all), the
 * CPU of each from wait4's rusage. No design that starts a new interpreter per execution (as the
 * issue asks: fresh hash seeds, random state) can cost less per execution than this.
 */
const INTERPRETER_PROBE = String.raw`
import os, statistics, sys
devnull = os.open("/dev/null", os.O_RDWR)
costs = []
for _ in range(int(sys.argv[1])):
    pid = os.fork()
    if pid == 0:
        os.dup2(devnull, 1)
        os.execvp("python3", ["python3", "-c", "pass"])
    _, status, usage = os.wait4(pid, 0)
    if status != 0:
        sys.exit("python3 -c pass failed: %d" % status)
    costs.append((usage.ru_utime + usage.ru_stime) * 1000)
print(statistics.median(costs), min(costs), len(costs))
`;

async function interpreterFloor(ctx, floor, starts = 40) {
  const r = await bareExec(ctx.docker, floor.id, { argv: ["python3", "-c", INTERPRETER_PROBE, String(starts)], env: floor.env, user: floor.user });
  if (r.exitCode !== 0) return { error: r.stderr.slice(0, 300) };
  const [p50, min, n] = r.stdout.trim().split(" ").map(Number);
  return { command: "python3 -c pass", p50Ms: round2(p50), minMs: round2(min), starts: n };
}

export async function cpuSection(ctx, deadline) {
  const runtime = ctx.config.runtimes.includes("python") ? "python" : ctx.config.runtimes[0];
  if (!hostCpuSupported()) return { runtime, skipped: "no /proc here (Linux only)" };
  const img = await resolveImage(ctx.docker, runtime);
  if (!img.image) return { runtime, error: img.error };
  const program = PROGRAMS[runtime];
  const request = { runtime, code: program.code };
  const made = await startEngine(ctx, { image: img.image, poolStrategy: "fast", poolSize: { clean: 1, dirty: 1 } });
  let floor;
  try {
    await made.engine.start({ prewarm: { runtimes: [runtime] } });
    const spec = made.observer.spec;
    const launcher = spec?.Labels?.["isol8.launcher"] ?? "exec";
    floor = await prepareFloor(ctx, spec, runtime, "floor-cpu");
    for (let i = 0; i < Math.max(1, ctx.config.warmup); i++) {
      await timedExecute(made.engine, made.observer, request, program.expect);
      await floorOnce(ctx, floor, runtime);
    }
    await made.observer.settled(runtime);
    const listEngineContainers = async () =>
      (await ctx.docker.listContainers({ filters: { label: [`isol8.engine=${made.engine.id}`] } })).map((c) => c.Id).sort();
    const engineContainers = await listEngineContainers();
    if (engineContainers.length === 0) throw new Error("the engine has no running container after its warm-up");
    const sides = {
      isol8: {
        targets: meterTargets(engineContainers),
        run: () => timedExecute(made.engine, made.observer, request, program.expect),
        settle: () => made.observer.settled(runtime),
        windows: [],
      },
      floor: { targets: meterTargets([floor.id]), run: () => floorOnce(ctx, floor, runtime), windows: [] },
    };
    // Rounds of (idle, isol8) and (idle, floor), the order alternating; at least one round, more while time allows.
    const windowMs = ctx.config.cpuMs;
    const rounds = ctx.config.cpuRounds;
    const roundMs = 4 * windowMs + 1000;
    let poolChanged = false;
    for (let r = 0; r < rounds; r++) {
      if (r > 0 && (hardStop.stopped || Date.now() + roundMs > deadline)) break;
      assertNotStopped("a CPU window");
      for (const key of rotate(["isol8", "floor"], r)) {
        const side = sides[key];
        side.windows.push(await pairedWindow(side.targets, windowMs, side.run, side.settle));
        // A container the pool replaced mid-window is not in the metered set: its CPU would be missed.
        if (key === "isol8" && (await listEngineContainers()).join() !== engineContainers.join()) poolChanged = true;
      }
    }
    const isol8 = perExecution(sides.isol8.windows);
    const fl = perExecution(sides.floor.windows);
    const interpreter = runtime === "python" ? await interpreterFloor(ctx, floor) : undefined;
    const out = {
      runtime,
      image: img.image,
      launcher,
      windowMs,
      rounds: sides.isol8.windows.length,
      wantedRounds: rounds,
      containers: { isol8: engineContainers.length, floor: 1 },
      poolChanged,
      isol8,
      floor: fl,
      ratio: ratio(isol8.perExec.attributed, fl.perExec.attributed),
      hostRatio: ratio(isol8.perExec.host, fl.perExec.host),
      hostSaturated: hostSaturated({ isol8, floor: fl }),
      ...(interpreter && { interpreter: { ...interpreter, ratio: ratio(interpreter.p50Ms, fl.perExec.attributed) } }),
      method:
        "attributed: /proc/[pid]/stat utime+stime+cutime+cstime of dockerd, containerd, the containers' shims and their descendants, plus the engine process; background from paired idle windows subtracted",
    };
    log(
      `cpu: isol8 ${out.isol8.perExec.attributed} ms/exec (n=${isol8.executions}), floor ${out.floor.perExec.attributed} ms/exec (n=${fl.executions}), ratio ${out.ratio}; host-wide ${out.isol8.perExec.host} vs ${out.floor.perExec.host}`,
    );
    return out;
  } finally {
    await stopEngine(ctx, made.engine);
    if (floor) await removeFloor(ctx, floor);
  }
}
