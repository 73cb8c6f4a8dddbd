// The targets of issue 15 (and the earlier ones, informational), evaluated as ratios within one run:
// PASS, MISS, or N/A when the run did not measure the figure (with the reason).
import { hostSaturated } from "./host-cpu.mjs";
import { fmtMs, fmtX } from "./util.mjs";

const WARM_RUNTIMES = ["python", "node", "bun", "deno", "bash"];
const WARM_MAX = 0.15;
const TRUE_ROUND_TRIP_MAX = 3;
const CPU_MAX = 0.3;
const THROUGHPUT_MIN = 6;
const CLI_MAX = 1.3;
const CELL_MAX = 0.5;

const verdict = (value, ok) => (value === null || value === undefined || !Number.isFinite(value) ? null : ok(value));

/** Why a section's figure is missing: skipped, failed, or not run at all. */
function whyMissing(results, key) {
  const r = results[key];
  if (!r) return `the ${key} section did not run (--sections)`;
  if (r.skipped) return `the ${key} section was skipped (${r.skipped})`;
  if (r.error) return `the ${key} section failed: ${String(r.error).slice(0, 160)}`;
  return "not measured";
}

function warmTargets(results) {
  const lat = Array.isArray(results.latency) ? results.latency : [];
  return WARM_RUNTIMES.map((runtime) => {
    const r = lat.find((x) => x.runtime === runtime);
    const target = `${runtime}: warm p50 ÷ the bare-exec floor ≤ ${WARM_MAX}× (fast pool, default launcher)`;
    if (!r) {
      const sections = results.meta?.config?.sections;
      const why =
        !Array.isArray(results.latency) || (sections && !sections.includes("latency"))
          ? "the latency section did not run (--sections)"
          : results.meta?.config?.quick
            ? "not measured (--quick measures python only)"
            : "not measured (--runtimes)";
      return { id: `${runtime}-warm-vs-floor`, target, value: null, shown: why, pass: null };
    }
    if (r.error) return { id: `${runtime}-warm-vs-floor`, target, value: null, shown: `not measured: ${r.error.slice(0, 160)}`, pass: null };
    const value = r.ratios?.fastOverFloor ?? null;
    return {
      id: `${runtime}-warm-vs-floor`,
      target,
      value,
      shown: `${fmtMs(r.fast?.p50)} ms / ${fmtMs(r.floor?.p50)} ms = ${fmtX(value)} (${r.launcher})`,
      pass: verdict(value, (v) => v <= WARM_MAX),
    };
  });
}

function trueRoundTripTarget(results) {
  const target = `python: warm p50 ≤ ${TRUE_ROUND_TRIP_MAX}× the executor's \`true\` round trip (launcher alone, back to back)`;
  const py = Array.isArray(results.latency) ? results.latency.find((r) => r.runtime === "python" && !r.error) : undefined;
  const rt = results.overheads?.comparisons?.find((c) => c.key === "executor-roundtrip" && c.sides)?.sides?.[0];
  if (!py || !rt) {
    const sections = results.meta?.config?.sections;
    const why = !py
      ? sections && !sections.includes("latency")
        ? "the latency section did not run (--sections)"
        : "python's warm latency was not measured"
      : results.overheads?.comparisons
        ? "the executor round trip was not measured (no executor image?)"
        : whyMissing(results, "overheads");
    return { id: "python-vs-true", target, value: null, shown: why, pass: null };
  }
  const value = rt.p50 > 0 ? Math.round((py.fast.p50 / rt.p50) * 100) / 100 : null;
  return {
    id: "python-vs-true",
    target,
    value,
    shown: `${fmtMs(py.fast?.p50)} ms / \`true\` ${fmtMs(rt.p50)} ms = ${fmtX(value)}`,
    pass: verdict(value, (v) => v <= TRUE_ROUND_TRIP_MAX),
  };
}

function cpuTarget(results) {
  const target = `host CPU per warm python execution ÷ the floor's ≤ ${CPU_MAX}×`;
  const c = results.cpu;
  if (!c?.isol8) return { id: "cpu-vs-floor", target, value: null, shown: whyMissing(results, "cpu"), pass: null };
  return {
    id: "cpu-vs-floor",
    target,
    value: c.ratio,
    shown: `${fmtMs(c.isol8.perExec.attributed)} ms / ${fmtMs(c.floor.perExec.attributed)} ms of CPU = ${fmtX(c.ratio)} (attributed; ${hostSaturated(c) ? "host-wide meter saturated" : `host-wide ${fmtMs(c.isol8.perExec.host)} / ${fmtMs(c.floor.perExec.host)} ms = ${fmtX(c.hostRatio)}`}, background ${Math.round((c.floor.hostBackground ?? 0) * 100)}% of the CPUs)${c.interpreter?.ratio != null ? `; a fresh interpreter alone: ${fmtMs(c.interpreter.p50Ms)} ms = ${fmtX(c.interpreter.ratio)}` : ""}`,
    pass: verdict(c.ratio, (v) => v <= CPU_MAX),
  };
}

function throughputTarget(results) {
  const target = `throughput at c=4 ÷ the floor's at c=4 ≥ ${THROUGHPUT_MIN}×`;
  const row = results.throughput?.rows?.find((r) => r.c === 4);
  if (!row || row.skipped || row.isol8?.error || row.floor?.error) {
    const why = !results.throughput?.rows
      ? whyMissing(results, "throughput")
      : !row
        ? "c=4 not measured (--concurrency)"
        : row.skipped
          ? `c=4 skipped (${row.skipped})`
          : `c=4 failed: ${String(row.isol8?.error ?? row.floor?.error).slice(0, 160)}`;
    return { id: "throughput-c4-vs-floor", target, value: null, shown: why, pass: null };
  }
  // The bound a fresh interpreter per execution puts on it: every CPU busy starting interpreters and nothing else.
  const fresh = results.cpu?.interpreter?.p50Ms;
  const cpus = results.meta?.cpus;
  const ceiling = fresh > 0 && cpus > 0 ? (cpus * 1000) / fresh : null;
  return {
    id: "throughput-c4-vs-floor",
    target,
    value: row.isol8OverFloor,
    shown:
      `${row.isol8.perSec}/s / ${row.floor.perSec}/s = ${fmtX(row.isol8OverFloor)}` +
      (ceiling
        ? `; bound for a fresh interpreter per execution: ${cpus} CPUs ÷ ${fmtMs(fresh)} ms = ${Math.round(ceiling)}/s = ${fmtX(ceiling / row.floor.perSec)}`
        : ""),
    pass: verdict(row.isol8OverFloor, (v) => v >= THROUGHPUT_MIN),
  };
}

function cliTarget(results) {
  const target = `\`isol8 run -e 'print(1)'\` wall ÷ \`docker run --rm <same image> python3 -c 'print(1)'\` ≤ ${CLI_MAX}× (p50)`;
  const c = results.cli;
  if (!c?.cli) return { id: "cli-vs-docker-run", target, value: null, shown: whyMissing(results, "cli"), pass: null };
  return {
    id: "cli-vs-docker-run",
    target,
    value: c.ratioP50,
    shown: `${fmtMs(c.cli.p50)} ms / ${fmtMs(c.dockerRun.p50)} ms = ${fmtX(c.ratioP50)} (best of ${c.cli.n}: ${fmtMs(c.cli.min)} / ${fmtMs(c.dockerRun.min)} ms = ${fmtX(c.ratioBest)})`,
    pass: verdict(c.ratioP50, (v) => v <= CLI_MAX),
  };
}

/** Earlier targets, kept as one informational line each (issue 7's executor figures, docker run ÷ isol8, the exec launcher). */
function informational(results) {
  const out = [];
  const lat = (Array.isArray(results.latency) ? results.latency : []).filter((r) => !r.error);
  if (lat.length) {
    const all = lat.map((r) => r.ratios?.dockerRunOverFast);
    out.push({
      id: "docker-run-over-fast",
      target: "(earlier) every runtime's warm p50 ≥ 3.5× faster than docker run --rm",
      value: Math.min(...all.filter(Number.isFinite)),
      shown: lat.map((r) => `${r.runtime} ${fmtX(r.ratios?.dockerRunOverFast)}`).join(", "),
      pass: all.every(Number.isFinite) ? all.every((v) => v >= 3.5) : null,
      info: true,
    });
    const forced = lat.filter((r) => r.fastExec);
    if (forced.length)
      out.push({
        id: "exec-launcher-vs-floor",
        target: "(earlier) exec launcher forced: warm p50 ≤ 1.3× the floor",
        value: null,
        shown: forced.map((r) => `${r.runtime} ${fmtX(r.ratios.fastExecOverFloor)}`).join(", "),
        pass: forced.every((r) => r.ratios.fastExecOverFloor != null) ? forced.every((r) => r.ratios.fastExecOverFloor <= 1.3) : null,
        info: true,
      });
  }
  const rt = results.overheads?.comparisons?.find((c) => c.key === "executor-roundtrip" && c.sides)?.sides;
  if (rt) {
    const [b2b, idle, ping] = rt;
    out.push({
      id: "executor-true",
      target: "(issue 7) executor round trip of `true` < 3 ms (launcher, back to back)",
      value: b2b.p50,
      shown: `${fmtMs(b2b.p50)} ms (from idle ${fmtMs(idle?.p50)} ms; PING ${fmtMs(ping?.p50)} ms)`,
      pass: b2b.p50 != null ? b2b.p50 < 3 : null,
      info: true,
    });
  }
  const tr = results.overheads?.comparisons?.find((c) => c.key === "launcher-true" && c.sides)?.sides?.find((s) => s.label === "executor");
  if (tr)
    out.push({
      id: "executor-true-execute",
      target: "(issue 7, for reference) bash `true` through execute(): the whole engine around it",
      value: tr.p50,
      shown: `${fmtMs(tr.p50)} ms`,
      pass: null,
      info: true,
    });
  return out;
}

/** Evaluates the targets (ratios within this run); the c=4 ÷ c=1 target is retired (it measured the machine's CPU count). */
/** Issue 13: a cell in a live context ÷ a warm ephemeral trivial program, measured interleaved in the contexts section. */
function cellTargets(results) {
  return ["python", "node"].map((runtime) => {
    const id = `${runtime}-cell-vs-warm`;
    const target = `${runtime}: a context cell \`x += 1\` p50 ÷ a warm ephemeral ${runtime === "python" ? "print(1)" : "console.log(1)"} p50 ≤ ${CELL_MAX}×`;
    const r = results.contexts?.runtimes?.find((x) => x.runtime === runtime);
    if (!r)
      return {
        id,
        target,
        value: null,
        shown: results.contexts ? "not measured (--quick measures python only, or --runtimes)" : whyMissing(results, "contexts"),
        pass: null,
      };
    if (r.error) return { id, target, value: null, shown: `not measured: ${r.error.slice(0, 160)}`, pass: null };
    return {
      id,
      target,
      value: r.ratioP50,
      shown: `${fmtMs(r.cell?.p50)} ms / ${fmtMs(r.warm?.p50)} ms = ${fmtX(r.ratioP50)} (${r.cell?.n} each, interleaved)`,
      pass: verdict(r.ratioP50, (v) => v <= CELL_MAX),
    };
  });
}

export function evaluateTargets(results) {
  return [
    ...warmTargets(results),
    trueRoundTripTarget(results),
    cpuTarget(results),
    throughputTarget(results),
    cliTarget(results),
    ...cellTargets(results),
    ...informational(results),
  ];
}
