#!/usr/bin/env node
// Re-renders the table and the chart of a finished run from its JSON, without measuring anything:
//   node bench/render.mjs [bench/results/latest.json] [--svg out.svg]
import { readFileSync, writeFileSync } from "node:fs";
import { latencyChart } from "./lib/chart.mjs";
import { renderReport } from "./lib/report.mjs";
import { evaluateTargets } from "./lib/targets.mjs";

const args = process.argv.slice(2);
const svgAt = args.indexOf("--svg");
const svgPath = svgAt >= 0 ? args.splice(svgAt, 2)[1] : undefined;
const file = args[0] ?? "bench/results/latest.json";
const results = JSON.parse(readFileSync(file, "utf8"));
results.targets = evaluateTargets(results);
process.stdout.write(`${renderReport(results)}\n`);
if (svgPath) writeFileSync(svgPath, latencyChart(results));
