import { DATA_CHUNK, ExecutorProtocolError, FrameType, encodeCommandFrame, encodeFrame, type Frame, type PrepareRequest } from "./executor-protocol.js";

/**
 * The contexts' part of the executor protocol (PROTOCOL.md, "Contexts"): the CTX_* frames, pure
 * encoding and decoding; and what the executor connection routes to the contexts of a container.
 */

/** CTX_START: a context's kernel (argv, env, cwd as PREPARE carries them), under the id `id`. */
export function encodeContextStart(request: PrepareRequest): Buffer {
  return encodeCommandFrame(FrameType.ContextStart, request);
}

/** CTX_SIGNAL: SIGINT (2), SIGTERM (15) or SIGKILL (9) to a context's kernel. */
export function encodeContextSignal(id: number, signal: 2 | 9 | 15): Buffer {
  const body = Buffer.allocUnsafe(4);
  body.writeUInt32BE(signal);
  return encodeFrame(FrameType.ContextSignal, id, body);
}

/** CTX_SEND: bytes for a kernel's fd 3, in frames of at most DATA_CHUNK bytes. */
export function encodeContextSend(id: number, data: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  for (let at = 0; at < data.length; at += DATA_CHUNK) frames.push(encodeFrame(FrameType.ContextSend, id, data.subarray(at, at + DATA_CHUNK)));
  return frames;
}

/** How a context's kernel ended (CTX_EXIT): its exit status, or the signal that killed it. */
export interface ContextExit {
  signal?: number;
  exitCode?: number;
}

export function parseContextExit(body: Buffer): ContextExit {
  if (body.length < 8) throw new ExecutorProtocolError(`a CTX_EXIT of ${body.length} bytes (expected 8)`);
  const value = body.readUInt32BE(4);
  return body[0] === 1 ? { signal: value } : { exitCode: value };
}

/** The contexts of one container (executor-contexts.ts): the connection routes their frames, by id, to it. */
export interface ContextFrames {
  /** Whether `id` is one of its kernels (or a CTX_START awaiting its answer). */
  owns(id: number): boolean;
  dispatch(frame: Frame): void | Promise<void>;
  /** A cell is running: the connection keeps the process alive meanwhile. */
  busy(): boolean;
  /** The connection ended: every kernel is gone. */
  closed(error: Error): void;
}
