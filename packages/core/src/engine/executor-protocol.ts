import { ExecutionError, SANDBOX_DIR, type ResourceUsage } from "@isol8/kit";

/**
 * The engine's side of the executor protocol (packages/core/executor/PROTOCOL.md): frames of
 * `[type u8][length u32 big-endian][payload]`, every payload starting with a u32 request id.
 * Pure encoding and decoding, no I/O.
 */

/** Bumped on any incompatible change; images carry it in the `isol8.executor` label. */
export const EXECUTOR_PROTOCOL_VERSION = 4;
/** Image label naming the protocol version of the executor inside. */
export const EXECUTOR_LABEL = "isol8.executor";
/** Where images carry the executor. */
export const EXECUTOR_PATH = "/usr/local/bin/isol8-executor";
/**
 * The range each container's sandbox uid (and gid) is drawn from: no host account uses it (Debian
 * gives users 1000-59999, subordinate ids start at 100000 by 65536), and the executor refuses any
 * uid outside it (0 above all).
 */
export const SANDBOX_UID_RANGE = { min: 1_000_000_000, max: 1_999_999_999 } as const;
/** Exactly what the executor needs (Docker names, without CAP_): drop to the sandbox user, empty its bounding set. */
export const EXECUTOR_CAPABILITIES = ["SETUID", "SETGID", "SETPCAP"] as const;

export const FrameType = {
  // engine -> executor
  Run: 0x01,
  Files: 0x02,
  Stdin: 0x03,
  Kill: 0x04,
  KillAll: 0x05,
  Ping: 0x06,
  Prepare: 0x07,
  ContextStart: 0x08,
  ContextSend: 0x09,
  ContextSignal: 0x0a,
  // executor -> engine
  Hello: 0x81,
  Stdout: 0x82,
  Stderr: 0x83,
  Exit: 0x84,
  Done: 0x85,
  Pong: 0x86,
  ContextStdout: 0x87,
  ContextStderr: 0x88,
  ContextMessage: 0x89,
  ContextExit: 0x8a,
  Error: 0x8f,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export const RunFlag = { Measure: 1, Files: 2, Stdin: 4, Warm: 8 } as const;
export const ExitFlag = { TimedOut: 1, Killed: 2, Usage: 4, OutputCut: 8, StartFailed: 16, Warm: 32, OomCounted: 64, RichOutputs: 128 } as const;
/** Bytes of an EXIT payload after the request id. */
export const EXIT_SIZE = 64;

/** The executor refuses request frames larger than this. */
export const MAX_REQUEST_FRAME = 64 * 1024 * 1024;
/** Files and stdin go in chunks of this size. */
export const DATA_CHUNK = 1024 * 1024;
/** Frames from the executor are small (output comes in 64 KiB chunks); anything huge is corruption. */
export const MAX_RESPONSE_FRAME = 16 * 1024 * 1024;

export class ExecutorProtocolError extends Error {
  override name = "ExecutorProtocolError";
}

export interface Frame {
  type: number;
  id: number;
  /** The payload after the request id. */
  body: Buffer;
}

export function encodeFrame(type: FrameType, id: number, body: Buffer = EMPTY): Buffer {
  if (body.length + 4 > MAX_REQUEST_FRAME) throw new ExecutorProtocolError(`a frame of ${body.length + 4} bytes is over the ${MAX_REQUEST_FRAME}-byte limit`);
  const frame = Buffer.allocUnsafe(9 + body.length);
  frame[0] = type;
  frame.writeUInt32BE(body.length + 4, 1);
  frame.writeUInt32BE(id >>> 0, 5);
  body.copy(frame, 9);
  return frame;
}

const EMPTY = Buffer.alloc(0);

export interface RunRequest {
  id: number;
  argv: readonly string[];
  env: Readonly<Record<string, string>>;
  cwd: string;
  /** A file (written by the files tar) opened as the program's stdin. */
  stdinPath?: string;
  /** The executor's own time limit (0 or absent: none). */
  timeLimitMs?: number;
  measureUsage?: boolean;
  /** FILES frames follow (a tar unpacked at "/" as the sandbox user), ended by an empty one. */
  files?: boolean;
  /** STDIN frames follow, ended by an empty one. */
  stdin?: boolean;
  /** The prepared warm-start program (PREPARE) may run it in-process; without one it runs as usual. */
  warm?: boolean;
}

/** What PREPARE starts ahead of the next run: a runtime's warm-start program (see PROTOCOL.md). */
export interface PrepareRequest {
  id: number;
  argv: readonly string[];
  env: Readonly<Record<string, string>>;
  cwd: string;
}

/** Writes the integers and strings of a request body. Strings may not contain NUL (they become C strings). */
class BodyWriter {
  readonly parts: Buffer[] = [];

  u32(value: number): void {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(value >>> 0);
    this.parts.push(b);
  }

  str(value: string, what: string): void {
    const bytes = Buffer.from(value, "utf8");
    if (bytes.includes(0)) throw new ExecutorProtocolError(`${what} contains a NUL byte`);
    this.u32(bytes.length);
    this.parts.push(bytes);
  }

  /** argv, env ("NAME=value" entries) and cwd, as RUN and PREPARE carry them. */
  command(request: { argv: readonly string[]; env: Readonly<Record<string, string>>; cwd: string }): void {
    if (request.argv.length === 0 || !request.argv[0]) throw new ExecutorProtocolError("argv is empty");
    this.u32(request.argv.length);
    request.argv.forEach((arg, i) => this.str(arg, `argv[${i}]`));
    const env = Object.entries(request.env);
    this.u32(env.length);
    for (const [name, value] of env) {
      if (!name || name.includes("=")) throw new ExecutorProtocolError(`env name ${JSON.stringify(name)} is empty or contains "="`);
      this.str(`${name}=${value}`, `env ${name}`);
    }
    this.str(request.cwd, "cwd");
  }
}

/** The RUN frame. */
export function encodeRun(request: RunRequest): Buffer {
  const body = new BodyWriter();
  const limit = request.timeLimitMs ?? 0;
  if (!Number.isInteger(limit) || limit < 0 || limit > 0xffffffff)
    throw new ExecutorProtocolError(`timeLimitMs must be a whole number of milliseconds up to 2^32-1, got ${limit}`);
  body.u32(
    (request.measureUsage ? RunFlag.Measure : 0) |
      (request.files ? RunFlag.Files : 0) |
      (request.stdin ? RunFlag.Stdin : 0) |
      (request.warm ? RunFlag.Warm : 0),
  );
  body.u32(limit);
  body.command(request);
  body.str(request.stdinPath ?? "", "stdinPath");
  return encodeFrame(FrameType.Run, request.id, Buffer.concat(body.parts));
}

/** The PREPARE frame. */
export function encodePrepare(request: PrepareRequest): Buffer {
  return encodeCommandFrame(FrameType.Prepare, request);
}

/** A frame whose payload is a command (argv, env, cwd): PREPARE, CTX_START. */
export function encodeCommandFrame(type: typeof FrameType.Prepare | typeof FrameType.ContextStart, request: PrepareRequest): Buffer {
  const body = new BodyWriter();
  body.command(request);
  return encodeFrame(type, request.id, Buffer.concat(body.parts));
}

/** A byte stream as FILES or STDIN frames of at most DATA_CHUNK bytes, then the empty end frame. */
export function encodeData(type: typeof FrameType.Files | typeof FrameType.Stdin, id: number, data: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  for (let at = 0; at < data.length; at += DATA_CHUNK) frames.push(encodeFrame(type, id, data.subarray(at, at + DATA_CHUNK)));
  frames.push(encodeFrame(type, id));
  return frames;
}

/** Splits a byte stream into frames, whatever the chunking. */
export class FrameDecoder {
  #buffer: Buffer = EMPTY;

  constructor(private readonly maxFrame = MAX_RESPONSE_FRAME) {}

  /** The complete frames in `chunk` (and what was held back before it). Throws on a corrupt stream. */
  push(chunk: Buffer): Frame[] {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const frames: Frame[] = [];
    let offset = 0;
    while (this.#buffer.length - offset >= 5) {
      const length = this.#buffer.readUInt32BE(offset + 1);
      if (length < 4 || length > this.maxFrame) {
        throw new ExecutorProtocolError(`corrupt frame from the executor: type 0x${this.#buffer[offset]!.toString(16)}, length ${length}`);
      }
      if (this.#buffer.length - offset - 5 < length) break;
      frames.push({
        type: this.#buffer[offset]!,
        id: this.#buffer.readUInt32BE(offset + 5),
        body: this.#buffer.subarray(offset + 9, offset + 5 + length),
      });
      offset += 5 + length;
    }
    this.#buffer = offset === this.#buffer.length ? EMPTY : this.#buffer.subarray(offset);
    return frames;
  }

  /** Bytes of an incomplete frame held back. */
  get pending(): number {
    return this.#buffer.length;
  }
}

export interface Hello {
  version: number;
  pid: number;
  uid: number;
  gid: number;
  name: string;
}

export function parseHello(body: Buffer): Hello {
  if (body.length < 16) throw new ExecutorProtocolError(`HELLO of ${body.length} bytes is too short`);
  return {
    version: body.readUInt32BE(0),
    pid: body.readUInt32BE(4),
    uid: body.readUInt32BE(8),
    gid: body.readUInt32BE(12),
    name: body.subarray(16).toString("utf8"),
  };
}

export interface ExitReport {
  /** The program's exit status, or undefined when a signal ended it. */
  exitStatus?: number;
  signal?: number;
  timedOut: boolean;
  /** Ended by a KILL or KILLALL request. */
  killed: boolean;
  /** The program never started (its files could not be unpacked, fork failed): exitStatus says why. */
  startFailed: boolean;
  /** Output still held by a process out of the sandbox user's reach was cut after the drain time. */
  outputCut: boolean;
  /** The program was started by a prepared warm-start program (RUN with the warm flag after a PREPARE). */
  warm: boolean;
  /** Whether RICH_OUTPUTS_DIR existed when the run ended (without it the engine need not read it back). */
  richOutputs: boolean;
  /**
   * Processes the OOM killer ended in the container during this run (the memory cgroup's
   * oom_kill counter, after the run's processes were all dead − when the RUN arrived); absent
   * when the counter could not be read.
   */
  oomKills?: number;
  /** The shell's convention: the exit status, or 128 + the signal. */
  exitCode: number;
  wallUs: number;
  usage?: { userUs: number; systemUs: number; maxRssKiB: number; netRxBytes: number; netTxBytes: number };
}

export function parseExit(body: Buffer): ExitReport {
  if (body.length < EXIT_SIZE) throw new ExecutorProtocolError(`EXIT of ${body.length} bytes is too short`);
  const kind = body[0]!;
  const flags = body[1]!;
  const value = body.readUInt32BE(4);
  const u64 = (at: number) => Number(body.readBigUInt64BE(at));
  const signaled = kind === 1;
  return {
    ...(signaled ? { signal: value } : { exitStatus: value }),
    timedOut: (flags & ExitFlag.TimedOut) !== 0,
    killed: (flags & ExitFlag.Killed) !== 0,
    startFailed: (flags & ExitFlag.StartFailed) !== 0,
    outputCut: (flags & ExitFlag.OutputCut) !== 0,
    warm: (flags & ExitFlag.Warm) !== 0,
    richOutputs: (flags & ExitFlag.RichOutputs) !== 0,
    ...((flags & ExitFlag.OomCounted) !== 0 && { oomKills: body.readUInt32BE(56) }),
    exitCode: signaled ? 128 + value : value,
    wallUs: u64(32),
    ...((flags & ExitFlag.Usage) !== 0 && {
      usage: { userUs: u64(8), systemUs: u64(16), maxRssKiB: u64(24), netRxBytes: u64(40), netTxBytes: u64(48) },
    }),
  };
}

/** The encoder the executor uses, for tests and tools that play the executor's part. */
export function encodeExit(
  id: number,
  exit: Omit<ExitReport, "exitCode" | "wallUs" | "warm" | "richOutputs"> & { wallUs?: number; warm?: boolean; richOutputs?: boolean },
): Buffer {
  const body = Buffer.alloc(EXIT_SIZE);
  body[0] = exit.signal !== undefined ? 1 : 0;
  body[1] =
    (exit.timedOut ? ExitFlag.TimedOut : 0) |
    (exit.killed ? ExitFlag.Killed : 0) |
    (exit.usage ? ExitFlag.Usage : 0) |
    (exit.outputCut ? ExitFlag.OutputCut : 0) |
    (exit.startFailed ? ExitFlag.StartFailed : 0) |
    (exit.warm ? ExitFlag.Warm : 0) |
    (exit.oomKills !== undefined ? ExitFlag.OomCounted : 0) |
    (exit.richOutputs ? ExitFlag.RichOutputs : 0);
  body.writeUInt32BE(exit.signal ?? exit.exitStatus ?? 0, 4);
  body.writeUInt32BE(exit.oomKills ?? 0, 56);
  const u = exit.usage;
  const fields = [u?.userUs ?? 0, u?.systemUs ?? 0, u?.maxRssKiB ?? 0, exit.wallUs ?? 0, u?.netRxBytes ?? 0, u?.netTxBytes ?? 0];
  fields.forEach((value, i) => body.writeBigUInt64BE(BigInt(value), 8 + i * 8));
  return encodeFrame(FrameType.Exit, id, body);
}

/** Reads a RUN frame's body back (the executor's side, for tests and tools). */
export function decodeRun(id: number, body: Buffer): RunRequest {
  let at = 0;
  const u32 = () => {
    if (body.length - at < 4) throw new ExecutorProtocolError("truncated RUN");
    const value = body.readUInt32BE(at);
    at += 4;
    return value;
  };
  const str = () => {
    const length = u32();
    if (body.length - at < length) throw new ExecutorProtocolError("truncated string in RUN");
    const value = body.subarray(at, at + length).toString("utf8");
    at += length;
    return value;
  };
  const list = () => Array.from({ length: u32() }, str);
  const flags = u32();
  const timeLimitMs = u32();
  const argv = list();
  const env = Object.fromEntries(list().map((entry) => [entry.slice(0, entry.indexOf("=")), entry.slice(entry.indexOf("=") + 1)]));
  const cwd = str();
  const stdinPath = str();
  if (at !== body.length) throw new ExecutorProtocolError("trailing bytes in RUN");
  return {
    id,
    argv,
    env,
    cwd,
    ...(stdinPath && { stdinPath }),
    ...(timeLimitMs && { timeLimitMs }),
    measureUsage: (flags & RunFlag.Measure) !== 0,
    files: (flags & RunFlag.Files) !== 0,
    stdin: (flags & RunFlag.Stdin) !== 0,
    warm: (flags & RunFlag.Warm) !== 0,
  };
}

/** The usage an EXIT frame reports, as a result carries it. */
export function toResourceUsage(usage: NonNullable<ExitReport["usage"]>): ResourceUsage {
  return {
    cpuTimeMs: Math.round((usage.userUs + usage.systemUs) / 1000),
    peakMemoryBytes: usage.maxRssKiB * 1024,
    networkBytesIn: usage.netRxBytes,
    networkBytesOut: usage.netTxBytes,
  };
}

/** The HELLO of an executor, refused when it speaks another protocol version than this engine. */
export function checkedHello(body: Buffer, containerId: string): Hello {
  const hello = parseHello(body);
  if (hello.version !== EXECUTOR_PROTOCOL_VERSION) {
    throw new ExecutionError(
      `the executor in container ${containerId.slice(0, 12)} speaks protocol ${hello.version}; this engine speaks ${EXECUTOR_PROTOCOL_VERSION}. Run 'isol8 setup' to rebuild the images.`,
    );
  }
  return hello;
}

/** How long the engine waits for the executor's answers before it stops waiting. */
export const EXECUTOR_TIMEOUTS = {
  /** A started container's executor says HELLO. */
  helloMs: 30_000,
  /** A warm start gets ready (PREPARE's answer); without it the next run starts cold. */
  prepareMs: 15_000,
  /** A KILLALL is done (the engine's watchdog takes over after it). */
  killAllMs: 5_000,
} as const;

/** The frames of one run request: RUN, then its FILES (the payload tar) and a one-block STDIN. */
export function runFrames(
  id: number,
  request: {
    argv: readonly string[];
    env: Readonly<Record<string, string>>;
    cwd?: string;
    payload: Buffer;
    stdin?: Buffer;
    stdinPath?: string;
    streamsStdin?: boolean;
    timeoutMs?: number;
    measureUsage?: boolean;
    warm?: boolean;
  },
): Buffer[] {
  const files = request.payload.length > 0;
  const stdin = request.stdin !== undefined || request.streamsStdin === true;
  return [
    encodeRun({
      id,
      argv: [...request.argv],
      env: { ...request.env },
      cwd: request.cwd ?? SANDBOX_DIR,
      stdinPath: stdin ? undefined : request.stdinPath,
      timeLimitMs: request.timeoutMs,
      measureUsage: request.measureUsage,
      files,
      stdin,
      warm: request.warm,
    }),
    ...(files ? encodeData(FrameType.Files, id, request.payload) : []),
    ...(request.stdin !== undefined ? encodeData(FrameType.Stdin, id, request.stdin) : []),
  ];
}
