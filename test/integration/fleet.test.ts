// Several `isol8 serve` nodes (the built CLI) behind Debian's HAProxy running deploy/haproxy/haproxy.cfg,
// on loopback, sharing this machine's Docker engine: routing by session, node identity, the typed
// not-found of a session whose node died, readiness on SIGTERM. The short version of
// deploy/test/load.mjs (4 clients x 15 s; the full run is 16 x 60).
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { SessionNotFoundError } from "@isol8/core";
import { RemoteIsol8 } from "isol8";
import { containersOfPid, execute, freePort, haproxyInstalled, startNode } from "../../deploy/test/fleet.mjs";
import { faultScript, runLoad, startFleet, summarize, type Fleet } from "../../deploy/test/load.mjs";

const KEY = `fleet-key-${randomBytes(6).toString("hex")}`;
const CLIENTS = 4;
const SECONDS = 15;
const COUNTER = "echo x >> /sandbox/count; wc -l < /sandbox/count";

let dir: string;
let fleet: Fleet;
const remotes: RemoteIsol8[] = [];

beforeAll(async () => {
  if (!(await haproxyInstalled())) throw new Error("haproxy is not installed: run scripts/bootstrap.sh (it installs Debian's haproxy)");
  dir = await mkdtemp(join(tmpdir(), "isol8-fleet-test-"));
  fleet = await startFleet({ key: KEY, dir });
}, 180_000);

afterAll(async () => {
  await Promise.allSettled(remotes.map((r) => r.stop()));
  await fleet?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 120_000);

const node = (id: string) => fleet.running.get(id)!;
const call = (id: string, path: string, init: RequestInit = {}) =>
  fetch(`${node(id).url}${path}`, { ...init, headers: { authorization: `Bearer ${KEY}`, ...(init.headers as Record<string, string>) } });

/** Which node holds each session (GET /sessions on every node). */
async function holders(ids: string[]): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (const { id } of fleet.nodes) {
    const response = await call(id, "/sessions");
    const { sessions } = (await response.json()) as { sessions: { id: string }[] };
    for (const s of sessions) if (ids.includes(s.id)) found.set(s.id, id);
  }
  return found;
}

describe("isol8 serve nodes behind HAProxy", () => {
  test("a node answers a session it does not hold with ISOL8_ERR_SESSION_NOT_FOUND naming itself, makes none, and makes one only when asked", async () => {
    const id = `direct-${randomBytes(4).toString("hex")}`;
    const body = { request: { runtime: "bash", code: COUNTER }, sessionId: id };
    const missing = await execute(node("node1").url, KEY, body, { "x-isol8-session": id });
    expect(missing.status).toBe(404);
    expect(missing.json).toMatchObject({ code: "ISOL8_ERR_SESSION_NOT_FOUND", details: { sessionId: id, node: "node1" } });
    expect(missing.node).toBe("node1");
    const listed = (await (await call("node1", "/sessions")).json()) as { sessions: { id: string }[] };
    expect(listed.sessions.map((s) => s.id)).not.toContain(id);
    // The same id, unknown to the node, for the file and delete routes.
    const read = await call("node1", `/file?sessionId=${id}&path=/sandbox/count`, { headers: { "x-isol8-session": id } });
    expect(read.status).toBe(404);
    expect(await read.json()).toMatchObject({ code: "ISOL8_ERR_SESSION_NOT_FOUND", details: { node: "node1" } });

    // Positive control on the same path: the request that says so creates it; the next one uses it.
    const created = await execute(node("node1").url, KEY, body, { "x-isol8-session": id, "x-isol8-session-create": "1" });
    expect(created).toMatchObject({ status: 200, node: "node1" });
    expect(created.json.stdout).toBe("1\n");
    const used = await execute(node("node1").url, KEY, body, { "x-isol8-session": id });
    expect(used.json.stdout).toBe("2\n");

    const mismatch = await execute(node("node1").url, KEY, body, { "x-isol8-session": `${id}-other` });
    expect(mismatch.status).toBe(400);
    expect(mismatch.json).toMatchObject({ code: "ISOL8_ERR_INVALID_REQUEST", field: "headers.x-isol8-session" });
    const deleted = await call("node1", `/session/${id}`, { method: "DELETE", headers: { "x-isol8-session": id } });
    expect(deleted.status).toBe(200);
  });

  test("every response names its node in X-Isol8-Node (probes, errors, unknown routes, streams) and /metrics carries it", async () => {
    const ready = await fetch(`${node("node2").url}/ready`);
    expect(ready.status).toBe(200);
    expect(ready.headers.get("x-isol8-node")).toBe("node2");
    expect(await ready.json()).toMatchObject({ ready: true, node: "node2" });
    const unauthorized = await fetch(`${node("node2").url}/sessions`);
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get("x-isol8-node")).toBe("node2");
    const unknown = await call("node2", "/no-such-route");
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get("x-isol8-node")).toBe("node2");
    const stream = await call("node2", "/execute/stream", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ request: { runtime: "bash", code: "echo streamed" } }),
    });
    expect(stream.headers.get("content-type")).toContain("text/event-stream");
    expect(stream.headers.get("x-isol8-node")).toBe("node2");
    expect(await stream.text()).toContain("streamed");
    const metrics = await (await call("node2", "/metrics")).text();
    expect(metrics).toMatch(/^isol8_node_info\{node="node2",version="[^"]+"\} 1$/m);
  });

  test(`${CLIENTS} clients x ${SECONDS} s of mixed traffic through HAProxy: no wrong answer, every session's requests land on one node, every node serves`, async () => {
    const summary = summarize(await runLoad({ url: fleet.haproxy.url, key: KEY, clients: CLIENTS, seconds: SECONDS }));
    expect(summary.stateless).toBeGreaterThan(0);
    expect(summary.sessions).toBeGreaterThan(0);
    expect(summary.wrongAnswers).toBe(0);
    expect(summary.failures).toEqual({});
    expect(summary.affinityViolations).toBe(0);
    expect(summary.sessionsOnMoreThanOneNode).toBe(0);
    expect(Object.keys(summary.okByNode).sort()).toEqual(["node1", "node2", "node3"]);
  }, 180_000);

  test("SIGKILL of a node mid-run: stateless requests keep succeeding, its sessions fail with SessionNotFoundError, the others are untouched; restarted, it reaps what it left and only that", async () => {
    // RemoteIsol8 sessions until every node holds at least one.
    const byNode = new Map<string, RemoteIsol8[]>();
    for (let i = 0; i < 40 && byNode.size < 3; i++) {
      const remote = new RemoteIsol8({ host: fleet.haproxy.url, apiKey: KEY, sessionId: `remote-${randomBytes(4).toString("hex")}` });
      remotes.push(remote);
      expect((await remote.execute({ runtime: "bash", code: COUNTER })).stdout).toBe("1\n");
      const holder = (await holders([remote.sessionId!])).get(remote.sessionId!)!;
      byNode.set(holder, [...(byNode.get(holder) ?? []), remote]);
    }
    expect([...byNode.keys()].sort()).toEqual(["node1", "node2", "node3"]);
    const victim = "node2";
    const victimPid = node(victim).pid;

    const result = await runLoad({
      url: fleet.haproxy.url,
      key: KEY,
      clients: CLIENTS,
      seconds: SECONDS,
      script: faultScript(fleet, { victim, killAt: 4_000, restartAt: 8_000 }),
    });
    const summary = summarize(result);
    expect(result.marks.kill.containersAtKill).toBeGreaterThan(0);
    expect(summary.wrongAnswers).toBe(0);
    expect(summary.affinityViolations).toBe(0);
    expect(summary.kill.statelessFailedAfterKill).toBe(0);
    // Nothing started after the kill fails (only what was in flight on the killed node may).
    expect(summary.kill.failedAfterKill).toEqual({});
    expect(summary.kill.victimSessionSuccessesAfterKill).toBe(0);
    // The load's sessions on the other nodes (how many depends on the hash; the RemoteIsol8 ones below are on each for sure).
    expect(summary.kill.survivorSessionFailuresAfterKill).toBe(0);
    // Restarted: the engine start removed every container the killed process had left.
    expect(summary.kill.leftoverContainersAfterRestart).toBe(0);
    expect(node(victim).pid).not.toBe(victimPid);

    // The victim's RemoteIsol8 session: the typed error, from whichever node its key maps to now.
    const [lost] = byNode.get(victim)!;
    const failure = await lost!.execute({ runtime: "bash", code: COUNTER }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(SessionNotFoundError);
    expect(failure).toMatchObject({ code: "ISOL8_ERR_SESSION_NOT_FOUND", sessionId: lost!.sessionId, status: 404 });
    expect(["node1", "node2", "node3"]).toContain((failure as SessionNotFoundError).node);
    await expect(lost!.getFile("/sandbox/count")).rejects.toBeInstanceOf(SessionNotFoundError);
    // The survivors' RemoteIsol8 sessions: their state intact through the kill and the restart's reaping.
    for (const id of ["node1", "node3"]) {
      const [kept] = byNode.get(id)!;
      expect((await kept!.execute({ runtime: "bash", code: COUNTER })).stdout).toBe("2\n");
      expect((await kept!.getFile("/sandbox/count")).toString()).toBe("x\nx\n");
    }
  }, 240_000);

  // Regression: the start-up reaper took a container's owner for dead when its pid was not alive
  // in the reaper's own PID namespace, so two nodes with one host name in different PID
  // namespaces sharing a Docker engine (two hostNetwork pods sharing a node's Docker socket)
  // removed each other's live containers. Owners now carry their PID namespace (isol8.owner-pidns)
  // and the reaper judges only its own namespace's.
  test("a node started in another PID namespace with the same host name leaves this node's live session container alone", async () => {
    const id = `pidns-${randomBytes(4).toString("hex")}`;
    const body = { request: { runtime: "bash", code: COUNTER }, sessionId: id };
    const created = await execute(node("node1").url, KEY, body, { "x-isol8-session": id, "x-isol8-session-create": "1" });
    expect(created.json.stdout).toBe("1\n");
    const before = await containersOfPid(node("node1").pid);
    expect(before.length).toBeGreaterThan(0);
    const other = await startNode({
      id: "node-pidns",
      port: await freePort(),
      dir,
      key: KEY,
      wrap: ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGTERM"],
    });
    try {
      // Its engine start (reaper included) finished before it listened.
      expect(await containersOfPid(node("node1").pid)).toEqual(expect.arrayContaining(before));
      const used = await execute(node("node1").url, KEY, body, { "x-isol8-session": id });
      expect(used).toMatchObject({ status: 200, json: { stdout: "2\n" } });
    } finally {
      await other.signal("SIGTERM");
      await other.exited;
    }
  }, 120_000);

  test("SIGTERM of a node mid-run: /ready answers 503 first, no request fails, it exits 0", async () => {
    const result = await runLoad({ url: fleet.haproxy.url, key: KEY, clients: CLIENTS, seconds: 12, script: faultScript(fleet, { termAt: 3_000 }) });
    const summary = summarize(result);
    expect(summary.term.readyBefore).toBe(200);
    expect(summary.term.readyAfterSignal).toBe(503);
    expect(summary.term.requestsAfter).toBeGreaterThan(0);
    expect(summary.term.failedAfter).toEqual({});
    expect(summary.failures).toEqual({});
    expect(summary.wrongAnswers).toBe(0);
    expect(summary.term.exit).toEqual({ code: 0, signal: null });
  }, 180_000);
});
