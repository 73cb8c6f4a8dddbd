import Docker from "dockerode";
import type { Duplex, Readable } from "node:stream";
import {
  DockerUnavailableError,
  ExecutionError,
  Isol8Error,
  type AttachedStdio,
  type ExecOptions,
  type ExecOutcome,
  type SandboxDriver,
  type SandboxInfo,
  type SandboxSpec,
} from "@isol8/kit";
import { dockerNetworks } from "./networks.js";
import { dockerCreateOptions, type ContainerCreateOptions } from "./spec.js";

/** Error codes of a connection to the Docker engine that broke or was never made. */
const CONNECTION_ERRORS = new Set(["ENOENT", "ECONNREFUSED", "EACCES", "ECONNRESET", "EPIPE", "ECONNABORTED", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH"]);

/**
 * Every Docker Engine API call isol8 makes goes through this class, so another engine or a
 * faster path can replace it without touching the pipeline. The engine speaks API 1.41
 * (Debian's Docker 20.10): no newer fields are used.
 */
export class DockerDriver implements SandboxDriver {
  readonly kind = "docker";
  readonly docker: Docker;
  /** Containers whose removal failed (e.g. while Docker was down): retried when Docker answers again. */
  readonly #unremoved = new Set<string>();
  #retrying: Promise<void> | undefined;

  constructor(docker?: Docker) {
    this.docker = docker ?? new Docker();
  }

  async ping(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (error) {
      const socket = (this.docker.modem as { socketPath?: string }).socketPath ?? "the configured host";
      throw new DockerUnavailableError(`${socket}: ${(error as Error).message}`, { cause: error });
    }
    this.#answered();
  }

  /**
   * Whether the Docker engine answers a ping within `timeoutMs`: after a failure, tells "Docker
   * stopped answering" from "the container failed". A hung engine counts as not answering.
   */
  async answers(timeoutMs = 5_000): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const ping = this.ping().then(
      () => true,
      () => false,
    );
    try {
      return await Promise.race([ping, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ids of containers whose removal failed and is still to be retried. */
  get unremoved(): string[] {
    return [...this.#unremoved];
  }

  /** Tries again every failed removal; resolves with the ids still not removed. */
  async retryRemovals(): Promise<string[]> {
    await this.#retrying;
    await Promise.allSettled(this.unremoved.map((id) => this.removeContainer(id)));
    return this.unremoved;
  }

  /** A call succeeded, so Docker answers: retry failed removals in the background (one round at a time). */
  #answered(): void {
    if (this.#unremoved.size === 0 || this.#retrying) return;
    this.#retrying = Promise.allSettled(this.unremoved.map((id) => this.#remove(id))).then(() => {
      this.#retrying = undefined;
    });
  }

  async imageExists(tag: string): Promise<boolean> {
    try {
      await this.docker.getImage(tag).inspect();
      this.#answered();
      return true;
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return false;
      throw this.wrap(error);
    }
  }

  async imageLabels(tag: string): Promise<Record<string, string> | undefined> {
    try {
      const info = await this.docker.getImage(tag).inspect();
      this.#answered();
      return info.Config?.Labels ?? {};
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return undefined;
      throw this.wrap(error);
    }
  }

  /**
   * Creates and starts a container; returns its id. A container that fails to start is removed.
   * `beforeStart` runs between create and start (e.g. to attach to its stdio before its main
   * process writes anything); when it throws, the container is removed.
   */
  async startContainer(spec: ContainerCreateOptions, options: { beforeStart?: (id: string) => Promise<void> } = {}): Promise<string> {
    const container = await this.docker.createContainer(spec).catch((error) => {
      throw this.wrap(error);
    });
    try {
      await options.beforeStart?.(container.id);
      await container.start();
    } catch (error) {
      await this.removeContainer(container.id).catch(() => undefined); // a failed removal is retried later
      throw this.wrap(error);
    }
    this.#answered();
    return container.id;
  }

  /**
   * Force-removes a container (and its anonymous volumes); a container already gone is not an
   * error. A removal that fails is remembered and retried (see retryRemovals), so a container is
   * not left behind because Docker was down at the moment it was to be removed.
   */
  async removeContainer(id: string): Promise<void> {
    await this.#remove(id);
    this.#answered();
  }

  async #remove(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).remove({ force: true, v: true });
    } catch (error) {
      const status = (error as { statusCode?: number }).statusCode;
      if (status !== 404 && status !== 409) {
        this.#unremoved.add(id);
        throw this.wrap(error);
      }
      // 404: gone; 409: removal already in progress.
    }
    this.#unremoved.delete(id);
  }

  async inspectContainer(id: string): Promise<Docker.ContainerInspectInfo | undefined> {
    try {
      const info = await this.docker.getContainer(id).inspect();
      this.#answered();
      return info;
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return undefined;
      throw this.wrap(error);
    }
  }

  async listContainers(labels: Record<string, string | true>): Promise<Docker.ContainerInfo[]> {
    const label = Object.entries(labels).map(([k, v]) => (v === true ? k : `${k}=${v}`));
    const list = await this.docker.listContainers({ all: true, filters: { label } }).catch((error) => {
      throw this.wrap(error);
    });
    this.#answered();
    return list;
  }

  /** Runs a command in a running container; streams output; resolves with the exit code. */
  async exec(containerId: string, options: ExecOptions): Promise<ExecOutcome> {
    const attachStdin = options.stdin !== undefined;
    const exec = await this.docker
      .getContainer(containerId)
      .exec({
        Cmd: options.argv,
        User: options.user,
        Env: options.env ? Object.entries(options.env).map(([k, v]) => `${k}=${v}`) : undefined,
        WorkingDir: options.workdir,
        AttachStdin: attachStdin,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
      })
      .catch((error) => {
        throw this.wrap(error);
      });
    const stream = (await exec.start({ hijack: true, stdin: attachStdin }).catch((error: unknown) => {
      throw this.wrap(error);
    })) as Duplex;

    await new Promise<void>((resolve, reject) => {
      const onAbort = () => stream.destroy();
      options.signal?.addEventListener("abort", onAbort, { once: true });
      const pending: Promise<void>[] = [];
      const demux = new MultiplexedStreamParser((which, chunk) => {
        const wait = options.onOutput?.(which, chunk);
        if (wait) pending.push(wait);
      });
      stream.on("data", (chunk: Buffer) => {
        demux.push(chunk);
        if (pending.length === 0) return;
        stream.pause();
        void Promise.allSettled(pending.splice(0)).then(() => stream.resume());
      });
      stream.once("end", () => resolve());
      stream.once("close", () => resolve());
      stream.once("error", (error) => (options.signal?.aborted ? resolve() : reject(this.wrap(error))));
      if (attachStdin) {
        stream.write(options.stdin);
        // Half-close: Docker sees EOF on the program's stdin while we keep reading its output.
        stream.end();
      }
    }).finally(() => stream.removeAllListeners("data"));

    const info = await exec.inspect().catch((error) => {
      throw this.wrap(error);
    });
    this.#answered();
    if (info.Running) {
      // The stream closed before the process ended (aborted). The caller kills it.
      return { exitCode: -1 };
    }
    return { exitCode: info.ExitCode ?? -1 };
  }

  async ociRuntimes(): Promise<string[]> {
    const info = (await this.docker.info().catch((error: unknown) => {
      throw this.wrap(error);
    })) as { Runtimes?: Record<string, unknown> };
    return Object.keys(info.Runtimes ?? {});
  }

  /** SandboxDriver.create: the neutral spec as Docker create options, created and started. */
  async create(spec: SandboxSpec, options: { name?: string; beforeStart?: (id: string) => Promise<void> } = {}): Promise<string> {
    return this.startContainer(dockerCreateOptions(spec, options.name), options);
  }

  remove(id: string): Promise<void> {
    return this.removeContainer(id);
  }

  async inspect(id: string): Promise<SandboxInfo | undefined> {
    const info = await this.inspectContainer(id);
    if (!info) return undefined;
    const networks = info.NetworkSettings?.Networks ?? {};
    const running = info.State?.Running === true;
    return {
      id: info.Id,
      running,
      labels: info.Config?.Labels ?? {},
      addresses: Object.fromEntries(Object.entries(networks).map(([name, network]) => [name, network.IPAddress])),
      restarts: info.RestartCount ?? 0,
      ...((!running || (info.RestartCount ?? 0) > 0) && info.State?.ExitCode !== undefined && { exitCode: info.State.ExitCode }),
    };
  }

  async list(labels: Readonly<Record<string, string | true>>): Promise<SandboxInfo[]> {
    const list = await this.listContainers(labels);
    return list.map((c) => ({
      id: c.Id,
      running: c.State === "running",
      labels: c.Labels ?? {},
      addresses: Object.fromEntries(Object.entries(c.NetworkSettings?.Networks ?? {}).map(([name, network]) => [name, network.IPAddress])),
    }));
  }

  /** Attaches to a created container's main process (it must have been created with attachStdio). */
  async attach(id: string): Promise<AttachedStdio> {
    const channel = (await this.docker
      .getContainer(id)
      .attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })
      .catch((error: unknown) => {
        throw this.wrap(error);
      })) as unknown as Duplex;
    return {
      channel,
      onOutput: (listener) => {
        const demux = new MultiplexedStreamParser(listener);
        channel.on("data", (chunk: Buffer) => demux.push(chunk));
      },
    };
  }

  async logs(id: string, tail: number): Promise<string> {
    const buffer = (await this.docker
      .getContainer(id)
      .logs({ stdout: true, stderr: true, tail })
      .catch((error: unknown) => {
        throw this.wrap(error);
      })) as unknown as Buffer;
    const chunks: Buffer[] = [];
    new MultiplexedStreamParser((_stream, chunk) => chunks.push(chunk)).push(buffer);
    return Buffer.concat(chunks).toString("utf8");
  }

  readonly networks: SandboxDriver["networks"] = dockerNetworks(this);

  /** Raw access for the image builder (build and import take streams). */
  async buildImage(context: Readable, options: Record<string, unknown>): Promise<NodeJS.ReadableStream> {
    return this.docker.buildImage(context as unknown as NodeJS.ReadableStream, options).catch((error) => {
      throw this.wrap(error);
    });
  }

  /**
   * The one place that classifies a failed Docker API call: a broken connection to the engine
   * (socket gone, refused, reset, hung up) is a DockerUnavailableError, whatever call it hit.
   */
  wrap(error: unknown): Error {
    if (Isol8Error.isInstance(error)) return error;
    const code = (error as { code?: string }).code;
    const message = error instanceof Error ? error.message : "";
    if ((code && CONNECTION_ERRORS.has(code)) || /socket hang up/i.test(message)) {
      return new DockerUnavailableError(`it stopped answering: ${message}`, { cause: error });
    }
    if (error instanceof Error) return error;
    return new ExecutionError(String(error));
  }
}

/**
 * Splits Docker's multiplexed (non-TTY) attach stream: frames of an 8-byte header
 * (stream type, 3 zero bytes, big-endian length) and a payload.
 */
export class MultiplexedStreamParser {
  #buffer: Buffer = Buffer.alloc(0);

  constructor(private readonly emit: (stream: "stdout" | "stderr", chunk: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    let offset = 0;
    while (this.#buffer.length - offset >= 8) {
      const type = this.#buffer[offset]!;
      const length = this.#buffer.readUInt32BE(offset + 4);
      if (this.#buffer.length - offset - 8 < length) break;
      const payload = this.#buffer.subarray(offset + 8, offset + 8 + length);
      offset += 8 + length;
      if (length > 0) this.emit(type === 2 ? "stderr" : "stdout", payload);
    }
    this.#buffer = offset === this.#buffer.length ? Buffer.alloc(0) : this.#buffer.subarray(offset);
  }
}
