// Flags and env for the benchmark: every count is configurable, --quick is a ~1-minute smoke run.
import { parseArgs } from "node:util";

const ALL_RUNTIMES = ["python", "node", "bun", "deno", "bash"];
const ALL_SECTIONS = ["latency", "cold", "throughput", "cpu", "cli", "contexts", "overheads", "profile"];

/** name: [type, full default, quick default, help] */
const OPTIONS = {
  runtimes: ["string", ALL_RUNTIMES.join(","), "python", "runtimes to measure, in order (python weighs more in the time budget)"],
  sections: ["string", ALL_SECTIONS.join(","), ALL_SECTIONS.join(","), `sections to run: ${ALL_SECTIONS.join(",")}`],
  runs: ["number", 100, 10, "warm runs per runtime of the floor and of the fast pool (after warm-up)"],
  "secure-runs": ["number", 100, 4, "warm runs per runtime of the secure pool"],
  "secure-pool": ["number", 4, 2, "secure pool size (ready containers kept per runtime)"],
  "docker-runs": ["number", 20, 2, "`docker run --rm` runs per runtime"],
  warmup: ["number", 3, 1, "warm-up executions before each measured series (not counted)"],
  "cold-runs": ["number", 2, 1, "new engines per runtime for the cold start"],
  concurrency: ["string", "1,2,4,8", "1,4", "throughput concurrency levels (the c=4 target needs 4)"],
  "throughput-ms": ["number", 8000, 1500, "measuring window per throughput level (ms)"],
  "cpu-ms": ["number", 3000, 2500, "length of each CPU window (ms): per round, an idle and a measured window for isol8, the same for the floor"],
  "cpu-rounds": ["number", 3, 1, "rounds of CPU windows (isol8 and floor alternate first)"],
  "cli-runs": ["number", 15, 3, "runs per side of the CLI one-shot comparison (isol8 run -e vs docker run --rm)"],
  "overhead-runs": ["number", 40, 4, "runs per side of each overhead comparison"],
  "profile-runs": ["number", 40, 4, "runs per variant of the profile"],
  budget: [
    "number",
    540,
    100,
    "time budget of the whole run in seconds: sections stop early (and say so) to stay inside it; a hard stop at budget + 25 s stops what still runs and writes the partial results",
  ],
  out: ["string", "bench/results", "bench/results", "output directory (latest.json, latest.svg)"],
  "no-copy-chart": ["boolean", false, false, "do not copy the chart to bench/latest.svg"],
};

function envName(flag) {
  return `BENCH_${flag.toUpperCase().replace(/-/g, "_")}`;
}

export function usage() {
  const lines = [
    "Usage: pnpm bench [--quick] [--flag=value ...]",
    "",
    "  --quick            smoke run (~1.5 minutes on an idle machine): python only, small counts, every section",
    "  --help             this text",
    "",
  ];
  for (const [flag, [, full, quick, help]] of Object.entries(OPTIONS)) {
    lines.push(`  --${flag.padEnd(16)} ${help} (default ${full}; quick ${quick}; env ${envName(flag)})`);
  }
  return lines.join("\n");
}

export function loadConfig(argv = process.argv.slice(2), env = process.env) {
  const spec = { quick: { type: "boolean" }, help: { type: "boolean" } };
  for (const [flag, [type]] of Object.entries(OPTIONS)) spec[flag] = { type: type === "boolean" ? "boolean" : "string" };
  // pnpm passes a literal "--" through when called as `pnpm bench -- --quick`.
  const { values } = parseArgs({ args: argv.filter((a) => a !== "--"), options: spec, strict: true, allowPositionals: false });
  if (values.help) return { help: true };
  const quick = Boolean(values.quick || env.BENCH_QUICK === "1");
  const config = { quick };
  for (const [flag, [type, full, quickDefault]] of Object.entries(OPTIONS)) {
    const raw = values[flag] ?? env[envName(flag)];
    let value = quick ? quickDefault : full;
    if (raw !== undefined) {
      if (type === "number") {
        value = Number(raw);
        if (!Number.isFinite(value) || value < 0) throw new Error(`--${flag}: expected a number, got ${JSON.stringify(raw)}`);
      } else if (type === "boolean") {
        value = raw === true || raw === "1" || raw === "true";
      } else value = raw;
    }
    config[flag.replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = value;
  }
  config.runtimes = String(config.runtimes)
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const r of config.runtimes)
    if (!ALL_RUNTIMES.includes(r)) throw new Error(`--runtimes: unknown runtime ${JSON.stringify(r)} (expected some of ${ALL_RUNTIMES.join(",")})`);
  config.sections = String(config.sections)
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const s of config.sections)
    if (!ALL_SECTIONS.includes(s)) throw new Error(`--sections: unknown section ${JSON.stringify(s)} (expected some of ${ALL_SECTIONS.join(",")})`);
  config.concurrency = String(config.concurrency)
    .split(",")
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0);
  if (config.concurrency.length === 0) throw new Error("--concurrency: expected e.g. 1,2,4,8");
  return config;
}

/** The trivial program of each runtime, as isol8 runs it (a file) and its code. */
export const PROGRAMS = {
  python: { code: "print(1)", expect: "1\n" },
  node: { code: "console.log(1)", expect: "1\n" },
  bun: { code: "console.log(1)", expect: "1\n" },
  deno: { code: "console.log(1)", expect: "1\n" },
  bash: { code: "echo 1", expect: "1\n" },
};
