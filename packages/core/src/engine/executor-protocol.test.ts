import { Duplex } from "node:stream";
import { describe, expect, it } from "vitest";
import { MultiplexedStreamParser } from "../docker/driver.js";
import { ExecutionError, InvalidOptionsError, type SandboxDriver } from "@isol8/kit";
import { ExecutorLauncher } from "./executor-launcher.js";
import {
  DATA_CHUNK,
  EXECUTOR_PROTOCOL_VERSION,
  ExecutorProtocolError,
  FrameDecoder,
  FrameType,
  decodeRun,
  encodeData,
  EXIT_SIZE,
  encodeExit,
  encodePrepare,
  encodeFrame,
  encodeRun,
  parseExit,
  parseHello,
  type Frame,
} from "./executor-protocol.js";
import { oneAtATime, resolveLauncherMode, type LaunchRequest } from "./launcher.js";
import { EXECUTOR_SOURCE_SHA256, baseImageTag, findExecutorSource } from "../images/tags.js";

describe("frames", () => {
  it("are [type u8][length u32 BE][id u32 BE][body]", () => {
    const frame = encodeFrame(FrameType.Stdout, 0x01020304, Buffer.from("hi"));
    expect([...frame]).toEqual([0x82, 0, 0, 0, 6, 1, 2, 3, 4, 0x68, 0x69]);
  });

  it("decode whatever the chunking: byte by byte, split headers, many frames per chunk", () => {
    const frames = [
      encodeFrame(FrameType.Hello, 0, Buffer.alloc(16)),
      encodeFrame(FrameType.Stdout, 7, Buffer.from("out")),
      encodeFrame(FrameType.Stderr, 7, Buffer.from("err")),
      encodeFrame(FrameType.Done, 8),
    ];
    const stream = Buffer.concat(frames);
    for (const size of [1, 2, 5, 9, 13, stream.length]) {
      const decoder = new FrameDecoder();
      const got: Frame[] = [];
      for (let at = 0; at < stream.length; at += size) got.push(...decoder.push(stream.subarray(at, at + size)));
      expect(got.map((f) => [f.type, f.id, f.body.toString()])).toEqual([
        [FrameType.Hello, 0, "\0".repeat(16)],
        [FrameType.Stdout, 7, "out"],
        [FrameType.Stderr, 7, "err"],
        [FrameType.Done, 8, ""],
      ]);
      expect(decoder.pending).toBe(0);
    }
  });

  it("binary output survives intact, including bytes that look like frames", () => {
    const fake = encodeExit(7, { exitStatus: 0, timedOut: false, killed: false, startFailed: false, outputCut: false });
    const body = Buffer.concat([Buffer.from([0, 255, 0x84]), fake, Buffer.from([10])]);
    const decoder = new FrameDecoder();
    const [frame, ...rest] = decoder.push(encodeFrame(FrameType.Stdout, 3, body));
    expect(rest).toEqual([]);
    expect(frame!.type).toBe(FrameType.Stdout);
    expect(frame!.body.equals(body)).toBe(true);
  });

  it("a corrupt length is refused, not waited for", () => {
    const decoder = new FrameDecoder(1024);
    const bad = Buffer.from([0x82, 0, 0, 0x10, 0, 0, 0, 0, 1]);
    expect(() => decoder.push(bad)).toThrow(ExecutorProtocolError);
    expect(() => new FrameDecoder().push(Buffer.from([0x82, 0, 0, 0, 2, 0, 0]))).toThrow(/length 2/);
  });

  it("frames over the request limit are refused when encoding", () => {
    expect(() => encodeFrame(FrameType.Files, 1, Buffer.alloc(64 * 1024 * 1024))).toThrow(ExecutorProtocolError);
  });
});

describe("RUN", () => {
  it("round-trips argv, env, cwd, stdin path, time limit and flags", () => {
    const frame = encodeRun({
      id: 42,
      argv: ["python3", "/sandbox/main.py", "é ✓", ""],
      env: { A: "1", EMPTY: "", WITH_EQUALS: "a=b=c" },
      cwd: "/sandbox",
      stdinPath: "/tmp/.isol8-stdin",
      timeLimitMs: 1500,
      measureUsage: true,
      files: true,
      warm: true,
    });
    const [decoded] = new FrameDecoder(Infinity).push(frame);
    expect(decoded!.type).toBe(FrameType.Run);
    expect(decodeRun(decoded!.id, decoded!.body)).toEqual({
      id: 42,
      argv: ["python3", "/sandbox/main.py", "é ✓", ""],
      env: { A: "1", EMPTY: "", WITH_EQUALS: "a=b=c" },
      cwd: "/sandbox",
      stdinPath: "/tmp/.isol8-stdin",
      timeLimitMs: 1500,
      measureUsage: true,
      files: true,
      stdin: false,
      warm: true,
    });
  });

  it("PREPARE carries argv, env and cwd laid out as in RUN", () => {
    const command = { argv: ["python3", "-c", "pass"], env: { PYTHONUNBUFFERED: "1" }, cwd: "/sandbox" };
    const [prepare] = new FrameDecoder().push(encodePrepare({ id: 3, ...command }));
    const [run] = new FrameDecoder().push(encodeRun({ id: 3, ...command }));
    expect(prepare!.type).toBe(FrameType.Prepare);
    // RUN = flags, time limit, the command, stdin path: PREPARE is the command alone.
    expect(prepare!.body.equals(run!.body.subarray(8, run!.body.length - 4))).toBe(true);
    expect(() => encodePrepare({ id: 3, ...command, argv: [] })).toThrow(/argv is empty/);
  });

  it("refuses what the executor could not take: NUL bytes, bad env names, empty argv", () => {
    const base = { id: 1, argv: ["true"], env: {}, cwd: "/" };
    expect(() => encodeRun({ ...base, argv: ["a\0b"] })).toThrow(/argv\[0\] contains a NUL/);
    expect(() => encodeRun({ ...base, env: { A: "x\0" } })).toThrow(/env A contains a NUL/);
    expect(() => encodeRun({ ...base, env: { "A=B": "x" } })).toThrow(/contains "="/);
    expect(() => encodeRun({ ...base, argv: [] })).toThrow(/argv is empty/);
    expect(() => encodeRun({ ...base, timeLimitMs: 1.5 })).toThrow(/timeLimitMs/);
  });

  it("data goes in chunks of at most DATA_CHUNK, then an empty end frame", () => {
    const data = Buffer.alloc(DATA_CHUNK * 2 + 10, 7);
    const frames = encodeData(FrameType.Files, 5, data).flatMap((f) => new FrameDecoder(Infinity).push(f));
    expect(frames.map((f) => f.body.length)).toEqual([DATA_CHUNK, DATA_CHUNK, 10, 0]);
    expect(Buffer.concat(frames.map((f) => f.body)).equals(data)).toBe(true);
    expect(encodeData(FrameType.Stdin, 5, Buffer.alloc(0)).map((f) => f.length)).toEqual([9]);
  });
});

describe("HELLO and EXIT", () => {
  it("HELLO carries the version, pid and sandbox ids", () => {
    const body = Buffer.alloc(30);
    body.writeUInt32BE(1, 0);
    body.writeUInt32BE(8, 4);
    body.writeUInt32BE(1000, 8);
    body.writeUInt32BE(1000, 12);
    body.write("isol8-executor", 16);
    expect(parseHello(body)).toEqual({ version: 1, pid: 8, uid: 1000, gid: 1000, name: "isol8-executor" });
    expect(() => parseHello(Buffer.alloc(3))).toThrow(ExecutorProtocolError);
  });

  it("EXIT: an exit status, or 128 + the signal, with flags and usage", () => {
    const exited = encodeExit(1, { exitStatus: 3, timedOut: false, killed: false, startFailed: false, outputCut: false, wallUs: 1500 });
    const [f1] = new FrameDecoder().push(exited);
    expect(parseExit(f1!.body)).toEqual({
      exitStatus: 3,
      exitCode: 3,
      timedOut: false,
      killed: false,
      startFailed: false,
      outputCut: false,
      warm: false,
      richOutputs: false,
      wallUs: 1500,
    });
    const usage = { userUs: 120_000, systemUs: 30_000, maxRssKiB: 104_000, netRxBytes: 5, netTxBytes: 6 };
    const killed = encodeExit(2, { signal: 9, timedOut: true, killed: false, startFailed: false, outputCut: true, usage });
    const [f2] = new FrameDecoder().push(killed);
    expect(parseExit(f2!.body)).toMatchObject({ signal: 9, exitCode: 137, timedOut: true, outputCut: true, warm: false, usage });
    const [f3] = new FrameDecoder().push(encodeExit(3, { exitStatus: 0, timedOut: false, killed: false, startFailed: false, outputCut: false, warm: true }));
    expect(parseExit(f3!.body).warm).toBe(true);
    // OOM kills of the run: present only when the executor could read the counter (flag bit 6).
    expect(parseExit(f1!.body).oomKills).toBeUndefined();
    const [f4] = new FrameDecoder().push(encodeExit(4, { exitStatus: 0, timedOut: false, killed: false, startFailed: false, outputCut: false, oomKills: 2 }));
    expect(f4!.body.length).toBe(EXIT_SIZE);
    expect(parseExit(f4!.body)).toMatchObject({ exitCode: 0, oomKills: 2 });
    const [f5] = new FrameDecoder().push(encodeExit(5, { exitStatus: 137, timedOut: false, killed: false, startFailed: false, outputCut: false, oomKills: 0 }));
    expect(parseExit(f5!.body).oomKills).toBe(0);
    expect(() => parseExit(Buffer.alloc(10))).toThrow(/too short/);
  });

  it("EXIT: bit 7 says the rich outputs directory was there when the program ended", () => {
    const base = { exitStatus: 0, timedOut: false, killed: false, startFailed: false, outputCut: false };
    const [left] = new FrameDecoder().push(encodeExit(6, { ...base, richOutputs: true }));
    expect(left!.body[1]! & 0x80).toBe(0x80);
    expect(parseExit(left!.body).richOutputs).toBe(true);
    const [none] = new FrameDecoder().push(encodeExit(7, base));
    expect(parseExit(none!.body).richOutputs).toBe(false);
  });
});

describe("the executor's source and the image tags", () => {
  it("the tags are computed from the executor source that ships (update EXECUTOR_SOURCE_SHA256 after editing the C)", () => {
    const source = findExecutorSource();
    expect(source?.path).toMatch(/packages\/core\/executor\/isol8-executor\.c$/);
    expect(source?.sha256).toBe(EXECUTOR_SOURCE_SHA256);
    expect(baseImageTag()).toMatch(/^isol8\/base:[0-9a-f]{12}$/);
  });
});

describe("launcher selection", () => {
  it("an explicit option wins; with auto, ISOL8_LAUNCHER decides", () => {
    expect(resolveLauncherMode("auto", undefined)).toBe("auto");
    expect(resolveLauncherMode("auto", "")).toBe("auto");
    expect(resolveLauncherMode("auto", "exec")).toBe("exec");
    expect(resolveLauncherMode("auto", " executor ")).toBe("executor");
    expect(resolveLauncherMode("executor", "exec")).toBe("executor");
    expect(resolveLauncherMode("exec", "executor")).toBe("exec");
    expect(() => resolveLauncherMode("auto", "docker")).toThrow(InvalidOptionsError);
  });
});

// ---------------------------------------------------------------- the launcher against a fake executor

/** Docker's multiplexing around the executor's stdout (stream 1) or stderr (stream 2). */
function mux(stream: 1 | 2, data: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(data.length, 4);
  return Buffer.concat([header, data]);
}

/** Plays the container: what the engine writes arrives in `received`; `send` answers as the executor. */
class FakeContainer {
  readonly received: Frame[] = [];
  readonly #decoder = new FrameDecoder(Infinity);
  readonly socket: Duplex;
  onFrame: (frame: Frame) => void = () => {};
  paused = 0;

  constructor() {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    this.socket = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        for (const frame of self.#decoder.push(chunk)) {
          self.received.push(frame);
          self.onFrame(frame);
        }
        callback();
      },
    });
    const pause = this.socket.pause.bind(this.socket);
    this.socket.pause = () => {
      this.paused++;
      return pause();
    };
  }

  send(frame: Buffer, stream: 1 | 2 = 1): void {
    this.socket.push(mux(stream, frame));
  }

  hello(version = EXECUTOR_PROTOCOL_VERSION): void {
    const body = Buffer.alloc(30);
    body.writeUInt32BE(version, 0);
    body.write("isol8-executor", 16);
    this.send(encodeFrame(FrameType.Hello, 0, body));
  }

  exit(id: number, status = 0, extra: Partial<Parameters<typeof encodeExit>[1]> = {}): void {
    this.send(encodeExit(id, { exitStatus: status, timedOut: false, killed: false, startFailed: false, outputCut: false, ...extra }));
  }
}

async function launcherWith(container: FakeContainer, id = "c1") {
  const driver = {
    attach: async () => ({
      channel: container.socket,
      onOutput: (listener: (stream: "stdout" | "stderr", chunk: Buffer) => void) => {
        const demux = new MultiplexedStreamParser(listener);
        container.socket.on("data", (chunk: Buffer) => demux.push(chunk));
      },
    }),
  } as unknown as SandboxDriver;
  const launcher = new ExecutorLauncher(driver);
  await launcher.attach(id);
  return launcher;
}

function request(overrides: Partial<LaunchRequest> = {}): LaunchRequest & { output: string[] } {
  const output: string[] = [];
  return { argv: ["true"], env: {}, payload: Buffer.alloc(0), onOutput: (stream, chunk) => void output.push(`${stream}:${chunk}`), output, ...overrides };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("ExecutorLauncher (against a fake executor)", () => {
  it("waits for HELLO, refuses another protocol version, and reports the executor's own error", async () => {
    const good = new FakeContainer();
    const launcher = await launcherWith(good);
    const ready = launcher.ready("c1");
    good.hello();
    await expect(ready).resolves.toMatchObject({ version: EXECUTOR_PROTOCOL_VERSION, name: "isol8-executor" });

    const old = new FakeContainer();
    const second = await launcherWith(old, "c2");
    const refused = second.ready("c2");
    old.hello(99);
    await expect(refused).rejects.toThrow(/speaks protocol 99/);

    const broken = new FakeContainer();
    const third = await launcherWith(broken, "c3");
    const failed = third.ready("c3");
    broken.send(Buffer.from("isol8-executor: missing CAP_SETUID\n"), 2);
    broken.send(encodeFrame(FrameType.Error, 0, Buffer.from("the executor needs uid 0 with CAP_SETUID")));
    await expect(failed).rejects.toThrow(/could not start: the executor needs uid 0/);
  });

  it("sends RUN with the payload as FILES, maps output and EXIT, usage only when measured", async () => {
    const container = new FakeContainer();
    const launcher = await launcherWith(container);
    container.hello();
    container.onFrame = (frame) => {
      if (frame.type !== FrameType.Run) return;
      container.send(encodeFrame(FrameType.Stdout, frame.id, Buffer.from("out")));
      container.send(encodeFrame(FrameType.Stderr, frame.id, Buffer.from("err")));
      const usage = { userUs: 1500, systemUs: 600, maxRssKiB: 2048, netRxBytes: 1, netTxBytes: 2 };
      container.exit(frame.id, 4, { usage });
    };
    const req = request({ argv: ["python3", "x.py"], payload: Buffer.from("TAR"), stdinPath: "/tmp/in", measureUsage: true });
    const outcome = await launcher.run("c1", req);
    expect(outcome.exitCode).toBe(4);
    expect(outcome.usage).toEqual({ cpuTimeMs: 2, peakMemoryBytes: 2048 * 1024, networkBytesIn: 1, networkBytesOut: 2 });
    expect(req.output).toEqual(["stdout:out", "stderr:err"]);
    const run = decodeRun(container.received[0]!.id, container.received[0]!.body);
    expect(run).toMatchObject({ argv: ["python3", "x.py"], cwd: "/sandbox", stdinPath: "/tmp/in", files: true, measureUsage: true });
    expect(container.received.slice(1).map((f) => [f.type, f.body.toString()])).toEqual([
      [FrameType.Files, "TAR"],
      [FrameType.Files, ""],
    ]);
  });

  it("stale frames of another id never reach a run, and runs are serialised", async () => {
    const container = new FakeContainer();
    const launcher = await launcherWith(container);
    container.hello();
    const runs: number[] = [];
    container.onFrame = (frame) => {
      if (frame.type === FrameType.Run) runs.push(frame.id);
    };
    const first = request();
    const second = request();
    const p1 = launcher.run("c1", first);
    const p2 = launcher.run("c1", second);
    await tick();
    expect(runs).toHaveLength(1); // the second waits for the first's EXIT
    container.send(encodeFrame(FrameType.Stdout, runs[0]! + 100, Buffer.from("stale")));
    container.send(encodeFrame(FrameType.Stdout, runs[0]!, Buffer.from("one")));
    container.exit(runs[0]!, 0);
    await p1;
    await tick();
    expect(runs).toHaveLength(2);
    container.send(encodeFrame(FrameType.Stdout, runs[1]!, Buffer.from("two")));
    container.exit(runs[1]!, 1);
    expect((await p2).exitCode).toBe(1);
    expect(first.output).toEqual(["stdout:one"]);
    expect(second.output).toEqual(["stdout:two"]);
  });

  it("back-pressure: a pending onOutput stops delivery (and the socket) until it settles", async () => {
    const container = new FakeContainer();
    const launcher = await launcherWith(container);
    container.hello();
    let release!: () => void;
    const seen: string[] = [];
    const req = request({
      onOutput: (_stream, chunk) => {
        seen.push(chunk.toString());
        if (seen.length === 1) return new Promise<void>((resolve) => (release = resolve));
      },
    });
    let id = 0;
    container.onFrame = (frame) => {
      if (frame.type !== FrameType.Run) return;
      id = frame.id;
      // Everything in one chunk: the launcher must still hold the rest back.
      container.socket.push(
        Buffer.concat([
          mux(1, encodeFrame(FrameType.Stdout, id, Buffer.from("a"))),
          mux(1, encodeFrame(FrameType.Stdout, id, Buffer.from("b"))),
          mux(1, encodeExit(id, { exitStatus: 0, timedOut: false, killed: false, startFailed: false, outputCut: false })),
        ]),
      );
    };
    let done = false;
    const running = launcher.run("c1", req).then((o) => ((done = true), o));
    await tick();
    await tick();
    expect(seen).toEqual(["a"]);
    expect(done).toBe(false);
    expect(container.paused).toBeGreaterThan(0);
    release();
    expect((await running).exitCode).toBe(0);
    expect(seen).toEqual(["a", "b"]);
  });

  it("an abort settles at once with -1 and sends KILL; the next run waits for the real EXIT", async () => {
    const container = new FakeContainer();
    const launcher = await launcherWith(container);
    container.hello();
    const abort = new AbortController();
    const runs: number[] = [];
    container.onFrame = (frame) => {
      if (frame.type === FrameType.Run) runs.push(frame.id);
    };
    const first = launcher.run("c1", request({ signal: abort.signal }));
    await tick();
    abort.abort();
    expect((await first).exitCode).toBe(-1);
    expect(container.received.at(-1)).toMatchObject({ type: FrameType.Kill, id: runs[0] });
    const second = launcher.run("c1", request());
    await tick();
    expect(runs).toHaveLength(1);
    container.exit(runs[0]!, 0, { signal: 9, killed: true });
    await tick();
    expect(runs).toHaveLength(2);
    container.exit(runs[1]!, 0);
    expect((await second).exitCode).toBe(0);
  });

  it("killAll sends KILLALL and resolves at DONE; ping round-trips", async () => {
    const container = new FakeContainer();
    const launcher = await launcherWith(container);
    container.hello();
    container.onFrame = (frame) => {
      if (frame.type === FrameType.KillAll) container.send(encodeFrame(FrameType.Done, frame.id));
      if (frame.type === FrameType.Ping) container.send(encodeFrame(FrameType.Pong, frame.id));
    };
    await launcher.killAll("c1");
    await launcher.ping("c1");
    expect(container.received.map((f) => f.type)).toEqual([FrameType.KillAll, FrameType.Ping]);
  });

  it("the container going away rejects a run at once and ends a killAll", async () => {
    const container = new FakeContainer();
    const launcher = await launcherWith(container);
    container.hello();
    const running = launcher.run("c1", request());
    const killing = launcher.killAll("c1");
    await tick();
    container.socket.push(null);
    container.socket.destroy();
    await expect(running).rejects.toThrow(ExecutionError);
    await expect(killing).resolves.toBeUndefined();
    expect(launcher.has("c1")).toBe(false);
    await expect(launcher.run("c1", request())).rejects.toThrow(/no executor connection/);
  });

  it("a request the executor could not take (a NUL byte in env) is refused before anything is sent", async () => {
    const container = new FakeContainer();
    const launcher = await launcherWith(container);
    container.hello();
    await expect(launcher.run("c1", request({ env: { A: "x\0y" } }))).rejects.toThrow(/cannot take this request: env A contains a NUL byte/);
    expect(container.received).toEqual([]);
    container.onFrame = (frame) => {
      if (frame.type === FrameType.Run) container.exit(frame.id, 0);
    };
    expect((await launcher.run("c1", request())).exitCode).toBe(0);
  });

  it("an ERROR for a run's id rejects that run only", async () => {
    const container = new FakeContainer();
    const launcher = await launcherWith(container);
    container.hello();
    container.onFrame = (frame) => {
      if (frame.type === FrameType.Run) container.send(encodeFrame(FrameType.Error, frame.id, Buffer.from("busy: one execution at a time")));
    };
    await expect(launcher.run("c1", request())).rejects.toThrow(/refused the request: busy/);
    container.onFrame = (frame) => {
      if (frame.type === FrameType.Run) container.exit(frame.id, 0);
    };
    expect((await launcher.run("c1", request())).exitCode).toBe(0);
  });
});

describe("oneAtATime (the exec path's output delivery)", () => {
  it("holds later chunks while the consumer's promise is pending, even when it settles only its latest promise", async () => {
    const seen: string[] = [];
    let latest: (() => void) | undefined;
    const deliver = oneAtATime((_stream, chunk) => {
      seen.push(chunk.toString());
      // Like the engine: every call past the high-water mark makes a new promise, and only the
      // latest resolver is kept.
      return new Promise<void>((resolve) => (latest = resolve));
    });
    const waits = ["a", "b", "c"].map((text) => deliver("stdout", Buffer.from(text)));
    expect(seen).toEqual(["a"]);
    for (let i = 0; i < 3; i++) {
      latest!();
      await tick();
    }
    await Promise.all(waits.map((wait) => Promise.resolve(wait)));
    expect(seen).toEqual(["a", "b", "c"]);
    // A consumer that does not ask to wait gets chunks at once.
    const direct: string[] = [];
    const fast = oneAtATime((_s, chunk) => void direct.push(chunk.toString()));
    expect(fast("stderr", Buffer.from("x"))).toBeUndefined();
    expect(direct).toEqual(["x"]);
  });
});
