import type { Duplex } from "node:stream";

/**
 * What a sandbox is, said without any backend's words: the engine builds a SandboxSpec, the
 * `sandboxSpec` hook shapes it (seccomp, network, labels), and a SandboxDriver turns it into a
 * container (Docker's create options live only in the Docker driver) or a pod.
 */

/** Labels on every sandbox an engine creates, so cleanup and the reaper find exactly its own. */
export const CONTAINER_LABELS = {
  managed: "isol8.managed",
  engine: "isol8.engine",
  runtime: "isol8.runtime",
  mode: "isol8.mode",
  session: "isol8.session",
  /** The process that owns the engine: the startup reaper removes containers whose owner is gone. */
  ownerPid: "isol8.owner-pid",
  ownerHost: "isol8.owner-host",
  /**
   * The owner's PID namespace (the inode of /proc/self/ns/pid): a pid means something only in its
   * own namespace, so the reaper judges only the containers of owners in its namespace.
   */
  ownerPidNamespace: "isol8.owner-pidns",
  /** Set on containers of a `persist: true` engine: the reaper leaves them for inspection. */
  persist: "isol8.persist",
  /** The container's own sandbox uid (and gid), from SANDBOX_UID_RANGE. */
  uid: "isol8.uid",
} as const;

/** A memory-backed filesystem mounted in the sandbox. */
export interface TmpfsMount {
  /** Size in bytes. */
  readonly sizeBytes: number;
  /** Octal mode of the mount's root, e.g. 0o700. */
  readonly mode: number;
  /** Owner of the mount's root (uid = gid); root when absent. */
  readonly owner?: number;
  /** Whether programs may be executed from it. */
  readonly exec: boolean;
}

/** The sandbox's network attachment. */
export type SandboxNetwork =
  /** Loopback only. */
  | { readonly kind: "none" }
  /** The host's own network stack (trusted code only). */
  | { readonly kind: "host" }
  /** A named network the driver made (see SandboxDriver.networks). */
  | { readonly kind: "network"; readonly name: string }
  /**
   * Drivers whose isolation is a policy (SandboxDriver.networkIsolation "policy"): the sandbox may
   * open connections to "egress" sandboxes only (Kubernetes: a NetworkPolicy selects it by label).
   */
  | { readonly kind: "proxied" }
  /** Policy drivers: the egress proxy's own: outbound to the outside; inbound only from "proxied" sandboxes and the engine. */
  | { readonly kind: "egress" };

/** The system-call filter of the sandbox's processes. */
export type SeccompPolicy =
  /** The driver's default profile (Docker's default, Kubernetes' RuntimeDefault). */
  | { readonly kind: "default" }
  /** A profile in the OCI/Docker seccomp JSON format, given inline. */
  | { readonly kind: "profile"; readonly json: string }
  /** No filter at all (trusted code only). */
  | { readonly kind: "unconfined" };

/**
 * One sandbox, backend-neutral. The engine's base spec is DESIGN.md §5's hardening; hooks shape
 * it and drivers map every field (a driver that cannot honour a field must refuse, not ignore it).
 */
export interface SandboxSpec {
  readonly image: string;
  /** argv of the main process (the executor, or a process that idles). */
  readonly command: readonly string[];
  /** "uid:gid" or a user name of the image, for the main process. */
  readonly user: string;
  readonly workdir: string;
  readonly env: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
  /** The main process's stdin and stdout are the engine's channel to it (the executor's protocol). */
  readonly attachStdio: boolean;
  /**
   * With attachStdio: the main process's stdin ends when the engine's attachment ends, and the
   * backend removes the sandbox once its main process exits (Docker: StdinOnce, AutoRemove). The
   * executor exits at its stdin's end, so such a sandbox ends with the engine's process, however
   * that process ends. Only where SandboxDriver.limits does not say removeWhenDetached: false.
   */
  readonly removeWhenDetached?: boolean;
  /** A minimal init as PID 1 that reaps orphans. */
  readonly init: boolean;
  readonly readonlyRootFs: boolean;
  /** Mount path → tmpfs. */
  readonly tmpfs: Readonly<Record<string, TmpfsMount>>;
  /** Capabilities the main process keeps; every other one is dropped. */
  readonly capabilities: readonly string[];
  readonly noNewPrivileges: boolean;
  readonly memoryBytes: number;
  /** CPUs (fractions allowed). */
  readonly cpus: number;
  readonly pidsLimit: number;
  readonly seccomp: SeccompPolicy;
  readonly network: SandboxNetwork;
  /** An OCI runtime of the driver's host ("runsc" for gVisor); the driver's default when absent. */
  readonly ociRuntime?: string;
  /** Namespaced kernel settings of the sandbox (e.g. a helper that must never forward packets). */
  readonly sysctls?: Readonly<Record<string, string>>;
  /** Restart the main process when it fails, at most this many times (helpers; never a code sandbox). */
  readonly restartOnFailure?: number;
  /**
   * "none": the main process's output is never stored by the backend (a sandbox's output must
   * not land in host log files); "capped": a small capped log, for a helper's diagnostics.
   */
  readonly logs: "none" | "capped";
  /**
   * The named extension point for what only one driver can express, keyed by driver kind
   * ("docker": fields merged into its create options last). A spec using it is not portable.
   */
  readonly driverExtensions?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
}

/** What a backend cannot run (SandboxDriver.limits). */
export interface DriverLimits {
  /** The network modes (engine option `network`) it can give a sandbox; any when absent. */
  readonly networkModes?: readonly string[];
  /** false: only the in-container executor starts programs (engine option `launcher`, images with the executor). */
  readonly execLauncher?: boolean;
  /** false: SandboxSpec.removeWhenDetached cannot be honoured (the engine then removes each sandbox itself). */
  readonly removeWhenDetached?: boolean;
}

/** A sandbox as the driver lists or inspects it. */
export interface SandboxInfo {
  readonly id: string;
  readonly running: boolean;
  readonly labels: Readonly<Record<string, string>>;
  /** Network name → the sandbox's address on it. */
  readonly addresses: Readonly<Record<string, string>>;
  /** How many times the backend restarted the main process (SandboxSpec.restartOnFailure); absent when the driver does not tell. */
  readonly restarts?: number;
  /** The exit code of the main process's last run, once one ended (it is not running, or was restarted). */
  readonly exitCode?: number;
}

export interface ExecOptions {
  argv: string[];
  user?: string;
  env?: Record<string, string>;
  workdir?: string;
  /** Written to the program's stdin, then stdin is closed. Without it stdin is not attached. */
  stdin?: Buffer;
  /** Each raw chunk of output, in order. Returning a promise pauses the stream until it settles (back-pressure). */
  onOutput?: (stream: "stdout" | "stderr", chunk: Buffer) => void | Promise<void>;
  signal?: AbortSignal;
}

export interface ExecOutcome {
  exitCode: number;
}

/**
 * The main process's stdio as the driver attaches to it. Writes to `channel` reach its stdin;
 * `channel`'s pause/resume/destroy/ref and its end/close/error events are the connection's; its
 * output arrives demultiplexed through `onOutput` (never read `channel`'s data events).
 */
export interface AttachedStdio {
  readonly channel: Duplex & { ref?: () => void; unref?: () => void };
  onOutput(listener: (stream: "stdout" | "stderr", chunk: Buffer) => void): void;
}

/** A private network of sandboxes (the filtered network mode makes one per sandbox). */
export interface NetworkSpec {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** No route out, and no address for the host on it. */
  readonly internal: boolean;
  /** A subnet in CIDR notation; the driver picks one when absent. */
  readonly subnet?: string;
}

/** A network as the driver inspects it (one the engine made, or one an operator names). */
export interface NetworkInfo {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly internal: boolean;
  /** Its subnets in CIDR notation (the driver's pick when NetworkSpec.subnet was absent). */
  readonly subnets: readonly string[];
}

/**
 * How a backend tells a live engine from a dead one where a host name and pid say nothing (a pod
 * replaced or restarted has a new host name and PID namespace): the engine claims its id at
 * start and releases it at stop; the start-up reaper asks `alive` instead of judging pids.
 */
export interface SandboxOwnership {
  /** Marks the engine alive (e.g. a Kubernetes Lease it keeps renewing) until released. */
  claim(engineId: string): Promise<void>;
  /** Stops renewing the claim (if this driver holds it) and deletes it; one already gone is not an error. */
  release(engineId: string): Promise<void>;
  /** Whether the engine's claim exists and is current: the reaper removes the sandboxes of engines that are not. */
  alive(engineId: string): Promise<boolean>;
}

/**
 * What an engine needs of a container backend. `@isol8/core`'s Docker driver implements it; a
 * Kubernetes driver would map sandboxes to pods. Ids are the driver's own.
 */
export interface SandboxDriver {
  /** "docker", "kubernetes": the key of `SandboxSpec.driverExtensions` this driver reads. */
  readonly kind: string;
  /**
   * What of the engine's choices this backend cannot run, refused by the engine at start()
   * (naming the option) instead of failing later: absent, it runs all of them.
   */
  readonly limits?: DriverLimits;
  /**
   * How a network mode keeps a sandbox to its proxy: "networks", a private network per sandbox
   * that only the proxy shares (SandboxDriver.networks: Docker); "policy", the backend lets a
   * "proxied" sandbox reach "egress" sandboxes only, and nothing else (Kubernetes' NetworkPolicy
   * of deploy/kubernetes). Absent: "networks".
   */
  readonly networkIsolation?: "networks" | "policy";
  /** Engine liveness of its own: absent, the reaper judges owners by host name, PID namespace and pid (Docker). */
  readonly ownership?: SandboxOwnership;
  /** Throws a DockerUnavailableError-like typed error when the backend does not answer. */
  ping(): Promise<void>;
  /** Whether the backend answers within `timeoutMs` (a hung backend does not). */
  answers(timeoutMs?: number): Promise<boolean>;
  /** The OCI runtimes the backend offers (for `ociRuntime`). */
  ociRuntimes(): Promise<string[]>;
  imageExists(image: string): Promise<boolean>;
  /** The image's labels; undefined when the image is missing. */
  imageLabels(image: string): Promise<Record<string, string> | undefined>;
  /**
   * Creates and starts a sandbox; resolves with its id. `beforeStart` runs between create and
   * start (attach to stdio before the main process writes); a sandbox that fails to start is removed.
   */
  create(spec: SandboxSpec, options?: { name?: string; beforeStart?: (id: string) => Promise<void> }): Promise<string>;
  /** Force-removes a sandbox; one already gone is not an error; a failed removal is retried later. */
  remove(id: string): Promise<void>;
  /** Sandboxes whose removal failed, still to be retried. */
  readonly unremoved: string[];
  /** Retries failed removals; resolves with the ids still left. */
  retryRemovals(): Promise<string[]>;
  inspect(id: string): Promise<SandboxInfo | undefined>;
  /** Sandboxes carrying every label (`true`: the label whatever its value). */
  list(labels: Readonly<Record<string, string | true>>): Promise<SandboxInfo[]>;
  /** Runs a command in a running sandbox; streams output; resolves with the exit code (-1 when aborted). */
  exec(id: string, options: ExecOptions): Promise<ExecOutcome>;
  /** Attaches to the main process's stdin and stdout/stderr. */
  attach(id: string): Promise<AttachedStdio>;
  /** The last lines of the main process's output, for diagnostics. */
  logs(id: string, tail: number): Promise<string>;
  readonly networks: {
    create(spec: NetworkSpec): Promise<void>;
    /** One already gone is not an error. */
    remove(name: string): Promise<void>;
    list(labels: Readonly<Record<string, string | true>>): Promise<{ name: string; labels: Record<string, string> }[]>;
    /** Undefined when there is no such network. */
    inspect(name: string): Promise<NetworkInfo | undefined>;
    /** Ids of the sandboxes attached, or undefined when the network is gone. */
    attached(name: string): Promise<string[] | undefined>;
    connect(name: string, sandboxId: string, address?: string): Promise<void>;
    /** One not attached (or gone) is not an error. */
    disconnect(name: string, sandboxId: string): Promise<void>;
  };
}
