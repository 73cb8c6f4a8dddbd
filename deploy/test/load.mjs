#!/usr/bin/env node
// Load through HAProxy onto several `isol8 serve` nodes: N clients x T seconds of mixed stateless
// and session traffic, every answer checked, and the node of every answer (X-Isol8-Node) recorded.
//
//   node deploy/test/load.mjs [--clients 16] [--seconds 60] [--phases one,three,faults] [--balancer haproxy|nginx]
//
// Phases: "one" (one node behind HAProxy), "three" (three nodes), "faults" (three nodes; one
// killed with SIGKILL a quarter in, restarted, and another stopped with SIGTERM later). Needs the
// built CLI (pnpm run build), Debian's haproxy and the runtime images (isol8 setup). One Docker
// host runs every node: the throughput of three nodes against one proves that the fleet is
// correct, not that it is bigger (expect about 1x).
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { containersOfPid, execute, freePort, startHaproxy, startNginx, startNode, waitForState } from "./fleet.mjs";

const SESSION_CODE = "echo x >> /sandbox/count; wc -l < /sandbox/count";
/** Requests a session serves before the client deletes it and starts another (long enough that sessions are alive at a fault). */
const SESSION_LENGTH = 20;
const NOT_FOUND = "ISOL8_ERR_SESSION_NOT_FOUND";

/**
 * Runs `clients` loops for `seconds`: each picks at random a stateless execution (bash arithmetic,
 * the product checked) or the next request of its session (a counter file in /sandbox: the count
 * must be exactly the number of requests the session served, so a silent new session is a wrong
 * answer). `alwaysCreate`: every request may create its session. `script` entries run at their time (ms from the start) alongside the clients; their
 * results land in `marks`.
 */
export async function runLoad({ url, key, clients, seconds, script = [], seed = randomBytes(3).toString("hex"), alwaysCreate = false }) {
  const t0 = Date.now();
  const now = () => Date.now() - t0;
  const end = seconds * 1000;
  const records = [];
  const sessions = [];
  const marks = {};
  let serial = 0;

  const client = async (c) => {
    let session;
    while (now() < end) {
      if (Math.random() < 0.5) {
        const a = Math.floor(Math.random() * 100_000);
        const b = Math.floor(Math.random() * 100_000);
        const start = now();
        const r = await execute(url, key, { request: { runtime: "bash", code: `echo $((${a} * ${b}))` } });
        const ok = r.status === 200 && r.json?.exitCode === 0 && r.json?.stdout === `${a * b}\n`;
        records.push({
          kind: "stateless",
          start,
          end: now(),
          status: r.status,
          code: r.json?.code,
          node: r.node,
          ok,
          wrong: r.status === 200 && !ok,
          ...(!ok && { text: r.text.slice(0, 300) }),
        });
        continue;
      }
      session ??= { id: `load-${seed}-${c}-${serial++}`, client: c, count: 0, uncertain: false, made: false, node: null, createdAt: now(), lost: null };
      if (!sessions.includes(session)) sessions.push(session);
      const s = session;
      // alwaysCreate: every request may make the session, as any execution naming one did before
      // ISOL8_ERR_SESSION_NOT_FOUND (for showing what that led to).
      const headers = { "x-isol8-session": s.id, ...((!s.made || alwaysCreate) && { "x-isol8-session-create": "1" }) };
      const start = now();
      const r = await execute(url, key, { request: { runtime: "bash", code: SESSION_CODE }, sessionId: s.id }, headers);
      const record = {
        kind: "session",
        sessionId: s.id,
        start,
        end: now(),
        status: r.status,
        code: r.json?.code,
        node: r.node,
        ok: false,
        wrong: false,
        text: r.text.slice(0, 300),
      };
      records.push(record);
      if (r.status === 200) {
        const got = Number(r.json?.stdout?.trim());
        // After a request that failed without an answer the count may or may not include it.
        const expected = s.uncertain ? [s.count + 1, s.count + 2] : [s.count + 1];
        s.node ??= r.node;
        s.madeAt ??= start;
        record.affinity = r.node !== s.node;
        record.ok = expected.includes(got) && !record.affinity;
        record.wrong = !record.ok;
        s.made = true;
        s.uncertain = false;
        s.count = got;
        if (s.count >= SESSION_LENGTH) {
          await fetch(`${url}/session/${s.id}`, { method: "DELETE", headers: { authorization: `Bearer ${key}`, "x-isol8-session": s.id } })
            .then(async (res) => {
              const text = await res.text();
              const code = text.startsWith("{") ? JSON.parse(text).code : undefined;
              records.push({
                kind: "delete",
                sessionId: s.id,
                start: now(),
                end: now(),
                status: res.status,
                code,
                node: res.headers.get("x-isol8-node"),
                ok: res.ok,
                wrong: false,
              });
            })
            .catch(() => records.push({ kind: "delete", sessionId: s.id, start: now(), end: now(), status: 0, ok: false, wrong: false }));
          s.deletedAt = now();
          session = undefined;
        }
      } else if (r.status === 404 && r.json?.code === NOT_FOUND) {
        record.notFound = r.json.details?.node ?? null;
        s.lost = { at: start, by: record.notFound };
        session = undefined; // as a client would: start a new session
      } else {
        // No answer from a node (HAProxy's 502/503, a reset): the session may still be there.
        s.uncertain = true;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  };

  const scripted = script.map(async (step) => {
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, step.at - now())));
    marks[step.name] = { at: now() };
    Object.assign(marks[step.name], await step.run({ sessions, marks, now }), { done: now() });
  });
  await Promise.all([...Array.from({ length: clients }, (_, c) => client(c)), ...scripted]);
  return { records, sessions, marks, durationMs: now() };
}

/** The figures of a run; with `kill` / `term` marks ({ at, node }), what happened around them. */
export function summarize({ records, sessions, marks, durationMs }) {
  const executions = records.filter((r) => r.kind !== "delete");
  const byNode = {};
  for (const r of executions) if (r.ok) byNode[r.node] = (byNode[r.node] ?? 0) + 1;
  const failures = executions.filter((r) => !r.ok && !r.wrong && !r.notFound);
  const statusCounts = (list) =>
    list.reduce((acc, r) => ((acc[`${r.status}${r.code ? ` ${r.code}` : ""}`] = (acc[`${r.status}${r.code ? ` ${r.code}` : ""}`] ?? 0) + 1), acc), {});
  const summary = {
    seconds: +(durationMs / 1000).toFixed(1),
    requests: executions.length,
    ok: executions.filter((r) => r.ok).length,
    okPerSecond: +(executions.filter((r) => r.ok).length / (durationMs / 1000)).toFixed(2),
    stateless: executions.filter((r) => r.kind === "stateless").length,
    sessionRequests: executions.filter((r) => r.kind === "session").length,
    sessions: sessions.length,
    wrongAnswers: executions.filter((r) => r.wrong).length,
    affinityViolations: executions.filter((r) => r.affinity).length,
    sessionNotFound: executions.filter((r) => r.notFound !== undefined).length,
    failures: statusCounts(failures),
    failureSamples: failures.slice(0, 3).map((r) => ({ kind: r.kind, start: r.start, end: r.end, status: r.status, text: r.text })),
    // A DELETE after a session's last request fails like the session's own requests when its node died in between.
    deletesFailed: statusCounts(records.filter((r) => r.kind === "delete" && !r.ok)),
    okByNode: byNode,
  };
  // The nodes that answered a session's requests with a result (a not-found answer comes from whichever node the session's key maps to now).
  const sessionsSpanningNodes = sessions.filter((s) => new Set(executions.filter((r) => r.sessionId === s.id && r.status === 200).map((r) => r.node)).size > 1);
  summary.sessionsOnMoreThanOneNode = sessionsSpanningNodes.length;

  // From the moment the killed process was seen gone: what started before may have been in flight on it.
  const kill = marks.kill && { ...marks.kill, at: marks.kill.deadAt };
  if (kill) {
    const until = marks.term?.at ?? durationMs;
    // Sessions made (first answer) before the kill. One made after it on another node because its
    // own node was down moves back when that node returns: its not-found then is expected.
    const victimSessions = sessions.filter((s) => s.node === kill.node && s.madeAt < kill.at && !(s.deletedAt < kill.at));
    const survivorSessions = sessions.filter((s) => s.node !== kill.node && s.madeAt < kill.at && !(s.deletedAt < kill.at));
    const after = (r) => r.start > kill.at && r.start < until;
    const ofSessions = (list) => executions.filter((r) => list.some((s) => s.id === r.sessionId) && after(r));
    summary.kill = {
      node: kill.node,
      atSecond: +(kill.at / 1000).toFixed(1),
      // Requests in flight on the killed node die with it (a reset: an execution is not retried); none started after the kill may fail.
      failedInFlight: statusCounts(failures.filter((r) => r.start <= kill.at && r.end >= marks.kill.killedAt)),
      failedAfterKill: statusCounts(failures.filter((r) => r.start > kill.at)),
      statelessFailedInFlight: failures.filter((r) => r.kind === "stateless" && r.start <= kill.at).length,
      statelessFailedAfterKill: failures.filter((r) => r.kind === "stateless" && r.start > kill.at).length,
      victimSessions: victimSessions.length,
      victimSessionsTypedNotFound: victimSessions.filter((s) => s.lost && s.lost.at > kill.at).length,
      victimSessionSuccessesAfterKill: ofSessions(victimSessions).filter((r) => r.status === 200).length,
      victimSessionOtherAnswers: statusCounts(ofSessions(victimSessions).filter((r) => r.status !== 200 && !r.notFound)),
      survivorSessions: survivorSessions.length,
      survivorSessionRequestsAfterKill: ofSessions(survivorSessions).length,
      survivorSessionFailuresAfterKill: ofSessions(survivorSessions).filter((r) => !r.ok).length,
      leftoverContainersAfterRestart: marks.restart?.leftovers,
    };
  }
  const term = marks.term;
  if (term) {
    const after = executions.filter((r) => r.end > term.at);
    summary.term = {
      node: term.node,
      atSecond: +(term.at / 1000).toFixed(1),
      exit: term.exit,
      readyBefore: term.readyBefore,
      readyAfterSignal: term.readyAfter,
      requestsAfter: after.length,
      failedAfter: statusCounts(after.filter((r) => !r.ok && !r.notFound)),
      typedNotFoundAfter: after.filter((r) => r.notFound !== undefined).length,
    };
  }
  return summary;
}

/** Three (or one) nodes and HAProxy (or nginx: no health checks, so no fault phase) in a temporary directory; `stop` ends them all. */
export async function startFleet({ key, count = 3, dir, server, balancer = "haproxy" }) {
  const nodes = [];
  for (let i = 1; i <= count; i++) nodes.push({ id: `node${i}`, port: await freePort() });
  const running = new Map();
  let haproxy;
  const stopAll = async () => {
    await haproxy?.stop();
    await Promise.all(
      [...running.values()].map(async (node) => {
        if (node.child.exitCode === null && node.child.signalCode === null) node.child.kill("SIGTERM");
        await node.exited;
      }),
    );
  };
  try {
    // Every start settles before a failure is thrown, so each node that did start is stopped.
    const started = await Promise.allSettled(nodes.map(async (n) => running.set(n.id, await startNode({ ...n, dir, key, server }))));
    const failed = started.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
    haproxy = balancer === "nginx" ? await startNginx({ dir, nodes }) : await startHaproxy({ dir, nodes });
    if (balancer !== "nginx")
      await waitForState(
        haproxy,
        nodes.map((n) => n.id),
        "UP",
      );
  } catch (error) {
    // Nothing started may outlive a fleet that could not start.
    await stopAll();
    throw error;
  }
  return {
    nodes,
    running,
    haproxy,
    async restart(id) {
      const n = nodes.find((x) => x.id === id);
      running.set(id, await startNode({ ...n, dir, key, server }));
      return running.get(id);
    },
    stop: stopAll,
  };
}

/** The node holding the most live sessions (the one a kill hurts most), and another. */
function pickNodes(fleet, sessions) {
  const live = {};
  for (const s of sessions) if (s.made && !s.lost && s.deletedAt === undefined) live[s.node] = (live[s.node] ?? 0) + 1;
  const ids = fleet.nodes.map((n) => n.id).sort((a, b) => (live[b] ?? 0) - (live[a] ?? 0));
  return { victim: ids[0], drained: ids[1] };
}

/**
 * The fault script: at `killAt`, SIGKILL the node holding the most live sessions; restart it at
 * `restartAt` (its leftovers must be reaped); at `termAt`, SIGTERM another node. With `restartAt`
 * or `termAt` left out, that step is skipped.
 */
export function faultScript(fleet, { killAt, restartAt, termAt, victim: chosen }) {
  let victim;
  const steps = [];
  if (killAt !== undefined)
    steps.push({
      name: "kill",
      at: killAt,
      async run({ sessions, now }) {
        victim = chosen ?? pickNodes(fleet, sessions).victim;
        const node = fleet.running.get(victim);
        const before = await containersOfPid(node.pid);
        const killedAt = now();
        node.child.kill("SIGKILL");
        await node.exited;
        // Requests that reached the node before this may have died with it.
        const deadAt = now();
        await waitForState(fleet.haproxy, [victim], "DOWN");
        return { node: victim, pid: node.pid, containersAtKill: before.length, killedAt, deadAt };
      },
    });
  if (restartAt !== undefined)
    steps.push({
      name: "restart",
      at: restartAt,
      async run() {
        const oldPid = fleet.running.get(victim).pid;
        await fleet.restart(victim);
        // The restarted node's engine start reaps what the killed process left.
        const deadline = Date.now() + 60_000;
        let leftovers = await containersOfPid(oldPid);
        while (leftovers.length > 0 && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 500));
          leftovers = await containersOfPid(oldPid);
        }
        await waitForState(fleet.haproxy, [victim], "UP");
        return { node: victim, leftovers: leftovers.length };
      },
    });
  if (termAt !== undefined)
    steps.push({
      name: "term",
      at: termAt,
      async run({ sessions }) {
        const drained = pickNodes({ nodes: fleet.nodes.filter((n) => n.id !== victim) }, sessions).victim;
        const node = fleet.running.get(drained);
        const readyBefore = (await fetch(`${node.url}/ready`)).status;
        node.child.kill("SIGTERM");
        // Not ready first: /ready answers 503 while the node still serves (drainDelayMs).
        let readyAfter = 0;
        for (let i = 0; i < 50 && readyAfter !== 503; i++) {
          readyAfter = await fetch(`${node.url}/ready`).then(
            (r) => r.status,
            () => -1,
          );
          if (readyAfter !== 503) await new Promise((resolve) => setTimeout(resolve, 50));
        }
        const exit = await node.exited;
        return { node: drained, exit, readyBefore, readyAfter };
      },
    });
  return steps;
}

async function main() {
  const args = process.argv.slice(2);
  const flag = (name, fallback) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : fallback;
  };
  const clients = Number(flag("clients", "16"));
  const seconds = Number(flag("seconds", "60"));
  const phases = flag("phases", "one,three,faults").split(",");
  const balancer = flag("balancer", "haproxy");
  if (balancer === "nginx" && phases.includes("faults"))
    throw new Error("--balancer nginx: open-source nginx has no health checks; run the phases one and three");
  const key = `load-key-${randomBytes(8).toString("hex")}`;
  const report = { clients, seconds, balancer };
  for (const phase of phases) {
    const dir = await mkdtemp(join(tmpdir(), `isol8-fleet-${phase}-`));
    const fleet = await startFleet({ key, count: phase === "one" ? 1 : 3, dir, balancer });
    try {
      process.stderr.write(`[load] phase ${phase}: ${fleet.nodes.length} node(s) behind ${fleet.haproxy.url}, ${clients} clients x ${seconds} s\n`);
      const script = phase === "faults" ? faultScript(fleet, { killAt: seconds * 250, restartAt: seconds * 450, termAt: seconds * 700 }) : [];
      const result = await runLoad({ url: fleet.haproxy.url, key, clients, seconds, script });
      report[phase] = summarize(result);
      process.stderr.write(`${JSON.stringify(report[phase], null, 2)}\n`);
    } finally {
      await fleet.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }
  if (report.one && report.three) report.threeVsOne = +(report.three.okPerSecond / report.one.okPerSecond).toFixed(2);
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error) => {
    process.stderr.write(`${error?.stack ?? error}\n`);
    process.exit(1);
  });
}
