// The terminal report: tables of every figure, the profile, and the targets (evaluated in targets.mjs) as PASS/MISS/N/A lines.
import { hostSaturated } from "./host-cpu.mjs";
import { fmtBytes, fmtMs, fmtX } from "./util.mjs";

function table(headers, rows, align) {
  // Short rows (a skipped or failed item) keep their text in the second column and pad the rest.
  const cells = [headers, ...rows].map((r) => headers.map((_, i) => (r[i] === undefined || r[i] === null ? (i < r.length ? "—" : "") : String(r[i]))));
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => ((align?.[i] ?? (i === 0 ? "l" : "r")) === "l" ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [line(cells[0]), widths.map((w) => "─".repeat(w)).join("  "), ...cells.slice(1).map(line)].join("\n");
}

const nOf = (s) => (s ? `${s.n}${s.truncated ? `/${s.wanted}*` : ""}` : "—");

/** fmtMs with its unit: "850 ms", or "14.1s" (fmtMs already writes seconds for 10 s and more). */
const withUnit = (ms) => {
  const text = fmtMs(ms);
  return text.endsWith("s") || text === "—" ? text : `${text} ms`;
};

const launcherLabel = (variant) => (/exec launcher/.test(variant.label) ? "exec" : "default launcher");

/** Rows of the CPU table: one per side, ms of CPU per execution. */
function cpuRows(cpu) {
  return ["floor", "isol8"].map((key) => {
    const s = cpu[key];
    const p = s.perExec;
    return {
      side: key === "floor" ? "floor (bare exec)" : `isol8 fast (${cpu.launcher})`,
      n: s.executions,
      rawMs: s.measured.attributed,
      idleMs: s.idle.attributed,
      ...p,
      hostRawMs: s.measured.host,
      hostIdleMs: s.idle.host,
      hostBackground: s.hostBackground,
    };
  });
}

/** The CPU-per-execution section: both meters, raw and per execution, and the ratio. */
function renderCpu(out, cpu) {
  if (!cpu?.isol8) return;
  out.push(
    `4b. Host CPU per warm execution (${cpu.runtime}, ms of CPU; ${cpu.rounds}/${cpu.wantedRounds} round(s) of an idle and a measured ${cpu.windowMs} ms window per side, back to back at c=1)`,
  );
  const rows = cpuRows(cpu).map((r) => [
    r.side,
    r.n,
    fmtMs(r.rawMs),
    fmtMs(r.idleMs),
    fmtMs(r.attributedRaw),
    fmtMs(r.attributed),
    fmtMs(r.engine),
    fmtMs(r.daemons),
    fmtMs(r.shims),
    fmtMs(r.containers),
    fmtMs(r.hostRawMs),
    fmtMs(r.hostIdleMs),
    fmtMs(r.host),
  ]);
  out.push(
    table(
      [
        "side",
        "execs",
        "CPU raw",
        "idle bg",
        "raw/exec",
        "per exec",
        "engine",
        "dockerd+containerd",
        "shims (+runc, reaped)",
        "containers",
        "host raw",
        "host idle",
        "host/exec",
      ],
      rows,
      ["l"],
    ),
  );
  out.push(
    `  isol8 ÷ floor, CPU per execution: ${fmtX(cpu.ratio)} attributed, ${hostSaturated(cpu) ? "host-wide not usable" : `${fmtX(cpu.hostRatio)} host-wide`}. The machine's background in the idle windows: ${Math.round((cpu.floor.hostBackground ?? 0) * 100)}% of all CPUs${hostSaturated(cpu) ? " (saturated: no headroom for the host-wide meter; its columns are noise in this run)" : " (the host-wide figures are only meaningful when it is near 0)"}.`,
  );
  const fresh = cpu.interpreter;
  if (fresh?.error) out.push(`  A fresh interpreter's own cost: not measured (${fresh.error}).`);
  else if (fresh)
    out.push(
      `  A fresh interpreter by itself (\`${fresh.command}\` started and reaped ${fresh.starts} times in the floor's container, its user and environment): p50 ${fmtMs(fresh.p50Ms)} ms of CPU (min ${fmtMs(fresh.minMs)}) = ${fmtX(fresh.ratio)} the floor's whole execution. A design that starts one per execution costs at least that.`,
    );
  if (cpu.poolChanged)
    out.push("  The engine's pool replaced a container during the measured windows: that container's CPU is missing from the isol8 figure (it is low).");
  out.push(
    "  attributed (the target's figure): utime+stime+cutime+cstime of dockerd, containerd, each container's shim and its descendants (/proc/[pid]/stat), plus the engine process; per exec: (raw − the idle windows' rate × the measured time) ÷ execs. host: busy jiffies of /proc/stat, the same subtraction.",
  );
  out.push("");
}

/** Interpreter contexts: a cell in a live context against a warm ephemeral execution. */
function renderContexts(out, contexts) {
  if (!contexts?.runtimes?.length) return;
  out.push("4d. Interpreter contexts: a cell `x += 1` in a live context vs a warm ephemeral trivial program (fast pool), interleaved (ms)");
  const rows = contexts.runtimes.map((r) =>
    r.error
      ? [r.runtime, "—", "—", "—", `failed: ${String(r.error).slice(0, 60)}`]
      : [r.runtime, nOf(r.cell), `${fmtMs(r.cell.p50)} / ${fmtMs(r.cell.p95)}`, `${fmtMs(r.warm.p50)} / ${fmtMs(r.warm.p95)}`, fmtX(r.ratioP50)],
  );
  out.push(table(["runtime", "n", "cell p50 / p95", "warm execution p50 / p95", "cell ÷ warm (p50)"], rows, ["l"]));
  out.push("  A cell starts no process: it is one round trip to the context's kernel through the executor (the state is checked: x counted every cell).");
  out.push("");
}

/** The CLI's one-shot path against docker run --rm, whole processes. */
function renderCli(out, cli) {
  if (!cli?.cli) return;
  out.push("4c. One-shot from the command line: whole processes, spawn to exit (ms; interleaved)");
  out.push(
    table(
      ["command", "n", "best", "p50", "p95", "÷docker run (p50)"],
      [
        [cli.dockerRunCommand, nOf(cli.dockerRun), fmtMs(cli.dockerRun.min), fmtMs(cli.dockerRun.p50), fmtMs(cli.dockerRun.p95), "1.00×"],
        [cli.command, nOf(cli.cli), fmtMs(cli.cli.min), fmtMs(cli.cli.p50), fmtMs(cli.cli.p95), fmtX(cli.ratioP50)],
      ],
      ["l"],
    ),
  );
  out.push(
    `  The CLI creates and starts its own container, which ends with the CLI's connection (Docker removes it: endWithProcess); after the CLI exits, its container was gone within p50 ${fmtMs(cli.containerGoneAfterExit?.p50)} ms${cli.containersLeftAfterExit ? ` (${cli.containersLeftAfterExit} run(s) left one behind for 20 s)` : ""}. best ÷ best: ${fmtX(cli.ratioBest)}.${cli.cwd ? ` The CLI ran in ${cli.cwd}.` : ""}`,
  );
  out.push("");
}

export function renderReport(results) {
  const out = [];
  const m = results.meta;
  out.push(`isol8 bench — ${m.date} — ${m.machine}`);
  out.push(
    `command: ${m.command} · commit ${m.git?.commit?.slice(0, 10) ?? "?"}${m.gitDirty ? " (uncommitted changes)" : ""} · load ${m.loadStart.join(" ")} → ${m.loadEnd?.join(" ") ?? "?"} · ${Math.round(m.durationMs / 1000)} s`,
  );
  for (const n of m.notes ?? []) out.push(`note: ${n}`);
  out.push("");

  if (Array.isArray(results.latency) && results.latency.length) {
    out.push("1–2. Warm latency of execute() for a trivial program (ms), against docker run --rm and the floor (bare Docker API exec)");
    const rows = [];
    for (const r of results.latency) {
      if (r.error) {
        rows.push([r.runtime, "error", r.error]);
        continue;
      }
      const row = (mode, s, extra = []) => [r.runtime, mode, nOf(s), fmtMs(s?.p50), fmtMs(s?.p95), fmtMs(s?.p99), ...extra];
      rows.push(row("docker run --rm", r.dockerRun, ["", "", ""]));
      rows.push(row("floor (bare exec)", r.floor, ["1.00×", fmtX(r.ratios.floorOverDockerRun ? 1 / r.ratios.floorOverDockerRun : null), ""]));
      rows.push(row(`fast (${r.launcher})`, r.fast, [fmtX(r.ratios.fastOverFloor), fmtX(r.ratios.dockerRunOverFast), `cold ${r.fast?.coldStarts ?? "—"}`]));
      if (r.fastExec)
        rows.push(
          row("fast (exec, forced)", r.fastExec, [fmtX(r.ratios.fastExecOverFloor), fmtX(r.ratios.dockerRunOverFastExec), `cold ${r.fastExec.coldStarts}`]),
        );
      if (r.secure?.skipped) rows.push([r.runtime, "secure", `skipped (${r.secure.skipped})`]);
      else
        rows.push(
          row(`secure (${r.launcher}, pool ${r.secure?.poolSize ?? "?"})`, r.secure, [
            fmtX(r.ratios.secureOverFloor),
            fmtX(r.ratios.dockerRunOverSecure),
            `cold ${r.secure?.coldStarts ?? "—"}/${r.secure?.n ?? "—"}`,
          ]),
        );
    }
    out.push(table(["runtime", "mode", "n", "p50", "p95", "p99", "÷floor", "docker run÷", "notes"], rows, ["l", "l"]));
    out.push("  ÷floor: isol8 p50 over the floor's p50 (lower is better). docker run÷: docker run p50 over isol8's p50 (how many times faster).");
    out.push("  p99 of fewer than 100 samples is their maximum. * the section's time budget cut the series short.");
    for (const r of results.latency.filter((x) => !x.error)) {
      out.push(
        `  ${r.runtime}: image ${r.image}; fast settle wait ${withUnit(r.fast?.settleWaitMs)} total; wipe p50 ${fmtMs(r.wipe?.p50)} ms; secure: create p50 ${fmtMs(r.secure?.create?.p50)} ms, refill wait ${withUnit(r.secure?.refillWaitMs)} total, sustained ${r.secure?.sustainedPerSec ?? "—"}/s, floor during secure p50 ${fmtMs(r.floorDuringSecure?.p50)} ms`,
      );
    }
    const py = results.latency.find((r) => r.dockerRunCommand);
    if (py) out.push(`  docker run baseline: ${py.dockerRunCommand}`);
    out.push("");
  }

  if (Array.isArray(results.cold) && results.cold.length) {
    out.push("3. Cold start: a new engine's first execution (ms)");
    out.push(
      table(
        ["runtime", "n", "total p50", "engine start", "first execute", "coldStart flag"],
        results.cold.map((c) =>
          c.error
            ? [c.runtime, "error", c.error]
            : [c.runtime, c.total.n, fmtMs(c.total.p50), fmtMs(c.engineStart.p50), fmtMs(c.firstExecute.p50), String(c.coldStartFlag)],
        ),
        ["l"],
      ),
    );
    out.push("");
  }

  const tp = results.throughput;
  if (tp?.rows?.length) {
    out.push(`4. Throughput (${tp.runtime}, fast pool sized clean=c dirty=c; engine in its own process) and memory`);
    out.push(
      table(
        [
          "c",
          "isol8 exec/s",
          "×c=1",
          "p50 ms",
          "floor exec/s",
          "floor ×c=1",
          "isol8÷floor",
          "engine RSS",
          "heap used",
          "peak RSS",
          "containers",
          "container mem (each)",
        ],
        tp.rows.map((r) =>
          r.skipped
            ? [r.c, `skipped (${r.skipped})`]
            : r.isol8?.error
              ? [r.c, `error: ${r.isol8.error.slice(0, 120)}`]
              : [
                  r.c,
                  r.isol8.perSec,
                  fmtX(r.isol8Scaling),
                  fmtMs(r.isol8.latency?.p50),
                  r.floor?.perSec ?? "—",
                  fmtX(r.floorScaling),
                  fmtX(r.isol8OverFloor),
                  fmtBytes(r.isol8.engineProcess?.rss),
                  fmtBytes(r.isol8.engineProcess?.heapUsed),
                  fmtBytes(r.isol8.engineProcess?.peakRss),
                  r.isol8.containers?.during?.containers ?? "—",
                  `${fmtBytes(r.isol8.containers?.during?.usage)} (${fmtBytes(r.isol8.containers?.during?.perContainer)})`,
                ],
        ),
      ),
    );
    out.push(
      "  container mem: cgroup memory.usage_in_bytes of the engine's containers mid-window (includes page cache and tmpfs); engine RSS/heap: the engine's process at the end of the window.",
    );
    out.push("");
  }

  renderCpu(out, results.cpu);
  renderCli(out, results.cli);
  renderContexts(out, results.contexts);

  const oh = results.overheads;
  if (oh?.comparisons?.length) {
    out.push(`5. Overheads (${oh.runtime}, fast pool, default launcher unless named; interleaved, each side settled before and after its run; ms)`);
    const rows = [];
    for (const c of oh.comparisons) {
      if (c.skipped || c.error || !c.sides) {
        rows.push([c.name ?? c.key, c.skipped ? `skipped: ${c.skipped}` : `error: ${c.error}`]);
        continue;
      }
      for (const [i, s] of c.sides.entries()) {
        rows.push([
          i === 0 ? c.name : "",
          s.label,
          `${s.n}${c.truncated ? "*" : ""}`,
          fmtMs(s.p50),
          fmtMs(s.p95),
          i === 0 ? "ref" : fmtX(s.overRef),
          i === 0 ? "" : `${s.deltaP50 >= 0 ? "+" : ""}${fmtMs(s.deltaP50)}`,
          s.firstChunk ? `first chunk p50 ${fmtMs(s.firstChunk.p50)}` : (s.note ?? ""),
        ]);
      }
    }
    out.push(table(["comparison", "side", "n", "p50", "p95", "÷ref", "Δp50", "notes"], rows, ["l", "l", "r", "r", "r", "r", "r", "l"]));
    out.push("");
  }

  const pr = results.profile;
  if (pr?.variants) {
    out.push(`6. Profile: where the time goes between the floor and isol8 (${pr.runtime}, ms p50 per step; every Docker API call timed)`);
    const base = pr.variants[0];
    const fl = pr.floor.floor;
    const ex = pr.variants.find((x) => x.key === "executor");
    const steps = [
      "pre",
      "toAcquire",
      "isAlive",
      "gapCreate",
      "execCreate",
      "gapStart",
      "execStart",
      "stream",
      "gapInspect",
      "execInspect",
      "post",
      "runRoundTrip",
      "tail",
    ];
    const cell = (x, k) => (x?.[k]?.n ? fmtMs(x[k].p50) : "");
    const rows = steps.map((k) => [pr.stepNames[k], cell(fl, k), cell(base, k), ...(ex ? [cell(ex, k)] : [])]);
    rows.push(["total", fmtMs(fl.total.p50), fmtMs(base.total.p50), ...(ex ? [fmtMs(ex.total.p50)] : [])]);
    rows.push(["Docker API calls on the critical path (per execution)", fl.apiCalls.p50, base.apiCalls.p50, ...(ex ? [ex.apiCalls.p50] : [])]);
    rows.push(["… time in those calls (incl. the exec stream)", "", fmtMs(base.apiMs.p50), ...(ex ? [fmtMs(ex.apiMs.p50)] : [])]);
    rows.push(["… the rest: engine code (and the executor's round trip)", "", fmtMs(base.nodeMs.p50), ...(ex ? [fmtMs(ex.nodeMs.p50)] : [])]);
    rows.push(["background API calls overlapping the run (pool wipe)", "0", base.backgroundCalls.p50, ...(ex ? [ex.backgroundCalls.p50] : [])]);
    out.push(table(["step", "floor", `isol8 (${launcherLabel(base)})`, ...(ex ? ["isol8 (executor)"] : [])], rows, ["l"]));
    if (ex)
      out.push("  With the executor the program's round trip goes over the container's attach stream (no API call); its wipe is an executor round trip too.");
    out.push(
      `  container inspect response (isAlive): ${fmtBytes(pr.containerInspectBytes)}; runner exec: argv ${fmtBytes(pr.runnerScriptBytes)}, stdin tar ${fmtBytes(pr.payloadBytes)}; wipe exec p50 ${fmtMs(pr.wipe?.p50)} ms`,
    );
    out.push("");
    const wrows = [
      ...Object.values(pr.floor).map((f) => [f.label, f.total.n, fmtMs(f.total.p50), fmtMs(f.total.p95), fmtX(f.total.p50 / fl.total.p50), ""]),
      ...pr.variants.map((v) => [
        v.label,
        v.total.n,
        fmtMs(v.total.p50),
        fmtMs(v.total.p95),
        fmtX(v.overFloor),
        v.key === "base" ? "ref" : `${v.gainP50 >= 0 ? "−" : "+"}${fmtMs(Math.abs(v.gainP50))}`,
      ]),
    ];
    out.push(table(["variant (interleaved)", "n", "p50", "p95", "÷floor", "gain vs isol8"], wrows, ["l"]));
    const v = Object.fromEntries(pr.variants.map((x) => [x.key, x]));
    out.push("  Cuts, as measured here (the fast pool's wipe on release has landed: it is in every engine above, not a what-if):");
    out.push(
      `  - no isAlive inspect on acquire: one serial round trip fewer, p50 ${fmtMs(base.isAlive?.p50)} ms (response ${fmtBytes(pr.containerInspectBytes)})`,
    );
    out.push(`  - exit code in-band instead of the exec inspect: one serial round trip fewer, p50 ${fmtMs(base.execInspect?.p50)} ms`);
    const allGain = v.all?.gainP50 != null ? ` (${v.all.gainP50 >= 0 ? "−" : "+"}${fmtMs(Math.abs(v.all.gainP50))} ms)` : "";
    out.push(
      `  - both (end to end): p50 ${fmtMs(base.total.p50)} → ${fmtMs(v.all?.total.p50)} ms${allGain}; the engine's own time outside Docker calls is ${fmtMs(base.nodeMs?.p50)} ms`,
    );
    if (pr.backToBack?.length) {
      out.push(
        `  Back to back (blocks of 5 consecutive runs, no settling): ${pr.backToBack.map((b) => `${b.key} p50 ${fmtMs(b.p50)} (mean ${fmtMs(b.mean)}, n=${b.n})`).join("; ")}`,
      );
    }
    out.push("");
  }

  const missing = [];
  for (const key of ["throughput", "cpu", "cli", "contexts", "overheads", "profile"]) {
    const r = results[key];
    if (r?.skipped || r?.error) missing.push(`${key}: ${r.skipped ? `skipped (${r.skipped})` : `failed: ${r.error}`}`);
  }
  for (const key of ["latency", "cold"]) if (results[key]?.skipped) missing.push(`${key}: skipped (${results[key].skipped})`);
  if (missing.length) {
    out.push("Not measured in this run:");
    for (const m of missing) out.push(`  ${m}`);
    out.push("");
  }

  out.push("Targets (ratios within this run)");
  for (const t of results.targets) {
    const verdict = t.pass === null ? "N/A " : t.pass ? "PASS" : "MISS";
    out.push(`  ${verdict}  ${t.target}: ${t.shown}${t.info ? " [informational]" : ""}`);
    if (t.note) out.push(`        ${t.note}`);
  }
  out.push("");
  const lo = results.leftovers;
  if (lo)
    out.push(
      `Leftovers: ${lo.containers.length} container(s), ${lo.networks.length} network(s) of this run were still there at the end${lo.containers.length + lo.networks.length ? ` and were removed: ${[...lo.containers, ...lo.networks].join(", ")}` : ""}. Docker containers of this run now: ${lo.after}.`,
    );
  return out.join("\n");
}
