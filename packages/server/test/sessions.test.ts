import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CONTAINER_LABELS } from "@isol8/core";
import { SERVER_LABELS } from "@isol8/server";
import { eventually, KEY_A, KEY_B, serverContainers, startTestServer, type TestServer } from "./helpers.js";

interface Result {
  stdout: string;
  exitCode: number;
  containerId: string;
}

describe("sessions", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ limits: { maxSessionsPerTenant: 2, sessionIdleMs: 60_000 } });
  });
  afterAll(async () => {
    await t.close();
    expect(await serverContainers(t.server.id)).toEqual([]);
  });

  const exec = (key: string, sessionId: string, code: string) => t.call("/execute", { key, json: { request: { runtime: "bash", code }, sessionId } });

  test("a session keeps its container and files between requests; its container carries the tenant and session labels", async () => {
    const first = (await (await exec(KEY_A, "shared-name", "echo a-state > /sandbox/state; echo ok")).json()) as Result;
    const second = (await (await exec(KEY_A, "shared-name", "cat /sandbox/state")).json()) as Result;
    expect(second.stdout).toBe("a-state\n");
    expect(second.containerId).toBe(first.containerId);
    expect(await serverContainers(t.server.id, { [SERVER_LABELS.tenant]: "alpha", [CONTAINER_LABELS.session]: "shared-name" })).toEqual([first.containerId]);
  });

  test("another tenant can neither see, read, write nor delete it; the same id is its own separate session", async () => {
    const mine = (await (await exec(KEY_A, "private-1", "echo secret-a > /sandbox/s; echo")).json()) as Result;

    const listB = (await (await t.call("/sessions", { key: KEY_B })).json()) as { sessions: { id: string }[] };
    expect(listB.sessions.map((s) => s.id)).not.toContain("private-1");
    const listA = (await (await t.call("/sessions", { key: KEY_A })).json()) as { sessions: { id: string; executions: number; runtime: string }[] };
    expect(listA.sessions.find((s) => s.id === "private-1")).toMatchObject({ executions: 1, runtime: "bash" });

    const read = await t.call("/file?sessionId=private-1&path=/sandbox/s", { key: KEY_B });
    expect(read.status).toBe(404);
    expect(await read.json()).toMatchObject({ code: "ISOL8_ERR_NOT_FOUND" });
    const write = await t.call("/file", { key: KEY_B, json: { sessionId: "private-1", path: "/sandbox/s", content: Buffer.from("evil").toString("base64") } });
    expect(write.status).toBe(404);
    const del = await t.call("/session/private-1", { key: KEY_B, method: "DELETE" });
    expect(del.status).toBe(404);
    const cleanup = await t.call("/cleanup", { key: KEY_B, method: "POST" });
    expect(await cleanup.json()).toMatchObject({ ok: true, sessions: 0 });

    // Tenant B using the same id gets a session of its own: another container, no shared state.
    const theirs = (await (await exec(KEY_B, "private-1", "cat /sandbox/s 2>&1; true")).json()) as Result;
    expect(theirs.containerId).not.toBe(mine.containerId);
    expect(theirs.stdout).toMatch(/No such file/);

    // A's session is intact, and A's file API sees it.
    const back = await t.call("/file?sessionId=private-1&path=/sandbox/s", { key: KEY_A });
    expect(Buffer.from(((await back.json()) as { content: string }).content, "base64").toString()).toBe("secret-a\n");
    expect((await t.call("/session/private-1", { key: KEY_B, method: "DELETE" })).status).toBe(200);
    expect(await serverContainers(t.server.id, { [CONTAINER_LABELS.session]: "private-1" })).toEqual([mine.containerId]);
  });

  test("a tenant's session cap is enforced with 429; deleting a session frees its slot and removes its container", async () => {
    const before = (await (await t.call("/sessions", { key: KEY_A })).json()) as { sessions: { id: string }[] };
    expect(before.sessions).toHaveLength(2);
    const refused = await exec(KEY_A, "one-too-many", "echo");
    expect(refused.status).toBe(429);
    expect(await refused.json()).toMatchObject({ code: "ISOL8_ERR_SESSION_LIMIT" });
    // Another tenant is not affected by A's cap.
    expect((await exec(KEY_B, "b-second", "echo")).status).toBe(200);

    const victim = before.sessions[0]!.id;
    const ids = await serverContainers(t.server.id, { [CONTAINER_LABELS.session]: victim, [SERVER_LABELS.tenant]: "alpha" });
    expect(ids).toHaveLength(1);
    expect((await t.call(`/session/${victim}`, { key: KEY_A, method: "DELETE" })).status).toBe(200);
    expect(await serverContainers(t.server.id, { [CONTAINER_LABELS.session]: victim, [SERVER_LABELS.tenant]: "alpha" })).toEqual([]);
    expect((await exec(KEY_A, "one-too-many", "echo now")).status).toBe(200);

    const cleanup = (await (await t.call("/cleanup", { key: KEY_A, method: "POST" })).json()) as { sessions: number };
    expect(cleanup.sessions).toBe(2);
    expect(await serverContainers(t.server.id, { [SERVER_LABELS.tenant]: "alpha" })).toEqual([]);
    // B's session (b-second; B deleted its private-1 above) survives A's cleanup.
    expect(await serverContainers(t.server.id, { [SERVER_LABELS.tenant]: "beta" })).toHaveLength(1);
  });

  test("a session's options are fixed by its first request", async () => {
    expect(
      (await t.call("/execute", { key: KEY_A, json: { request: { runtime: "bash", code: "echo" }, sessionId: "opts", options: { memoryLimit: "256m" } } }))
        .status,
    ).toBe(200);
    expect(
      (await t.call("/execute", { key: KEY_A, json: { request: { runtime: "bash", code: "echo" }, sessionId: "opts", options: { memoryLimit: "256m" } } }))
        .status,
    ).toBe(200);
    const other = await t.call("/execute", {
      key: KEY_A,
      json: { request: { runtime: "bash", code: "echo" }, sessionId: "opts", options: { memoryLimit: "128m" } },
    });
    expect(other.status).toBe(400);
    expect(await other.json()).toMatchObject({ field: "options" });
  });

  test("file calls on a session that does not exist are 404", async () => {
    const response = await t.call("/file?sessionId=never&path=/sandbox/x", { key: KEY_A });
    expect(response.status).toBe(404);
  });
});

describe("idle reaping", () => {
  test("a session unused for sessionIdleMs is stopped and its container removed; an active one is not", async () => {
    const t = await startTestServer({ limits: { sessionIdleMs: 1_500 } });
    try {
      const idle = (await (await t.call("/execute", { json: { request: { runtime: "bash", code: "echo" }, sessionId: "idle-one" } })).json()) as Result;
      expect(await serverContainers(t.server.id, { [CONTAINER_LABELS.session]: "idle-one" })).toEqual([idle.containerId]);
      // A session kept busy past the idle time is not reaped while it runs.
      const busy = t.call("/execute", { json: { request: { runtime: "bash", code: "sleep 4; echo done" }, sessionId: "busy-one" } });
      await eventually(
        async () => ((await (await t.call("/sessions")).json()) as { sessions: { id: string }[] }).sessions.every((s) => s.id !== "idle-one"),
        10_000,
      );
      await eventually(async () => (await serverContainers(t.server.id, { [CONTAINER_LABELS.session]: "idle-one" })).length === 0, 10_000);
      const done = (await (await busy).json()) as Result;
      expect(done.stdout).toBe("done\n");
      const reaped = await t.call("/metrics");
      expect(await reaped.text()).toMatch(/isol8_sessions_reaped_total 1/);
      expect(t.logs.some((l) => l.msg === "session reaped" && l.sessionId === "idle-one" && l.tenant === "alpha")).toBe(true);
      // Then the busy one goes idle and is reaped too.
      await eventually(async () => (await serverContainers(t.server.id, { [CONTAINER_LABELS.session]: "busy-one" })).length === 0, 10_000);
    } finally {
      await t.close();
    }
    expect(await serverContainers(t.server.id)).toEqual([]);
  });
});
