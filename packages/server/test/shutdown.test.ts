import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { CONTAINER_LABELS, DockerDriver } from "@isol8/core";
import { SERVER_LABELS } from "@isol8/server";

import { serve } from "./serve-process.js";

const KEY = "shutdown-key-0123456789";
const GRACE_MS = 6_000;

const post = (url: string, body: unknown) =>
  fetch(`${url}/execute`, { method: "POST", headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" }, body: JSON.stringify(body) });

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
    const short = post(served.url, { request: { runtime: "bash", code: "sleep 1; echo finished" } });
    const long = post(served.url, { request: { runtime: "bash", code: "echo begun; sleep 50; echo never", timeoutMs: 55_000 } });
    await new Promise((r) => setTimeout(r, 1_000));
    const running = await driver.listContainers({ [CONTAINER_LABELS.ownerPid]: String(served.child.pid) });
    expect(running).not.toHaveLength(0);
    const images = [...new Set(running.map((c) => c.ImageID))];

    const signalled = Date.now();
    served.child.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 300));

    // Draining: the health check says so, and new work is refused.
    const health = await fetch(`${served.url}/health`).catch(() => undefined);
    if (health) expect([503]).toContain(health.status);
    const refused = await post(served.url, { request: { runtime: "bash", code: "echo late" } }).catch(() => undefined);
    if (refused) expect(refused.status).toBe(503);

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

    // Nothing of its own is left: neither by owner pid nor by the server's label; images kept.
    expect(await driver.listContainers({ [CONTAINER_LABELS.ownerPid]: String(served.child.pid) })).toEqual([]);
    expect(await driver.listContainers({ [SERVER_LABELS.server]: served.serverId })).toEqual([]);
    for (const id of images) expect(await driver.docker.getImage(id).inspect().then(() => true, () => false), id).toBe(true);

    // One JSON log line per request, with the fields operators need.
    const logged = served.lines.filter((l) => l.msg === "request" && l.path === "/execute");
    expect(logged.length).toBeGreaterThanOrEqual(4);
    for (const line of logged) expect(Object.keys(line)).toEqual(expect.arrayContaining(["id", "tenant", "runtime", "status", "durationMs"]));
  });
});
