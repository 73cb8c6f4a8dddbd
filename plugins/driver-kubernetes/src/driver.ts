import { createHash } from "node:crypto";
import querystring from "node:querystring";
import { CoreV1Api, KubeConfig, type V1Pod } from "@kubernetes/client-node";
import {
  InvalidOptionsError,
  NotSupportedError,
  type AttachedStdio,
  type ExecOptions,
  type ExecOutcome,
  type SandboxDriver,
  type SandboxInfo,
  type SandboxSpec,
} from "@isol8/kit";
import { AttachChannel, CHANNEL, canCloseStdin, channelMessage, openChannel, type ChannelSocket } from "./channel.js";
import { classifyApiError, KubernetesApiError } from "./errors.js";
import { EngineLeases } from "./leases.js";
import { kubernetesDriverOptionsSchema, type KubernetesDriverOptions, type ResolvedKubernetesDriverOptions } from "./options.js";
import { podFromSpec, SANDBOX_CONTAINER, STDIN_GATE_ANNOTATION } from "./pod-spec.js";
import { execArgv, execIdentity, exitCodeOfStatus, podInfo, startFailure, type ExecIdentity } from "./pod-status.js";

/** The kubeconfig the options name: the pod's service account (inCluster), a file, else the client's default lookup. */
export function loadKubeConfig(options: Pick<ResolvedKubernetesDriverOptions, "kubeconfig" | "inCluster">): KubeConfig {
  const config = new KubeConfig();
  try {
    if (options.inCluster) config.loadFromCluster();
    else if (options.kubeconfig) config.loadFromFile(options.kubeconfig);
    else config.loadFromDefault();
  } catch (error) {
    const source = options.inCluster
      ? "inCluster: the pod's service account"
      : options.kubeconfig
        ? `kubeconfig "${options.kubeconfig}"`
        : "the default kubeconfig";
    throw new InvalidOptionsError(`${source} could not be read: ${(error as Error).message}`, { cause: error });
  }
  return config;
}

/**
 * Sandboxes as Pods of one namespace, through the API server only (create/get/list/delete,
 * attach, exec: exactly the Role of deploy/kubernetes). Ids are pod names.
 */
export class KubernetesDriver implements SandboxDriver {
  readonly kind = "kubernetes";
  /**
   * Networks "none" and "filtered" (the NetworkPolicy of deploy/kubernetes, by label; never the
   * node's network), and a pods/exec cannot switch to the sandbox uid from a non-root main process
   * (the exec launcher); a pod is not deleted when its main process ends (the engine deletes it).
   */
  readonly limits = { networkModes: ["none", "filtered"], execLauncher: false, removeWhenDetached: false } as const;
  /** No networks: the NetworkPolicy keeps a filtered pod to the egress proxy pods (see NETWORK_LABEL). */
  readonly networkIsolation = "policy" as const;
  readonly options: ResolvedKubernetesDriverOptions;
  /** One Lease per engine: pods of an engine whose Lease expired (its pod replaced or restarted) are reaped. */
  readonly ownership: EngineLeases;
  readonly #config: KubeConfig;
  readonly #api: CoreV1Api;
  readonly #unremoved = new Set<string>();
  /** Attach sockets of gated pods whose main process still waits for its line (see STDIN_GATE). */
  readonly #gates = new Map<string, ChannelSocket>();
  /** Who an exec runs as in each pod (its container's user): read once. */
  readonly #identities = new Map<string, ExecIdentity>();

  constructor(options: KubernetesDriverOptions = {}, config?: KubeConfig) {
    this.options = kubernetesDriverOptionsSchema.parse(options);
    this.#config = config ?? loadKubeConfig(this.options);
    this.#api = this.#config.makeApiClient(CoreV1Api);
    this.ownership = new EngineLeases(this.#config, {
      namespace: this.options.leaseNamespace ?? this.options.namespace,
      durationSeconds: this.options.leaseDurationSeconds,
      renewEveryMs: this.options.leaseRenewMs,
    });
  }

  get #namespace(): string {
    return this.options.namespace;
  }

  async #call<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw classifyApiError(error, what);
    }
  }

  async ping(): Promise<void> {
    await this.#call(`listing pods in namespace ${this.#namespace}`, () => this.#api.listNamespacedPod({ namespace: this.#namespace, limit: 1 }));
  }

  async answers(timeoutMs = 5_000): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    try {
      return await Promise.race([
        this.ping().then(
          () => true,
          () => false,
        ),
        deadline,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** RuntimeClasses are cluster-scoped (no namespaced Role lists them): the ones the options declare. */
  async ociRuntimes(): Promise<string[]> {
    return [...this.options.runtimeClasses];
  }

  /** The API server cannot see a registry: an image exists when the options map it (or a registry prefix is set). */
  async imageExists(image: string): Promise<boolean> {
    return image in this.options.images || this.options.imageRegistry !== undefined;
  }

  async imageLabels(image: string): Promise<Record<string, string> | undefined> {
    const pushed = this.options.images[image];
    if (pushed) return { ...pushed.labels };
    return this.options.imageRegistry !== undefined ? {} : undefined;
  }

  /** The pod of a spec (see podFromSpec): what create() sends. */
  podOf(spec: SandboxSpec, name?: string): V1Pod {
    const seccompSha256 = spec.seccomp.kind === "profile" ? createHash("sha256").update(spec.seccomp.json).digest("hex") : undefined;
    return podFromSpec(spec, this.options, { ...(name !== undefined && { name }), ...(seccompSha256 && { seccompSha256 }) });
  }

  /**
   * Creates the pod, waits until its container runs, runs `beforeStart` (the executor's attach),
   * then lets a gated main process go. A pod that fails to start is deleted.
   */
  async create(spec: SandboxSpec, options: { name?: string; beforeStart?: (id: string) => Promise<void> } = {}): Promise<string> {
    const body = this.podOf(spec, options.name);
    const created = await this.#call("creating a sandbox pod", () => this.#api.createNamespacedPod({ namespace: this.#namespace, body }));
    const id = created.metadata!.name!;
    this.#identities.set(id, execIdentity(body));
    try {
      await this.#waitRunning(id);
      await options.beforeStart?.(id);
      if (body.metadata?.annotations?.[STDIN_GATE_ANNOTATION] === "true") await this.#openGate(id);
    } catch (error) {
      this.#closeGate(id);
      await this.remove(id).catch(() => undefined); // a failed removal is retried later
      throw classifyApiError(error, `starting pod ${id}`);
    }
    return id;
  }

  async #waitRunning(id: string): Promise<void> {
    const deadline = Date.now() + this.options.startTimeoutMs;
    for (;;) {
      const pod = await this.#call(`reading pod ${id}`, () => this.#api.readNamespacedPod({ name: id, namespace: this.#namespace }));
      const failure = startFailure(pod);
      if (failure) throw failure;
      const state = pod.status?.containerStatuses?.find((c) => c.name === SANDBOX_CONTAINER)?.state;
      if (state?.running) return;
      if (Date.now() > deadline) {
        throw new KubernetesApiError(
          0,
          "StartTimeout",
          `pod ${id} was not running within ${this.options.startTimeoutMs} ms (phase ${pod.status?.phase ?? "unknown"})`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, this.options.pollIntervalMs));
    }
  }

  /** Sends the gate's line: over the attach the executor's launcher opened, else over one of its own. */
  async #openGate(id: string): Promise<void> {
    let socket = this.#gates.get(id);
    this.#gates.delete(id);
    const own = !socket;
    socket ??= await openChannel(this.#config, this.#attachPath(id), () => undefined);
    await new Promise<void>((resolve, reject) => socket.send(channelMessage(CHANNEL.stdin, Buffer.from("\n")), (error) => (error ? reject(error) : resolve())));
    if (own) socket.close();
  }

  #closeGate(id: string): void {
    this.#gates.delete(id);
  }

  #attachPath(id: string): string {
    const query = querystring.stringify({ container: SANDBOX_CONTAINER, stdin: true, stdout: true, stderr: true, tty: false });
    return `/api/v1/namespaces/${this.#namespace}/pods/${encodeURIComponent(id)}/attach?${query}`;
  }

  get unremoved(): string[] {
    return [...this.#unremoved];
  }

  async retryRemovals(): Promise<string[]> {
    await Promise.allSettled(this.unremoved.map((id) => this.remove(id)));
    return this.unremoved;
  }

  /** Deletes the pod at once (grace 0); one already gone is not an error; a failed deletion is retried later. */
  async remove(id: string): Promise<void> {
    this.#closeGate(id);
    this.#identities.delete(id);
    try {
      await this.#api.deleteNamespacedPod({ name: id, namespace: this.#namespace, gracePeriodSeconds: 0 });
    } catch (error) {
      if ((error as { code?: unknown }).code !== 404) {
        this.#unremoved.add(id);
        throw classifyApiError(error, `deleting pod ${id}`);
      }
    }
    this.#unremoved.delete(id);
  }

  async inspect(id: string): Promise<SandboxInfo | undefined> {
    try {
      return podInfo(await this.#api.readNamespacedPod({ name: id, namespace: this.#namespace }));
    } catch (error) {
      if ((error as { code?: unknown }).code === 404) return undefined;
      throw classifyApiError(error, `reading pod ${id}`);
    }
  }

  async list(labels: Readonly<Record<string, string | true>>): Promise<SandboxInfo[]> {
    const labelSelector = Object.entries(labels)
      .map(([key, value]) => (value === true ? key : `${key}=${value}`))
      .join(",");
    const list = await this.#call(`listing pods by ${labelSelector}`, () => this.#api.listNamespacedPod({ namespace: this.#namespace, labelSelector }));
    return list.items.map(podInfo);
  }

  /** Attaches to the main process's stdin and output (the pod must have been created with attachStdio). */
  async attach(id: string): Promise<AttachedStdio> {
    const channel = new AttachChannel();
    const socket = await this.#call(`attaching to pod ${id}`, () => openChannel(this.#config, this.#attachPath(id), channel.receive));
    channel.bind(socket);
    this.#gates.set(id, socket);
    return channel.stdio();
  }

  /**
   * Runs a command through pods/exec. The API has no user, env or working directory for an exec:
   * `setpriv` (util-linux) drops to `user` and `env` sets the rest, both from the image.
   */
  async exec(id: string, options: ExecOptions): Promise<ExecOutcome> {
    if (options.signal?.aborted) return { exitCode: -1 };
    let identity = this.#identities.get(id);
    if (!identity && options.user !== undefined) {
      identity = execIdentity(await this.#call(`reading pod ${id}`, () => this.#api.readNamespacedPod({ name: id, namespace: this.#namespace })));
      this.#identities.set(id, identity);
    }
    const command = execArgv(options, identity ?? { uid: 0, gid: 0, canSwitch: false }, `pod ${id}`);
    const query = querystring.stringify({ container: SANDBOX_CONTAINER, stdin: options.stdin !== undefined, stdout: true, stderr: true, tty: false, command });
    const path = `/api/v1/namespaces/${this.#namespace}/pods/${encodeURIComponent(id)}/exec?${query}`;
    let status: unknown;
    const pending: Promise<void>[] = [];
    // Output may arrive before connect() resolves: the socket is looked up when there is one to pause.
    const opened: { socket?: ChannelSocket } = {};
    opened.socket = await this.#call(`exec in pod ${id}`, () =>
      openChannel(this.#config, path, (channel, data) => {
        if (channel === CHANNEL.status) {
          // The final message: the exec is over, whether or not the server closes promptly.
          status = JSON.parse(data.toString("utf8"));
          opened.socket?.terminate();
        } else if (channel === CHANNEL.stdout || channel === CHANNEL.stderr) {
          const wait = options.onOutput?.(channel === CHANNEL.stdout ? "stdout" : "stderr", data);
          if (wait) pending.push(wait);
          if (pending.length > 0 && opened.socket) {
            const paused = opened.socket;
            paused.pause();
            void Promise.allSettled(pending.splice(0)).then(() => paused.resume());
          }
        }
      }),
    );
    const open = opened.socket;
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => open.terminate();
      options.signal?.addEventListener("abort", onAbort, { once: true });
      open.on("close", () => {
        options.signal?.removeEventListener("abort", onAbort);
        resolve();
      });
      open.on("error", (error) => (options.signal?.aborted ? resolve() : reject(classifyApiError(error, `exec in pod ${id}`))));
      if (options.stdin !== undefined) {
        if (!canCloseStdin(open)) {
          open.terminate();
          reject(
            new NotSupportedError(`exec with stdin needs the v5.channel.k8s.io protocol (to close stdin); the API server offered ${open.protocol || "none"}`),
          );
          return;
        }
        open.send(channelMessage(CHANNEL.stdin, options.stdin));
        open.send(Buffer.from([CHANNEL.close, CHANNEL.stdin]));
      }
    });
    await Promise.allSettled(pending);
    if (status === undefined) return { exitCode: -1 }; // the stream ended before the process (aborted)
    return { exitCode: exitCodeOfStatus(status) };
  }

  /** The Role grants no pods/log (sandbox output is never read back from node logs): nothing to show. */
  async logs(_id: string, _tail: number): Promise<string> {
    return "";
  }

  /** Sandboxes here have no networks of their own (networkIsolation "policy"): none exist, none can be made. */
  readonly networks: SandboxDriver["networks"] = {
    create: async (spec) => {
      throw new NotSupportedError(
        `the Kubernetes driver makes no networks (asked for "${spec.name}"): a pod's network is a NetworkPolicy by label (networkIsolation "policy")`,
      );
    },
    remove: async () => undefined,
    list: async () => [],
    inspect: async () => undefined,
    attached: async () => undefined,
    connect: async (name) => {
      throw new NotSupportedError(`the Kubernetes driver makes no networks (asked to connect to "${name}")`);
    },
    disconnect: async () => undefined,
  };
}
