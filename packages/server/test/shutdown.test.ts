import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, fetch as fetchWith } from "undici";
import { afterAll, describe, expect, test } from "vitest";
import { CONTAINER_LABELS, DockerDriver } from "@isol8/core";
import { SERVER_LABELS } from "@isol8/server";

import { KEY_A, startTestServer } from "./helpers.js";
import { processesOf } from "./processes.js";
import { serve } from "./serve-process.js";

const KEY = "shutdown-key-0123456789";
const GRACE_MS = 6_000;

const post = (url: string, body: unknown) =>
  fetch(`${url}/execute`, { method: "POST", headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" }, body: JSON.stringify(body) });

/**
 * Creates /tmp/go in the container, which a program of the test waits for (`until [ -e /tmp/go ]`),
 * so that program ends. As root (with no capability): the engine kills every process of the
 * sandbox user once the program ends, which would race an exec of that user still exiting.
 */
async function openGate(driver: DockerDriver, containerId: string): Promise<{ exitCode: number; output: string }> {
  let output = "";
  const { exitCode } = await driver.exec(containerId, {
    argv: ["touch", "/tmp/go"],
    user: "0:0",
    onOutput: (_stream, chunk) => void (output += chunk.toString()),
  });
  return { exitCode, output };
}

let dir: string | undefined;
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("graceful shutdown of `isol8 serve`", () => {
  test("SIGTERM: no new work, in-flight work finishes or is cancelled within the grace period, its containers are removed, images kept", async () => {
    dir = await mkdtemp(join(tmpdir(), "isol8-serve-"));
    const served = await serve(dir, KEY, {
      defaults: { timeoutMs: 30_000, poolSize: { clean: 1, dirty: 1 } },
      server: { policy: { maxTimeoutMs: 60_000 }, limits: { shutdownGraceMs: GRACE_MS, maxConcurrent: 4 } },
    });
    const driver = new DockerDriver();

    // Warm up (the pool is filled), then one short run that can finish and one that cannot.
    expect((await post(served.url, { request: { runtime: "python", code: "print(1)" } })).status).toBe(200);
    expect((await post(served.url, { request: { runtime: "bash", code: "echo warm" } })).status).toBe(200);
    const session = await post(served.url, { request: { runtime: "bash", code: "echo s" }, sessionId: "s1" });
    expect(session.status).toBe(200);
    const started = Date.now();
    // The short run finishes only when the test lets it (a file created in its container), after the signal:
    // it is in flight when the server starts draining. The long one cannot finish within the grace period.
    const short = post(served.url, { request: { runtime: "bash", code: "sh -c 'until [ -e /tmp/go ]; do sleep 0.1; done' gate; echo finished" } });
    const long = post(served.url, { request: { runtime: "bash", code: "echo begun; sleep 50; echo never", timeoutMs: 55_000 } });
    await expect.poll(() => processesOf(driver, served.serverId, "until [ -e /tmp/go ]"), { timeout: 60_000, interval: 250 }).toHaveLength(1);
    const [gate] = await processesOf(driver, served.serverId, "until [ -e /tmp/go ]");
    await expect.poll(() => processesOf(driver, served.serverId, "sleep 50"), { timeout: 60_000, interval: 250 }).toHaveLength(1);
    const running = await driver.listContainers({ [CONTAINER_LABELS.ownerPid]: String(served.child.pid) });
    expect(running.length).toBeGreaterThan(0);
    const images = [...new Set(running.map((c) => c.ImageID))];
    expect(images.length).toBeGreaterThan(0);

    const signalled = Date.now();
    served.child.kill("SIGTERM");
    await expect.poll(() => served.lines.some((l) => l.msg === "shutting down"), { timeout: 10_000 }).toBe(true);

    // No new work: the listener is closed, a new connection is refused.
    const fresh = new Agent();
    const refused = await fetchWith(`${served.url}/health`, { dispatcher: fresh }).then(
      (response) => response,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(TypeError);
    expect(((refused as TypeError).cause as NodeJS.ErrnoException).code).toBe("ECONNREFUSED");
    await fresh.close();

    // In-flight work finishes: let the short run end now.
    expect(gate).toBeDefined();
    expect(await openGate(driver, gate!.containerId)).toEqual({ exitCode: 0, output: "" });

    const shortResponse = await short;
    const shortBody = (await shortResponse.json()) as { stdout: string };
    expect(shortResponse.status, JSON.stringify(shortBody)).toBe(200);
    expect(shortBody.stdout).toBe("finished\n");

    const longResponse = await long;
    expect(longResponse.status).toBe(503);
    expect(await longResponse.json()).toMatchObject({ code: "ISOL8_ERR_SHUTTING_DOWN" });
    const cancelledAt = Date.now() - signalled;
    expect(cancelledAt).toBeGreaterThanOrEqual(GRACE_MS - 500);
    expect(cancelledAt).toBeLessThan(GRACE_MS + 8_000);

    const exit = await served.exited;
    expect(exit.code).toBe(0);
    expect(exit.at - signalled).toBeLessThan(GRACE_MS + 15_000);
    expect(Date.now() - started).toBeLessThan(50_000);
    const stopped = served.lines.find((l) => l.msg === "stopped");
    expect(stopped).toMatchObject({ graceful: false, cancelled: 1 });

    // Its containers are removed: neither by owner pid nor by the server's label is one left; images kept.
    expect(await driver.listContainers({ [CONTAINER_LABELS.ownerPid]: String(served.child.pid) })).toEqual([]);
    expect(await driver.listContainers({ [SERVER_LABELS.server]: served.serverId })).toEqual([]);
    for (const id of images)
      expect(
        await driver.docker
          .getImage(id)
          .inspect()
          .then(
            () => true,
            () => false,
          ),
        id,
      ).toBe(true);

    // One JSON log line per request, with the fields operators need.
    const logged = served.lines.filter((l) => l.msg === "request" && l.path === "/execute");
    expect(logged).toHaveLength(5);
    for (const line of logged) expect(Object.keys(line)).toEqual(expect.arrayContaining(["id", "tenant", "runtime", "status", "durationMs"]));
  });

  test("while draining, /health says draining and a request reaching the server gets 503 ISOL8_ERR_SHUTTING_DOWN", async () => {
    // In process: after the signal the listener refuses new connections, so requests are handed to the app directly.
    const t = await startTestServer({ limits: { shutdownGraceMs: 60_000 } });
    const inflight = t.call("/execute", {
      json: { request: { runtime: "bash", code: "sh -c 'until [ -e /tmp/go ]; do sleep 0.1; done' gate; echo finished" } },
    });
    const driver = new DockerDriver();
    await expect.poll(() => processesOf(driver, t.server.id, "until [ -e /tmp/go ]"), { timeout: 60_000, interval: 250 }).toHaveLength(1);
    const closing = t.server.close({ graceMs: 60_000 });
    expect(t.server.draining).toBe(true);

    const health = await t.server.app.fetch(new Request(`${t.url}/health`));
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: "draining", ready: false });

    const refused = await t.server.app.fetch(
      new Request(`${t.url}/execute`, {
        method: "POST",
        headers: { authorization: `Bearer ${KEY_A}`, "content-type": "application/json" },
        body: JSON.stringify({ request: { runtime: "bash", code: "echo late" } }),
      }),
    );
    expect(refused.status).toBe(503);
    expect(await refused.json()).toMatchObject({ code: "ISOL8_ERR_SHUTTING_DOWN" });

    // The in-flight request still finishes, and the shutdown is graceful.
    const [gate] = await processesOf(driver, t.server.id, "until [ -e /tmp/go ]");
    expect(gate).toBeDefined();
    expect(await openGate(driver, gate!.containerId)).toEqual({ exitCode: 0, output: "" });
    const response = await inflight;
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ stdout: "finished\n", exitCode: 0 });
    expect(await closing).toMatchObject({ graceful: true, cancelled: 0, leftoverContainers: 0 });
  });
});
