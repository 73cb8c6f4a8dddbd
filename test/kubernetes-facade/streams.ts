import type { Duplex } from "node:stream";
import type Docker from "dockerode";
import type { WebSocket } from "ws";
import { MultiplexedStreamParser } from "@isol8/core";
import { execStatus } from "./status.js";

const STDIN = 0;
const STATUS = 3;
const CLOSE = 255;
/** Output waits while the client has this much unread (the API server's back-pressure). */
const HIGH_WATER = 4 * 2 ** 20;

/**
 * Bridges a channel-protocol WebSocket and a hijacked Docker stream: channel 0 → the stream's
 * stdin, its stdout/stderr → channels 1/2; in v5 a CLOSE of channel 0 half-closes stdin (exec)
 * or is ignored (attach: the container's stdin stays open, stdinOnce false).
 */
function bridge(socket: WebSocket, early: EarlyMessages, stream: Duplex, halfCloseStdin: boolean): Promise<void> {
  const demux = new MultiplexedStreamParser((which, chunk) => {
    const message = Buffer.allocUnsafe(chunk.length + 1);
    message[0] = which === "stdout" ? 1 : 2;
    chunk.copy(message, 1);
    socket.send(message);
    if (socket.bufferedAmount > HIGH_WATER) {
      stream.pause();
      const wait = setInterval(() => {
        if (socket.bufferedAmount > HIGH_WATER && socket.readyState === socket.OPEN) return;
        clearInterval(wait);
        stream.resume();
      }, 5);
    }
  });
  stream.on("data", (chunk: Buffer) => demux.push(chunk));
  const onMessage = (data: Buffer) => {
    const channel = data[0];
    if (channel === STDIN) {
      if (!stream.write(data.subarray(1))) {
        socket.pause();
        stream.once("drain", () => socket.resume());
      }
    } else if (channel === CLOSE && data[1] === STDIN && halfCloseStdin) stream.end();
  };
  early.handOver(onMessage);
  return new Promise<void>((resolve) => {
    stream.once("end", resolve);
    stream.once("close", resolve);
    stream.once("error", () => resolve());
    socket.once("close", () => {
      stream.destroy();
      resolve();
    });
  });
}

/**
 * Messages that arrive while the Docker stream is being opened (a client may write as soon as
 * the upgrade completes): kept, then handed over in order.
 */
export class EarlyMessages {
  readonly #kept: Buffer[] = [];
  #listener: ((data: Buffer) => void) | undefined;

  constructor(socket: WebSocket) {
    socket.on("message", (data: Buffer) => (this.#listener ? this.#listener(data) : this.#kept.push(data)));
  }

  handOver(listener: (data: Buffer) => void): void {
    for (const data of this.#kept.splice(0)) listener(data);
    this.#listener = listener;
  }
}

export async function serveAttach(socket: WebSocket, early: EarlyMessages, docker: Docker, containerId: string): Promise<void> {
  const stream = (await docker.getContainer(containerId).attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as unknown as Duplex;
  await bridge(socket, early, stream, false);
  if (socket.readyState === socket.OPEN) closeSocket(socket);
}

export async function serveExec(
  socket: WebSocket,
  early: EarlyMessages,
  docker: Docker,
  containerId: string,
  command: string[],
  stdin: boolean,
): Promise<void> {
  const exec = await docker.getContainer(containerId).exec({ Cmd: command, AttachStdin: stdin, AttachStdout: true, AttachStderr: true, Tty: false });
  const stream = (await exec.start({ hijack: true, stdin })) as Duplex;
  await bridge(socket, early, stream, true);
  if (socket.readyState !== socket.OPEN) return;
  const info = await exec.inspect();
  // A stream that ended while the process runs (the client went away): no status to give.
  if (!info.Running) socket.send(Buffer.concat([Buffer.from([STATUS]), Buffer.from(JSON.stringify(execStatus(info.ExitCode ?? 1)))]));
  closeSocket(socket);
}

/** Closes the WebSocket; reading resumes first, or the client's close reply would wait out ws's 30 s close timeout. */
function closeSocket(socket: WebSocket): void {
  socket.resume();
  socket.close(1000);
}
