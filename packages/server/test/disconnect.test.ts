import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CONTAINER_LABELS, DockerDriver } from "@isol8/core";
import { SERVER_LABELS } from "@isol8/server";

import { processesOf } from "./processes.js";
import { serve, type Served } from "./serve-process.js";

/**
 * A client that goes away kills its run, in a real `isol8 serve`: the server hands the request's
 * abort to the engine (`executeStream(request, { signal })`), which kills the program and every
 * process it started. For ephemeral runs and for runs in a persistent session (whose container,
 * files and later runs are kept).
 */

const KEY = "disconnect-key-0123456789";
const driver = new DockerDriver();

let dir: string | undefined;
let served: Served;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "isol8-disconnect-"));
  served = await serve(dir, KEY, {
    defaults: { timeoutMs: 10_000, poolSize: { clean: 1, dirty: 1 } },
    server: { policy: { maxTimeoutMs: 300_000 } },
  });
}, 120_000);
afterAll(async () => {
  served.child.kill("SIGTERM");
  expect((await served.exited).code).toBe(0);
  expect(await driver.listContainers({ [SERVER_LABELS.server]: served.serverId })).toEqual([]);
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

const call = (path: string, body: unknown, signal?: AbortSignal) =>
  fetch(`${served.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify(body),
    signal,
  });

/** Command lines of the processes in the server's containers (those with `labels` too) that contain `marker`. */
const processes = async (marker: string, labels: Record<string, string> = {}) =>
  (await processesOf(driver, served.serverId, marker, labels)).map((p) => p.command);

/** Reads the SSE response until `text` has arrived. */
async function readUntil(response: Response, text: string): Promise<void> {
  const reader = response.body!.getReader();
  let seen = "";
  while (!seen.includes(text)) {
    const { value, done } = await reader.read();
    expect(done, `stream ended before ${JSON.stringify(text)}: ${seen}`).toBe(false);
    seen += Buffer.from(value!).toString();
  }
}

describe("isol8 serve: a client that goes away kills its run", () => {
  test("POST /execute: the client aborts, the program is killed", async () => {
    const controller = new AbortController();
    const pending = call("/execute", { request: { runtime: "bash", code: "sleep 981; echo never", timeoutMs: 200_000 } }, controller.signal);
    // Positive control: the program runs, seen in the container.
    await expect.poll(() => processes("sleep 981"), { timeout: 60_000, interval: 250 }).toEqual(["sleep 981"]);
    controller.abort();
    const error = await pending.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DOMException);
    expect((error as DOMException).name).toBe("AbortError");
    // Killed: long before its 200 s time limit.
    await expect.poll(() => processes("sleep 981"), { timeout: 30_000, interval: 250 }).toEqual([]);
    await expect.poll(() => served.lines.some((l) => l.msg === "request" && l.path === "/execute" && l.status === 499), { timeout: 10_000 }).toBe(true);
  });

  test("POST /execute/stream in a session: the client goes away, the program is killed; the session's container and files stay, and it runs again", async () => {
    const sessionId = "disconnect-s1";
    const labels = { [CONTAINER_LABELS.session]: sessionId };
    const first = await call("/execute", { request: { runtime: "bash", code: "echo kept > /sandbox/kept.txt; echo made" }, sessionId });
    expect(first.status).toBe(200);
    const made = (await first.json()) as { stdout: string; containerId: string };
    expect(made.stdout).toBe("made\n");

    const controller = new AbortController();
    const stream = await call(
      "/execute/stream",
      { request: { runtime: "bash", code: "echo started; sleep 983; echo never", timeoutMs: 200_000 }, sessionId },
      controller.signal,
    );
    expect(stream.status).toBe(200);
    await readUntil(stream, "started");
    // Positive control: the program runs, in the session's container.
    await expect.poll(() => processes("sleep 983", labels), { timeout: 30_000, interval: 250 }).toEqual(["sleep 983"]);
    controller.abort();

    // The program is killed: long before its 200 s time limit.
    await expect.poll(() => processes("sleep 983", labels), { timeout: 30_000, interval: 250 }).toEqual([]);
    await expect
      .poll(() => served.lines.some((l) => l.msg === "request" && l.path === "/execute/stream" && l.status === 499 && l.outcome === "cancelled"), {
        timeout: 10_000,
      })
      .toBe(true);

    // The session's container and files stay, and it runs again.
    const containers = await driver.listContainers({ [SERVER_LABELS.server]: served.serverId, ...labels });
    expect(containers.map((c) => c.Id)).toEqual([made.containerId]);
    const again = await call("/execute", { request: { runtime: "bash", code: "cat /sandbox/kept.txt" }, sessionId });
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ stdout: "kept\n", exitCode: 0, containerId: made.containerId });
  });
});
