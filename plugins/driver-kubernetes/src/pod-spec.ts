import type { V1Container, V1Pod, V1SeccompProfile, V1SecurityContext, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import type { SandboxSpec } from "@isol8/kit";
import { UnmappableSpecError } from "./errors.js";
import { LABEL_VALUE, type ResolvedKubernetesDriverOptions } from "./options.js";

/** The sandbox's one container (attach and exec name it). */
export const SANDBOX_CONTAINER = "sandbox";
/** The init container that gives each memory-backed volume the spec's owner and mode. */
export const VOLUMES_INIT_CONTAINER = "isol8-volumes";
/** Annotation of a pod whose main process waits for one line on stdin (see STDIN_GATE). */
export const STDIN_GATE_ANNOTATION = "isol8.dev/stdin-gate";
/**
 * The label deploy/kubernetes/network-policy.yaml selects pods by: "none" (deny all), "filtered"
 * (egress to "egress-proxy" pods' proxy port only), "egress-proxy" (the filtered mode's proxy).
 */
export const NETWORK_LABEL = "isol8.network";
export const NETWORK_LABEL_VALUES = { none: "none", proxied: "filtered", egress: "egress-proxy" } as const;
/** Annotation carrying the SHA-256 of the inline seccomp profile a Localhost profile stands for. */
export const SECCOMP_SHA_ANNOTATION = "isol8.dev/seccomp-sha256";

/**
 * The executor writes its HELLO first thing, and an attach only sees output written after it
 * connects (the kubelet does not replay): Docker's "attach before start" becomes "start, attach,
 * then let the main process go". The shell reads one line (byte by byte, so nothing of the
 * engine's first frames is consumed) and execs the command in its place: same pid, same argv.
 */
export const STDIN_GATE = ["/bin/sh", "-c", 'IFS= read -r _ && exec "$@"', "isol8-stdin-gate"] as const;

const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const SAFE_PATH = /^\/[A-Za-z0-9._/-]*$/;
const POD_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export interface PodOptions {
  /** The pod's name; absent: `generateName: isol8-`. */
  readonly name?: string;
  /** SHA-256 (hex) of the spec's inline seccomp profile, for the annotation (the caller hashes). */
  readonly seccompSha256?: string;
}

/** The value of NETWORK_LABEL for the spec's network: a policy, since a pod has no networks of its own to choose. */
function networkLabel(spec: SandboxSpec): string {
  switch (spec.network.kind) {
    case "none":
    case "proxied":
    case "egress":
      return NETWORK_LABEL_VALUES[spec.network.kind];
    case "host":
      throw new UnmappableSpecError("network", `kind "host": a sandbox never shares the node's network`);
    case "network":
      throw new UnmappableSpecError(
        "network",
        `a named network ("${spec.network.name}"): a pod has none of its own; the driver's isolation is a NetworkPolicy (kinds "none", "proxied", "egress")`,
      );
  }
}

/** "uid:gid" → numbers; a user name cannot be mapped (a pod's securityContext takes ids only). */
function numericUser(user: string): { uid: number; gid: number } {
  const match = /^(\d+)(?::(\d+))?$/.exec(user);
  if (!match) throw new UnmappableSpecError("user", `"${user}" is not "uid:gid"; a pod's securityContext takes numeric ids only`);
  const uid = Number(match[1]);
  return { uid, gid: match[2] === undefined ? uid : Number(match[2]) };
}

function seccompProfile(spec: SandboxSpec, options: ResolvedKubernetesDriverOptions): V1SeccompProfile {
  switch (spec.seccomp.kind) {
    case "default":
      return { type: "RuntimeDefault" };
    case "unconfined":
      return { type: "Unconfined" };
    case "profile":
      if (!options.seccompLocalhostProfile) {
        throw new UnmappableSpecError(
          "seccomp",
          "an inline profile cannot be given to a pod; install it on the nodes (deploy/kubernetes/seccomp-profile-daemonset.yaml) and set the driver's seccompLocalhostProfile",
        );
      }
      return { type: "Localhost", localhostProfile: options.seccompLocalhostProfile };
  }
}

function checkLabels(labels: Readonly<Record<string, string>>): void {
  for (const [key, value] of Object.entries(labels)) {
    if (!LABEL_KEY.test(key)) throw new UnmappableSpecError(`labels["${key}"]`, "not a valid Kubernetes label key");
    if (value.length > 63 || !LABEL_VALUE.test(value))
      throw new UnmappableSpecError(
        `labels["${key}"]`,
        `"${value}" is not a valid Kubernetes label value (at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends)`,
      );
  }
}

/** The names of the memory-backed volumes: `/sandbox` → `tmpfs-sandbox`. */
function volumeName(path: string, index: number): string {
  const slug = path
    .replace(/[^a-z0-9]+/gi, "-")
    .replace(/^-+|-+$/g, "")
    .toLowerCase()
    .slice(0, 40);
  return `tmpfs-${index}-${slug || "root"}`;
}

/**
 * The Pod of a neutral sandbox spec: every field mapped (the plugin's README has the table), or
 * an UnmappableSpecError naming the field. Pure: no API call, no clock.
 */
export function podFromSpec(spec: SandboxSpec, options: ResolvedKubernetesDriverOptions, pod: PodOptions = {}): V1Pod {
  const { uid, gid } = numericUser(spec.user);
  const network = networkLabel(spec);
  if (spec.restartOnFailure !== undefined) throw new UnmappableSpecError("restartOnFailure", "a pod's restartPolicy cannot cap the number of restarts");
  if (spec.logs === "none" && !options.acceptWeaker.nodeLogs) {
    throw new UnmappableSpecError("logs", "the kubelet keeps every container's stdout in node log files; set the driver's acceptWeaker.nodeLogs to run anyway");
  }
  if (options.nodePodPidsLimit === undefined) {
    throw new UnmappableSpecError(
      "pidsLimit",
      "a pod spec cannot carry a PID limit: set the kubelet's podPidsLimit on the nodes and declare it as the driver's nodePodPidsLimit",
    );
  }
  if (options.nodePodPidsLimit > spec.pidsLimit) {
    throw new UnmappableSpecError("pidsLimit", `the nodes' podPidsLimit (${options.nodePodPidsLimit}) is above the spec's ${spec.pidsLimit}`);
  }
  if (pod.name !== undefined && (pod.name.length > 253 || !POD_NAME.test(pod.name))) {
    throw new UnmappableSpecError("name", `"${pod.name}" is not a valid pod name (lowercase RFC 1123 subdomain)`);
  }
  if (spec.ociRuntime !== undefined && !options.runtimeClasses.includes(spec.ociRuntime)) {
    throw new UnmappableSpecError(
      "ociRuntime",
      `"${spec.ociRuntime}" is not one of the driver's runtimeClasses (${options.runtimeClasses.join(", ") || "none declared"})`,
    );
  }
  const labels = { ...spec.labels, [NETWORK_LABEL]: network };
  checkLabels(labels);

  const volumes: V1Volume[] = [];
  const mounts: V1VolumeMount[] = [];
  const permissions: string[] = [];
  Object.entries(spec.tmpfs).forEach(([path, mount], index) => {
    // The path goes into the init container's shell script (as root): plain absolute paths only.
    if (!SAFE_PATH.test(path)) throw new UnmappableSpecError(`tmpfs["${path}"]`, "a mount path of letters, digits and . _ - / only, absolute");
    if (!mount.exec && !options.acceptWeaker.tmpfsExec) {
      throw new UnmappableSpecError(`tmpfs["${path}"].exec`, "an emptyDir cannot be mounted noexec; set the driver's acceptWeaker.tmpfsExec to run anyway");
    }
    const name = volumeName(path, index);
    volumes.push({ name, emptyDir: { medium: "Memory", sizeLimit: String(mount.sizeBytes) } });
    mounts.push({ name, mountPath: path });
    // chmod first: once chowned away from root, changing the mode would need CAP_FOWNER.
    permissions.push(`chmod ${mount.mode.toString(8).padStart(4, "0")} '${path}'`);
    if (mount.owner !== undefined) permissions.push(`chown ${mount.owner}:${mount.owner} '${path}'`);
  });

  const resources = {
    limits: { cpu: `${Math.max(1, Math.round(spec.cpus * 1000))}m`, memory: String(spec.memoryBytes) },
    requests: { cpu: `${Math.max(1, Math.round(spec.cpus * 1000))}m`, memory: String(spec.memoryBytes) },
  };
  const seccomp = seccompProfile(spec, options);
  const image = options.images[spec.image]?.reference ?? (options.imageRegistry ? `${options.imageRegistry.replace(/\/$/, "")}/${spec.image}` : spec.image);
  const securityContext: V1SecurityContext = {
    runAsUser: uid,
    runAsGroup: gid,
    runAsNonRoot: uid !== 0,
    allowPrivilegeEscalation: !spec.noNewPrivileges,
    privileged: false,
    readOnlyRootFilesystem: spec.readonlyRootFs,
    capabilities: { drop: ["ALL"], ...(spec.capabilities.length > 0 && { add: [...spec.capabilities] }) },
    seccompProfile: seccomp,
    procMount: "Default",
  };
  const sandbox: V1Container = {
    name: SANDBOX_CONTAINER,
    image,
    imagePullPolicy: options.imagePullPolicy,
    command: spec.attachStdio ? [...STDIN_GATE, ...spec.command] : [...spec.command],
    workingDir: spec.workdir,
    env: Object.entries(spec.env).map(([name, value]) => ({ name, value })),
    stdin: spec.attachStdio,
    stdinOnce: false,
    tty: false,
    resources,
    securityContext,
    volumeMounts: mounts,
    terminationMessagePolicy: "File",
  };
  const volumesInit: V1Container = {
    name: VOLUMES_INIT_CONTAINER,
    image,
    imagePullPolicy: options.imagePullPolicy,
    command: ["/bin/sh", "-c", `set -e; ${permissions.join("; ")}`],
    resources,
    // Root with CAP_CHOWN alone, before any sandbox code runs, touching only the fresh volumes.
    securityContext: {
      runAsUser: 0,
      runAsGroup: 0,
      runAsNonRoot: false,
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"], add: ["CHOWN"] },
      seccompProfile: seccomp,
    },
    volumeMounts: mounts,
  };

  const podSpec: NonNullable<V1Pod["spec"]> = {
    restartPolicy: "Never",
    terminationGracePeriodSeconds: 0,
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    hostNetwork: false,
    hostPID: false,
    hostIPC: false,
    // The pause process is PID 1 and reaps orphans: Docker's `--init`.
    shareProcessNamespace: spec.init,
    ...(options.userNamespaces && { hostUsers: false }),
    securityContext: {
      runAsNonRoot: false, // the executor is uid 0 (holding SETUID/SETGID/SETPCAP only), as on Docker
      seccompProfile: seccomp,
      ...(spec.sysctls && { sysctls: Object.entries(spec.sysctls).map(([name, value]) => ({ name, value })) }),
    },
    ...(spec.ociRuntime !== undefined
      ? { runtimeClassName: spec.ociRuntime }
      : options.runtimeClassName !== undefined && { runtimeClassName: options.runtimeClassName }),
    ...(Object.keys(options.nodeSelector).length > 0 && { nodeSelector: { ...options.nodeSelector } }),
    ...(options.tolerations.length > 0 && { tolerations: options.tolerations.map((t) => ({ ...t })) }),
    ...(options.serviceAccountName !== undefined && { serviceAccountName: options.serviceAccountName }),
    ...(options.priorityClassName !== undefined && { priorityClassName: options.priorityClassName }),
    ...(permissions.length > 0 && { initContainers: [volumesInit] }),
    containers: [sandbox],
    volumes,
  };
  const annotations: Record<string, string> = {
    ...(spec.attachStdio && { [STDIN_GATE_ANNOTATION]: "true" }),
    ...(spec.seccomp.kind === "profile" && pod.seccompSha256 !== undefined && { [SECCOMP_SHA_ANNOTATION]: pod.seccompSha256 }),
  };
  const extension = spec.driverExtensions?.kubernetes as { spec?: Record<string, unknown> } | undefined;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      ...(pod.name !== undefined ? { name: pod.name } : { generateName: "isol8-" }),
      labels,
      ...(Object.keys(annotations).length > 0 && { annotations }),
    },
    spec: extension?.spec ? { ...podSpec, ...(extension.spec as Partial<typeof podSpec>) } : podSpec,
  };
}
