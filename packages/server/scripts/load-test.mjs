#!/usr/bin/env node
// Load test of `isol8 serve`: N concurrent clients POST python `print(a*b)` to /execute for a
// fixed time, on loopback only, against a server this script starts (the built CLI) and stops.
// Every answer must be the right product or a clean 429 (code ISOL8_ERR_OVERLOADED with a
// Retry-After). Prints latency percentiles, throughput and counts by status; then stops the
// server with SIGTERM and checks that no container with its labels is left.
//
//   pnpm -r --filter @isol8/core --filter "@isol8/plugin-*" --filter @isol8/server --filter @isol8/remote --filter isol8 run build
//   node packages/server/scripts/load-test.mjs [--clients 16] [--duration 60] [--concurrency 4] [--queue 8] [--pool 4]
import { spawn } from "node:child_process";
import { randomBytes, randomInt } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Pool } from "undici";
import { CONTAINER_LABELS, DockerDriver } from "@isol8/core";

const { values: flags } = parseArgs({
  options: {
    clients: { type: "string", default: "16" },
    duration: { type: "string", default: "60" },
    concurrency: { type: "string", default: "4" },
    queue: { type: "string", default: "8" },
    pool: { type: "string" },
    "backoff-ms": { type: "string", default: "200" },
    cli: { type: "string", default: fileURLToPath(new URL("../../cli/dist/bin.js", import.meta.url)) },
    help: { type: "boolean", default: false },
  },
});
if (flags.help) {
  process.stdout.write(
    "node load-test.mjs [--clients 16] [--duration 60 (s)] [--concurrency 4] [--queue 8] [--pool N] [--backoff-ms 200] [--cli path/to/bin.js]\n",
  );
  process.exit(0);
}
const int = (name, min, max) => {
  const n = Number(flags[name]);
  if (!Number.isInteger(n) || n < min || n > max) {
    process.stderr.write(`--${name}: expected a whole number from ${min} to ${max}, got ${flags[name]}\n`);
    process.exit(2);
  }
  return n;
};
// Bounded by construction: at most 256 clients for at most 10 minutes.
const clients = int("clients", 1, 256);
const durationS = int("duration", 1, 600);
const concurrency = int("concurrency", 1, 64);
const queue = int("queue", 0, 1024);
const pool = flags.pool === undefined ? concurrency : int("pool", 0, 64);
const backoffMs = int("backoff-ms", 0, 10_000);

const apiKey = randomBytes(24).toString("hex");
const dir = await mkdtemp(join(tmpdir(), "isol8-load-"));
const configPath = join(dir, "isol8.config.json");
await writeFile(
  configPath,
  JSON.stringify({
    defaults: { timeoutMs: 30_000, poolSize: { clean: pool, dirty: pool } },
    server: { limits: { maxConcurrent: concurrency, maxQueue: queue, shutdownGraceMs: 20_000 }, prewarm: ["python"] },
  }),
);

// ------------------------------------------------------------------ the server
const child = spawn(process.execPath, [flags.cli, "serve", "--port", "0", "--bind", "127.0.0.1", "--config", configPath], {
  env: { ...process.env, ISOL8_API_KEY: apiKey },
  stdio: ["ignore", "pipe", "pipe"],
});
let serverStderr = "";
child.stderr.on("data", (chunk) => (serverStderr = (serverStderr + chunk).slice(-20_000)));
const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
const logLines = { request: 0, other: [] };
const listening = new Promise((resolve, reject) => {
  createInterface({ input: child.stdout }).on("line", (line) => {
    let entry;
    try {
      entry = JSON.parse(line);
    } catch {
      return;
    }
    if (entry.msg === "request") logLines.request++;
    else logLines.other.push(entry);
    if (entry.msg === "listening") resolve(entry);
  });
  exited.then(({ code }) => reject(new Error(`isol8 serve exited (${code}) before listening:\n${serverStderr}`)));
});
const ready = await listening;
const url = new URL(ready.url);
if (!["127.0.0.1", "localhost", "[::1]"].includes(url.hostname)) throw new Error(`refusing to load anything but loopback, got ${url.hostname}`);
process.stderr.write(
  `server ${ready.url} (pid ${child.pid}); ${clients} clients for ${durationS} s; maxConcurrent ${concurrency}, maxQueue ${queue}, pool ${pool}\n`,
);

// ------------------------------------------------------------------ the clients
const http = new Pool(url.origin, { connections: clients, keepAliveTimeout: 4_000 });
const counts = new Map();
const latencies = { ok: [], rejected: [] };
const failures = [];
const count = (key) => counts.set(key, (counts.get(key) ?? 0) + 1);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const started = performance.now();
const deadline = started + durationS * 1000;

async function client(id) {
  while (performance.now() < deadline) {
    const a = randomInt(1, 1_000_000_000);
    const b = randomInt(1, 1_000_000_000);
    const expected = `${BigInt(a) * BigInt(b)}\n`;
    const t0 = performance.now();
    try {
      const response = await http.request({
        method: "POST",
        path: "/execute",
        headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
        body: JSON.stringify({ request: { runtime: "python", code: `print(${a} * ${b})` } }),
        headersTimeout: 120_000,
        bodyTimeout: 120_000,
      });
      const text = await response.body.text();
      const ms = performance.now() - t0;
      const status = String(response.statusCode);
      if (response.statusCode === 200) {
        const result = JSON.parse(text);
        if (result.stdout === expected && result.exitCode === 0) {
          latencies.ok.push(ms);
          count("200 correct");
        } else {
          count("200 WRONG");
          failures.push({ client: id, expected, got: result.stdout, exitCode: result.exitCode, stderr: result.stderr?.slice(0, 300) });
        }
      } else if (response.statusCode === 429) {
        const body = JSON.parse(text);
        const retryAfter = Number(response.headers["retry-after"]);
        if (body.code === "ISOL8_ERR_OVERLOADED" && Number.isInteger(retryAfter) && retryAfter >= 1) {
          latencies.rejected.push(ms);
          count("429 clean");
        } else {
          count("429 MALFORMED");
          failures.push({ client: id, status: 429, body: text.slice(0, 300), retryAfter: response.headers["retry-after"] });
        }
        await sleep(backoffMs / 2 + Math.random() * backoffMs);
      } else {
        count(`${status} UNEXPECTED`);
        failures.push({ client: id, status, body: text.slice(0, 300) });
      }
    } catch (error) {
      count("transport error");
      failures.push({ client: id, error: String(error) });
    }
  }
}

await Promise.all(Array.from({ length: clients }, (_, i) => client(i)));
const elapsedS = (performance.now() - started) / 1000;
await http.close();

// ------------------------------------------------------------------ stop, and look for leftovers
const stopping = performance.now();
child.kill("SIGTERM");
const exit = await Promise.race([exited, sleep(60_000).then(() => ({ code: "timeout" }))]);
const stopMs = Math.round(performance.now() - stopping);
if (exit.code === "timeout") child.kill("SIGKILL");
const driver = new DockerDriver();
const leftovers = [
  ...(await driver.listContainers({ [CONTAINER_LABELS.ownerPid]: String(child.pid) })),
  ...(await driver.listContainers({ "isol8.server": ready.serverId })),
];
await rm(dir, { recursive: true, force: true });

// ------------------------------------------------------------------ report
const percentile = (values, p) => {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
};
const fmt = (ms) => (Number.isNaN(ms) ? "-" : `${ms.toFixed(0)} ms`);
const total = [...counts.values()].reduce((x, y) => x + y, 0);
const ok = counts.get("200 correct") ?? 0;
const lines = [
  `isol8 load test: ${clients} clients, ${elapsedS.toFixed(1)} s, python print(a*b) on POST /execute (loopback)`,
  `server: maxConcurrent ${concurrency}, maxQueue ${queue}, pool clean/dirty ${pool}/${pool}`,
  `requests: ${total}  (${(total / elapsedS).toFixed(2)}/s)`,
  ...[...counts.entries()].sort().map(([k, v]) => `  ${k.padEnd(18)} ${v}`),
  `throughput (correct answers): ${(ok / elapsedS).toFixed(2)}/s`,
  `latency of correct answers: p50 ${fmt(percentile(latencies.ok, 50))}  p95 ${fmt(percentile(latencies.ok, 95))}  p99 ${fmt(percentile(latencies.ok, 99))}  max ${fmt(percentile(latencies.ok, 100))}`,
  `latency of 429s:            p50 ${fmt(percentile(latencies.rejected, 50))}  p95 ${fmt(percentile(latencies.rejected, 95))}  p99 ${fmt(percentile(latencies.rejected, 99))}`,
  `server request log lines: ${logLines.request}`,
  `shutdown: exit ${exit.code ?? exit.signal} after ${stopMs} ms; ${JSON.stringify(logLines.other.find((l) => l.msg === "stopped") ?? {})}`,
  `containers left with the server's labels: ${leftovers.length}`,
];
process.stdout.write(`${lines.join("\n")}\n`);
if (failures.length)
  process.stdout.write(
    `failures (first 5):\n${failures
      .slice(0, 5)
      .map((f) => `  ${JSON.stringify(f)}`)
      .join("\n")}\n`,
  );
const bad = failures.length > 0 || leftovers.length > 0 || exit.code !== 0;
process.stdout.write(bad ? "RESULT: FAIL\n" : "RESULT: PASS (every response correct or a clean 429; nothing left behind)\n");
process.exit(bad ? 1 : 0);
