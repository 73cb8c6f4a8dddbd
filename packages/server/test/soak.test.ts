import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, fetch as fetchWith } from "undici";
import { afterAll, describe, expect, test } from "vitest";
import { DockerDriver } from "@isol8/core";
import { SERVER_LABELS } from "@isol8/server";

import { serve, type Served } from "./serve-process.js";

/**
 * Soak test of a real `isol8 serve` (issue 11 item 8): every request's RequestScope (its
 * AbortController, deadline timer and signals) must be collectable once the request is done. The
 * server runs with --expose-gc and ISOL8_SERVER_DEBUG_HEAP=1, so GET /debug/heap forces a full
 * GC and reports the heap. The leak it guards against kept ~2-3 KB per request.
 */

const KEY = "soak-key-0123456789abcdef";
const MAX_TIMEOUT_MS = 10_000;
/** Requests per measured round, and how many run at once. */
const ROUND = 4_000;
const CONCURRENCY = 8;
/** Heap growth allowed per 1,000 requests, after GC: a quarter of what the leak kept (2 MB per 1,000). */
const BOUND_PER_1000 = 512 * 1024;
/** Real executions per round (they go through the same scope, plus an engine run each). */
const REAL = 20;

let dir: string | undefined;
let served: Served | undefined;
afterAll(async () => {
  if (served && served.child.exitCode === null) {
    served.child.kill("SIGTERM");
    await served.exited;
  }
  if (served) expect(await new DockerDriver().listContainers({ [SERVER_LABELS.server]: served.serverId })).toEqual([]);
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

const headers = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };

/** The server's heap after a forced GC: the least of three readings (a reading taken while something is still being let go is high). */
async function heapUsed(url: string): Promise<number> {
  const readings: number[] = [];
  for (let i = 0; i < 3; i++) {
    const response = await fetch(`${url}/debug/heap`, { headers });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { heapUsed: number };
    expect(body.heapUsed).toBeGreaterThan(0);
    readings.push(body.heapUsed);
  }
  return Math.min(...readings);
}

/** What one kind of request answered: status and the part of the body that proves it took the intended path. */
type Answer = { status: number; mark: string };

/** A request refused by the policy (timeoutMs over the ceiling): no container, but a RequestScope like any execution. */
async function refused(url: string, path: "/execute" | "/execute/stream", dispatcher: Agent): Promise<Answer> {
  const response = await fetchWith(`${url}${path}`, {
    dispatcher,
    method: "POST",
    headers,
    body: JSON.stringify({ request: { runtime: "bash", code: "echo no", timeoutMs: MAX_TIMEOUT_MS + 1 } }),
  });
  const body = (await response.json()) as { code: string; field: string };
  return { status: response.status, mark: `${body.code} ${body.field}` };
}

/** A real execution, alternately buffered and streamed. */
async function real(url: string, i: number, dispatcher: Agent): Promise<Answer> {
  const stream = i % 2 === 1;
  const response = await fetchWith(`${url}${stream ? "/execute/stream" : "/execute"}`, {
    dispatcher,
    method: "POST",
    headers,
    body: JSON.stringify({ request: { runtime: "bash", code: `echo run-${i}` } }),
  });
  const text = await response.text();
  const mark = stream
    ? (/"type":"stdout","data":"(run-\d+)\\n"/.exec(text)?.[1] ?? text.slice(0, 200))
    : (JSON.parse(text) as { stdout: string }).stdout.trim();
  return { status: response.status, mark };
}

/**
 * ROUND requests, CONCURRENCY at a time, REAL real executions spread through refused ones on both
 * routes, over connections of their own that are closed at the end (so the server's heap is read
 * without a request still held by a keep-alive socket).
 */
async function round(url: string): Promise<Answer[]> {
  const dispatcher = new Agent({ connections: CONCURRENCY });
  const answers: Answer[] = new Array(ROUND);
  const every = Math.floor(ROUND / REAL);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < ROUND; i = next++) {
      answers[i] = i % every === 0 ? await real(url, i / every, dispatcher) : await refused(url, i % 2 === 0 ? "/execute" : "/execute/stream", dispatcher);
    }
  };
  try {
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  } finally {
    await dispatcher.close();
  }
  return answers;
}

function expectAnswers(answers: Answer[]): void {
  expect(answers).toHaveLength(ROUND);
  const every = Math.floor(ROUND / REAL);
  const realOnes = answers.filter((_, i) => i % every === 0);
  expect(realOnes).toHaveLength(REAL);
  expect(realOnes).toEqual(realOnes.map((_, k) => ({ status: 200, mark: `run-${k}` })));
  const refusedOnes = answers.filter((_, i) => i % every !== 0);
  expect(refusedOnes).toHaveLength(ROUND - REAL);
  expect(new Set(refusedOnes.map((a) => `${a.status} ${a.mark}`))).toEqual(new Set(["400 ISOL8_ERR_POLICY request.timeoutMs"]));
}

describe("isol8 serve: memory per request", () => {
  test("the heap after GC grows by less than 512 KB per 1,000 requests (refused and real, buffered and streamed)", async () => {
    dir = await mkdtemp(join(tmpdir(), "isol8-soak-"));
    served = await serve(
      dir,
      KEY,
      {
        defaults: { timeoutMs: 5_000, poolSize: { clean: 1, dirty: 1 } },
        server: { requestLog: false, policy: { maxTimeoutMs: MAX_TIMEOUT_MS }, limits: { maxConcurrent: CONCURRENCY } },
      },
      { env: { ISOL8_SERVER_DEBUG_HEAP: "1", NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --expose-gc`.trim() } },
    );
    const url = served.url;

    // Warm-up round: code compiled, pools filled, caches and metric label sets made.
    expectAnswers(await round(url));
    const before = await heapUsed(url);

    expectAnswers(await round(url));
    const after = await heapUsed(url);

    const perThousand = ((after - before) / ROUND) * 1_000;
    console.info(`isol8 serve heap after GC: ${before} -> ${after} bytes over ${ROUND} requests (${Math.round(perThousand)} bytes per 1,000)`);
    expect(perThousand, `heap ${before} -> ${after} bytes over ${ROUND} requests`).toBeLessThan(BOUND_PER_1000);
  }, 120_000);
});
