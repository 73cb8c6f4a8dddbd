#!/usr/bin/env node
// run_code over MCP stdio vs DockerIsol8.execute, in one run on this machine (loopback Docker only, bounded).
//
//   node bench/mcp-overhead.mjs [--iterations 40] [--warmup 5]
//
// Needs the built packages and images: `pnpm run build && node packages/cli/dist/bin.js setup`.
//
// Both paths run `print(1)` in python on a warm engine of their own (the default fast pool):
//   direct  DockerIsol8.execute in this process
//   mcp     tools/call run_code through the MCP SDK's client to `isol8 mcp` (the built CLI) over stdio
// interleaved round by round so the machine's load hits both alike. Prints p50/p95 of each and the
// overhead at p50 (difference and ratio); the target is +5 ms at p50.
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { DockerIsol8 } from "isol8";
import { percentile as sortedPercentile } from "./lib/util.mjs";

const { values } = parseArgs({ options: { iterations: { type: "string", default: "40" }, warmup: { type: "string", default: "5" } } });
const N = Math.min(500, Math.max(5, Number(values.iterations)));
const WARMUP = Math.min(50, Math.max(1, Number(values.warmup)));
const DEADLINE = setTimeout(() => {
  console.error("bench: gave up after 10 minutes");
  process.exit(2);
}, 10 * 60_000);
DEADLINE.unref();

// The SDK is a dependency of @isol8/mcp, not of the workspace root: resolve it from there.
const sdk = createRequire(fileURLToPath(new URL("../packages/mcp/package.json", import.meta.url)));
const { Client } = await import(pathToFileURL(sdk.resolve("@modelcontextprotocol/sdk/client/index.js")).href);
const { StdioClientTransport } = await import(pathToFileURL(sdk.resolve("@modelcontextprotocol/sdk/client/stdio.js")).href);
const CLI = fileURLToPath(new URL("../packages/cli/dist/bin.js", import.meta.url));

const request = { runtime: "python", code: "print(1)" };
const engine = new DockerIsol8();
await engine.start({ prewarm: { runtimes: ["python"] } });
const client = new Client({ name: "isol8-bench", version: "1.0.0" });
await client.connect(new StdioClientTransport({ command: process.execPath, args: [CLI, "mcp"], stderr: "ignore" }));

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function timed(work) {
  const started = performance.now();
  await work();
  return performance.now() - started;
}
const direct = async () => {
  const result = await engine.execute(request);
  if (result.stdout !== "1\n") throw new Error(`direct: unexpected stdout ${JSON.stringify(result.stdout)}`);
};
const mcp = async () => {
  const result = await client.callTool({ name: "run_code", arguments: request });
  if (result.isError || result.structuredContent?.stdout !== "1\n") throw new Error(`mcp: unexpected result ${JSON.stringify(result)}`);
};

const samples = { direct: [], mcp: [] };
try {
  for (let i = 0; i < WARMUP + N; i++) {
    // Alternate which goes first; pause so each pool has finished its wipe and warm start.
    const order = i % 2 === 0 ? ["direct", "mcp"] : ["mcp", "direct"];
    for (const name of order) {
      await sleep(60);
      const ms = await timed(name === "direct" ? direct : mcp);
      if (i >= WARMUP) samples[name].push(ms);
    }
  }
} finally {
  await client.close().catch(() => undefined);
  await engine.stop();
}

const percentile = (values, p) =>
  sortedPercentile(
    [...values].sort((a, b) => a - b),
    p,
  );
const fmt = (ms) => `${ms.toFixed(1)} ms`;
const d50 = percentile(samples.direct, 50);
const m50 = percentile(samples.mcp, 50);
console.log(`python print(1), ${N} samples each (after ${WARMUP} warm-up rounds), interleaved`);
console.log(`  DockerIsol8.execute      p50 ${fmt(d50)}  p95 ${fmt(percentile(samples.direct, 95))}`);
console.log(`  run_code over MCP stdio  p50 ${fmt(m50)}  p95 ${fmt(percentile(samples.mcp, 95))}`);
console.log(
  `  overhead at p50: ${m50 - d50 >= 0 ? "+" : ""}${fmt(m50 - d50)} (ratio ${(m50 / d50).toFixed(2)}x); target <= +5 ms: ${m50 - d50 <= 5 ? "met" : "not met"}`,
);
