import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import WebSocket from "ws";
import { CONTAINER_LABELS, createStdin, DockerDriver, keySubprotocol, type StreamEvent, type WsServerMessage } from "@isol8/core";
// By path: @isol8/remote has @isol8/server among its devDependencies (no cycle back).
import { RemoteIsol8 } from "../../remote/src/index.js";
import { serve, type Served } from "./serve-process.js";

// GET /execute/ws on a real `isol8 serve`: interactive stdin turn by turn (a raw WebSocket client
// and RemoteIsol8), kill, auth, stdin after the program ended, and the answer to an upgrade
// request for any other path. The server runs on the launcher ISOL8_LAUNCHER selects: the exec
// path refuses interactive stdin (ISOL8_ERR_NOT_SUPPORTED).

const KEY = "interactive-key-0123456789";
const EXEC_PATH = process.env.ISOL8_LAUNCHER === "exec";

/** Reads three lines with input() and answers each one (flushed, so the answer leaves at once). */
const THREE_TURNS = `
for turn in range(3):
    line = input()
    print(f"reply {turn}: {line.upper()}", flush=True)
print("bye", flush=True)
`;

let dir: string;
let served: Served;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "isol8-interactive-"));
  served = await serve(dir, KEY, { defaults: { poolSize: { clean: 1, dirty: 1 }, timeoutMs: 60_000 } });
});
afterAll(async () => {
  served.child.kill("SIGTERM");
  expect((await served.exited).code).toBe(0);
  expect(await new DockerDriver().listContainers({ [CONTAINER_LABELS.ownerPid]: String(served.child.pid) })).toEqual([]);
  await rm(dir, { recursive: true, force: true });
});

const wsUrl = (path = "/execute/ws") => `${served.url.replace(/^http/, "ws")}${path}`;

/** A raw client: its messages as they arrive, and a way to wait for the next one that matches. */
function client(ws: WebSocket) {
  const received: WsServerMessage[] = [];
  const waiters: { match: (m: WsServerMessage) => boolean; resolve: (m: WsServerMessage) => void }[] = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })));
  ws.on("message", (data) => {
    const message = JSON.parse((data as Buffer).toString()) as WsServerMessage;
    received.push(message);
    for (const waiter of waiters.splice(0)) {
      if (waiter.match(message)) waiter.resolve(message);
      else waiters.push(waiter);
    }
  });
  const next = (match: (m: WsServerMessage) => boolean) =>
    new Promise<WsServerMessage>((resolve) => {
      const already = received.find(match);
      if (already) return resolve(already);
      waiters.push({ match, resolve });
    });
  const send = (message: unknown) => ws.send(typeof message === "string" ? message : JSON.stringify(message));
  return { received, next, send, closed };
}

function open(options: ConstructorParameters<typeof WebSocket>[2] = { headers: { authorization: `Bearer ${KEY}` } }, protocols?: string[]) {
  const ws = new WebSocket(wsUrl(), protocols, options);
  return new Promise<WebSocket>((resolve, reject) => {
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
    ws.once("unexpected-response", (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
  });
}

/** The raw answer to an upgrade request on a plain socket, read until the server closes it. */
function rawUpgrade(path: string, headers: Record<string, string> = {}): Promise<{ text: string; closed: boolean }> {
  const { hostname, port } = new URL(served.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let text = "";
    socket.on("data", (chunk) => {
      text += chunk.toString();
      // A 101 keeps the connection: the answer's head is all there is to read.
      if (text.startsWith("HTTP/1.1 101") && text.includes("\r\n\r\n")) {
        socket.destroy();
        resolve({ text, closed: false });
      }
    });
    socket.on("error", reject);
    socket.on("close", () => resolve({ text, closed: true }));
    const extra = Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join("");
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
    );
  });
}

describe("GET /execute/ws", () => {
  test.runIf(!EXEC_PATH)("a raw WebSocket client drives input() three times, turn by turn: each reply arrives before the next line is sent", async () => {
    const c = client(await open());
    const log: string[] = [];
    c.send({ request: { runtime: "python", code: THREE_TURNS } });
    for (const [turn, line] of ["alpha", "beta", "gamma"].entries()) {
      log.push(`send ${line}`);
      c.send({ type: "stdin", data: `${line}\n` });
      const reply = await c.next((m) => m.type === "stdout" && m.data.includes(`reply ${turn}:`));
      // The last reply and "bye" may come in one chunk: the reply is its first line.
      log.push(`got ${(reply as { data: string }).data.split("\n")[0]}`);
    }
    c.send({ type: "stdin-end" });
    const exit = (await c.next((m) => m.type === "exit" || m.type === "error")) as Extract<StreamEvent, { type: "exit" }>;
    expect(exit.type).toBe("exit");
    expect(log).toEqual(["send alpha", "got reply 0: ALPHA", "send beta", "got reply 1: BETA", "send gamma", "got reply 2: GAMMA"]);
    // The program had only line 1 when it answered it: nothing of line 2 is in the first reply.
    expect(exit.result.stdout).toBe("reply 0: ALPHA\nreply 1: BETA\nreply 2: GAMMA\nbye\n");
    expect(exit.result.exitCode).toBe(0);
    expect((await c.closed).code).toBe(1000);
  });

  test.runIf(!EXEC_PATH)("RemoteIsol8 with a stdin source uses the WebSocket and drives the program turn by turn", async () => {
    const remote = new RemoteIsol8({ host: served.url, apiKey: KEY });
    try {
      const stdin = createStdin();
      const log: string[] = [];
      const lines = ["alpha", "beta", "gamma"];
      log.push(`send ${lines[0]}`);
      stdin.write(`${lines[0]}\n`);
      let turn = 0;
      let exit: Extract<StreamEvent, { type: "exit" }> | undefined;
      let error: StreamEvent | undefined;
      for await (const event of remote.executeStream({ runtime: "python", code: THREE_TURNS }, { stdin })) {
        if (event.type === "exit") exit = event;
        if (event.type === "error") error = event;
        if (event.type !== "stdout" || !event.data.startsWith("reply")) continue;
        log.push(`got ${event.data.split("\n")[0]}`);
        turn++;
        if (turn < lines.length) {
          log.push(`send ${lines[turn]}`);
          expect(stdin.write(`${lines[turn]}\n`)).toBe(true);
        } else stdin.end();
      }
      expect(error).toBeUndefined();
      expect(log).toEqual(["send alpha", "got reply 0: ALPHA", "send beta", "got reply 1: BETA", "send gamma", "got reply 2: GAMMA"]);
      expect(exit?.result.stdout).toBe("reply 0: ALPHA\nreply 1: BETA\nreply 2: GAMMA\nbye\n");
      // execute() with a source also goes over the WebSocket.
      async function* answers() {
        yield "a\nb\n";
        yield "c\n";
      }
      expect((await remote.execute({ runtime: "python", code: THREE_TURNS }, { stdin: answers() })).stdout).toBe("reply 0: A\nreply 1: B\nreply 2: C\nbye\n");
    } finally {
      await remote.close();
    }
  });

  test.runIf(EXEC_PATH)("on the exec path a run with interactive stdin is refused with ISOL8_ERR_NOT_SUPPORTED (raw client and RemoteIsol8)", async () => {
    const c = client(await open());
    c.send({ request: { runtime: "python", code: THREE_TURNS } });
    const error = await c.next((m) => m.type === "error" || m.type === "exit");
    expect(error).toMatchObject({ type: "error", code: "ISOL8_ERR_NOT_SUPPORTED" });
    expect((error as { data: string }).data).toMatch(/needs isol8's in-container executor/);
    const remote = new RemoteIsol8({ host: served.url, apiKey: KEY });
    try {
      const refused = await remote.execute({ runtime: "python", code: THREE_TURNS }, { stdin: createStdin() }).catch((e: unknown) => e);
      expect(refused).toMatchObject({ code: "ISOL8_ERR_NOT_SUPPORTED" });
      // Positive control on the same endpoint: with its stdin up front the program runs there.
      const d = client(await open());
      d.send({ request: { runtime: "python", code: THREE_TURNS, stdin: "a\nb\nc\n" } });
      expect(await d.next((m) => m.type === "exit" || m.type === "error")).toMatchObject({
        type: "exit",
        result: { stdout: "reply 0: A\nreply 1: B\nreply 2: C\nbye\n" },
      });
    } finally {
      await remote.close();
    }
  });

  test("kill over the WebSocket ends the run: the program and its processes are killed, the last event says so", async () => {
    const c = client(await open());
    // stdin up front: no stdin source, so this runs on either launcher.
    c.send({ request: { runtime: "python", code: "import time\nprint('ready', flush=True)\ntime.sleep(600)\nprint('not reached')", stdin: "" } });
    await c.next((m) => m.type === "stdout" && m.data.includes("ready"));
    c.send({ type: "kill" });
    const last = await c.next((m) => m.type === "exit" || m.type === "error");
    expect(last).toMatchObject({ type: "error", code: "ISOL8_ERR_EXECUTION" });
    expect((last as { data: string }).data).toMatch(/aborted; the program and every process it started were killed/);
    expect(c.received.some((m) => m.type === "stdout" && m.data.includes("not reached"))).toBe(false);
  });

  test("stdin sent after the program ended gets a warning event, and the server goes on serving", async () => {
    const c = client(await open());
    c.send({ request: { runtime: "python", code: "print('short')", stdin: "" } });
    const exit = await c.next((m) => m.type === "exit" || m.type === "error");
    expect(exit).toMatchObject({ type: "exit", result: { stdout: "short\n", exitCode: 0 } });
    c.send({ type: "stdin", data: "too late\n" });
    const warning = await c.next((m) => m.type === "warning");
    expect(warning).toEqual({ type: "warning", reason: "stdin-closed", data: "stdin not delivered: the program has ended; 9 bytes dropped" });
    c.send("{not json");
    expect(await c.next((m) => m.type === "warning" && m.reason === "bad-message")).toMatchObject({ data: "Malformed JSON in a message" });
    // No crash: the server still answers, over HTTP and over a new WebSocket.
    expect((await fetch(`${served.url}/health`)).status).toBe(200);
    const d = client(await open());
    d.send({ request: { runtime: "python", code: "print('again')", stdin: "" } });
    expect(await d.next((m) => m.type === "exit" || m.type === "error")).toMatchObject({ type: "exit", result: { stdout: "again\n" } });
  });

  test("an upgrade without a key is refused (401), a wrong key too (403); a key in the subprotocol is accepted", async () => {
    await expect(open({})).rejects.toMatchObject({ status: 401 });
    await expect(open({ headers: { authorization: "Bearer wrong-key" } })).rejects.toMatchObject({ status: 403 });
    await expect(open({}, ["isol8", keySubprotocol("wrong-key")])).rejects.toMatchObject({ status: 403 });
    // Positive control: the same upgrade with the key (as a browser sends it) opens, and the
    // server selects "isol8", never the subprotocol carrying the key.
    const ws = await open({}, ["isol8", keySubprotocol(KEY)]);
    expect(ws.protocol).toBe("isol8");
    const c = client(ws);
    c.send({ request: { runtime: "python", code: "print('browser')", stdin: "" } });
    expect(await c.next((m) => m.type === "exit" || m.type === "error")).toMatchObject({ type: "exit", result: { stdout: "browser\n" } });
  });

  test("an upgrade request to an unknown path gets 404 and the connection is closed (never a hang); /execute/ws upgrades", async () => {
    const unknown = await rawUpgrade("/no-such-socket", { authorization: `Bearer ${KEY}` });
    expect(unknown.text).toMatch(/^HTTP\/1\.1 404 Not Found\r\n/);
    expect(unknown.text).toContain('"code":"ISOL8_ERR_NOT_FOUND"');
    expect(unknown.text).toMatch(/\r\nConnection: close\r\n/);
    expect(unknown.closed).toBe(true);
    // Positive control: the same raw request to /execute/ws switches protocols.
    const known = await rawUpgrade("/execute/ws", { authorization: `Bearer ${KEY}` });
    expect(known.text).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n/);
    // And an upgrade to a route that exists over plain HTTP is not upgraded either.
    const health = await rawUpgrade("/health");
    expect(health.text).toMatch(/^HTTP\/1\.1 404 Not Found\r\n/);
    expect(health.closed).toBe(true);
  });

  test("a first message that is not a valid request gets an error event naming the field, then the server closes", async () => {
    const c = client(await open());
    c.send({ request: { runtime: "python" }, bogus: 1 });
    const error = await c.next((m) => m.type === "error");
    expect(error).toMatchObject({ type: "error", code: "ISOL8_ERR_INVALID_REQUEST" });
    expect((await c.closed).code).toBe(1008);
  });
});
