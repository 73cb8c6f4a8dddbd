import { Duplex, PassThrough } from "node:stream";
import type { KubeConfig } from "@kubernetes/client-node";
// Not re-exported by the package index; Attach and Exec use it with this process's stdio as its default streams.
import { WebSocketHandler } from "@kubernetes/client-node/dist/web-socket-handler.js";
import type { AttachedStdio } from "@isol8/kit";

/**
 * The API server's channel protocol over one WebSocket (pods/attach, pods/exec): every message
 * is one byte of channel (0 stdin, 1 stdout, 2 stderr, 3 status, 255 close in v5) and its data.
 */
export const CHANNEL = { stdin: 0, stdout: 1, stderr: 2, status: 3, close: 255 } as const;

/** The client's WebSocket (the `ws` package's, an EventEmitter with pause/resume). */
export interface ChannelSocket {
  readonly protocol: string;
  readonly readyState: number;
  send(data: Buffer, callback?: (error?: Error) => void): void;
  close(): void;
  terminate(): void;
  pause(): void;
  resume(): void;
  on(event: "close", listener: () => void): void;
  on(event: "error", listener: (error: Error) => void): void;
  _socket?: { ref(): void; unref(): void };
}

export type ChannelListener = (channel: number, data: Buffer) => void;

/**
 * Opens `path` on the API server; `onMessage` gets each binary message's channel and data. The
 * client's default streams are replaced by sinks: its v5 close handling must never end this
 * process's own stdout.
 */
export async function openChannel(config: KubeConfig, path: string, onMessage: ChannelListener): Promise<ChannelSocket> {
  const sinks = { stdin: new PassThrough(), stdout: new PassThrough(), stderr: new PassThrough() };
  const handler = new WebSocketHandler(config, undefined, sinks as never);
  const socket = (await handler.connect(path, null, (channel: number, data: Buffer) => {
    onMessage(channel, data);
    return true;
  })) as unknown as ChannelSocket;
  return socket;
}

export function channelMessage(channel: number, data: Buffer): Buffer {
  const message = Buffer.allocUnsafe(data.length + 1);
  message[0] = channel;
  data.copy(message, 1);
  return message;
}

/** Whether the socket speaks v5, the first version that can half-close stdin. */
export function canCloseStdin(socket: ChannelSocket): boolean {
  return socket.protocol === "v5.channel.k8s.io";
}

/**
 * AttachedStdio over an attach WebSocket: writes go out on channel 0; pause/resume/destroy/ref
 * act on the socket; its close is the channel's close. Output that arrives before a listener is
 * registered is kept and handed over, so the executor's HELLO is never dropped.
 */
export class AttachChannel extends Duplex {
  #socket: ChannelSocket | undefined;
  #listener: ((stream: "stdout" | "stderr", chunk: Buffer) => void) | undefined;
  readonly #early: Array<["stdout" | "stderr", Buffer]> = [];

  constructor() {
    super({ allowHalfOpen: true });
  }

  /** Binds the socket once it is open (the channel exists before, to receive messages as they come). */
  bind(socket: ChannelSocket): void {
    this.#socket = socket;
    socket.on("close", () => this.destroy());
    socket.on("error", (error) => this.destroy(error));
  }

  /** The socket's messages: stdout and stderr go to the listener. */
  readonly receive: ChannelListener = (channel, data) => {
    if (channel !== CHANNEL.stdout && channel !== CHANNEL.stderr) return;
    const stream = channel === CHANNEL.stdout ? "stdout" : "stderr";
    if (this.#listener) this.#listener(stream, data);
    else this.#early.push([stream, data]);
  };

  stdio(): AttachedStdio {
    return {
      channel: this,
      onOutput: (listener) => {
        this.#listener = listener;
        for (const [stream, data] of this.#early.splice(0)) listener(stream, data);
      },
    };
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (!this.#socket) return callback(new Error("the attach connection is not open"));
    this.#socket.send(channelMessage(CHANNEL.stdin, chunk), (error) => callback(error ?? null));
  }

  override _read(): void {
    // Output is delivered through onOutput, never through the readable side.
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#socket?.terminate();
    callback(error);
  }

  override pause(): this {
    this.#socket?.pause();
    return super.pause();
  }

  override resume(): this {
    this.#socket?.resume();
    return super.resume();
  }

  ref(): void {
    this.#socket?._socket?.ref();
  }

  unref(): void {
    this.#socket?._socket?.unref();
  }
}
