import type { V1Pod } from "@kubernetes/client-node";
import { NotSupportedError, type ExecOptions, type SandboxInfo } from "@isol8/kit";
import { KubernetesApiError } from "./errors.js";
import { SANDBOX_CONTAINER } from "./pod-spec.js";

/** Waiting reasons after which a pod will not start by itself (image pull, bad config). */
const HOPELESS_WAITING = new Set([
  "ErrImagePull",
  "ImagePullBackOff",
  "InvalidImageName",
  "ErrImageNeverPull",
  "CreateContainerConfigError",
  "CreateContainerError",
  "RunContainerError",
  "CrashLoopBackOff",
]);

/** A pod as the engine sees a sandbox. */
export function podInfo(pod: V1Pod): SandboxInfo {
  const status = pod.status?.containerStatuses?.find((c) => c.name === SANDBOX_CONTAINER);
  const running = pod.metadata?.deletionTimestamp === undefined && status?.state?.running !== undefined;
  const restarts = status?.restartCount ?? 0;
  const exitCode = status?.state?.terminated?.exitCode ?? status?.lastState?.terminated?.exitCode;
  return {
    id: pod.metadata?.name ?? "",
    running,
    labels: { ...(pod.metadata?.labels ?? {}) },
    addresses: pod.status?.podIP ? { pod: pod.status.podIP } : {},
    restarts,
    ...((!running || restarts > 0) && exitCode !== undefined && { exitCode }),
  };
}

/** Why a starting pod will not run (evicted, failed, image not pulled, init failed), or undefined while it may still. */
export function startFailure(pod: V1Pod): KubernetesApiError | undefined {
  const name = pod.metadata?.name ?? "?";
  const phase = pod.status?.phase;
  if (phase === "Failed" || phase === "Succeeded") {
    const reason = pod.status?.reason ?? phase;
    return new KubernetesApiError(0, reason, `pod ${name} ended before it ran: ${reason}${pod.status?.message ? `: ${pod.status.message}` : ""}`);
  }
  for (const container of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const waiting = container.state?.waiting;
    if (waiting?.reason && HOPELESS_WAITING.has(waiting.reason)) {
      return new KubernetesApiError(
        0,
        waiting.reason,
        `pod ${name}, container ${container.name}: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ""}`,
      );
    }
    const terminated = container.state?.terminated;
    if (terminated && terminated.exitCode !== 0) {
      return new KubernetesApiError(
        0,
        terminated.reason ?? "Error",
        `pod ${name}, container ${container.name} exited ${terminated.exitCode}${terminated.message ? `: ${terminated.message}` : ""}`,
      );
    }
  }
  return undefined;
}

/**
 * The exit code of an exec's final Status (channel 3): Success is 0; NonZeroExitCode carries it
 * as the ExitCode cause; a command that could not start is 127 (not found) or 126, as on Docker.
 */
export function exitCodeOfStatus(status: unknown): number {
  const s = status as { status?: string; reason?: string; message?: string; details?: { causes?: { reason?: string; message?: string }[] } };
  if (s.status === "Success") return 0;
  const code = s.details?.causes?.find((c) => c.reason === "ExitCode")?.message;
  if (code !== undefined && /^\d+$/.test(code)) return Number(code);
  return /not found|no such file/i.test(s.message ?? "") ? 127 : 126;
}

/** Who an exec runs as: the container's own user (the API cannot choose), and whether it may switch. */
export interface ExecIdentity {
  readonly uid: number;
  readonly gid: number;
  /** Holds CAP_SETUID, CAP_SETGID and CAP_SETPCAP (the executor's pod): `setpriv` can drop to another user. */
  readonly canSwitch: boolean;
}

export function execIdentity(pod: V1Pod): ExecIdentity {
  const context = pod.spec?.containers.find((c) => c.name === SANDBOX_CONTAINER)?.securityContext;
  const added = new Set(context?.capabilities?.add ?? []);
  const uid = context?.runAsUser ?? 0;
  return { uid, gid: context?.runAsGroup ?? uid, canSwitch: uid === 0 && ["SETUID", "SETGID", "SETPCAP"].every((c) => added.has(c)) };
}

/**
 * An exec's argv with what the API cannot carry: `setpriv` for a user other than the
 * container's ("uid:gid", every capability and supplementary group dropped; only a container
 * that may switch users), `env` for the environment and working directory. A user it cannot
 * become is refused, never ignored.
 */
export function execArgv(options: Pick<ExecOptions, "argv" | "user" | "env" | "workdir">, identity: ExecIdentity, pod = "the pod"): string[] {
  let argv = [...options.argv];
  const env = Object.entries(options.env ?? {}).map(([key, value]) => `${key}=${value}`);
  if (env.length > 0 || options.workdir !== undefined) {
    argv = ["env", ...(options.workdir !== undefined ? ["-C", options.workdir] : []), ...env, ...argv];
  }
  if (options.user === undefined) return argv;
  const match = /^(\d+)(?::(\d+))?$/.exec(options.user === "root" ? "0:0" : options.user);
  if (!match) throw new NotSupportedError(`exec as user "${options.user}" in ${pod}: the Kubernetes driver takes numeric "uid:gid" only`);
  const uid = Number(match[1]);
  const gid = match[2] === undefined ? uid : Number(match[2]);
  if (uid === identity.uid && gid === identity.gid) return argv;
  if (!identity.canSwitch) {
    throw new NotSupportedError(
      `exec as user ${uid}:${gid} in ${pod}: a Kubernetes exec runs as the container's user (${identity.uid}:${identity.gid}), which cannot switch users`,
    );
  }
  return ["setpriv", `--reuid=${uid}`, `--regid=${gid}`, "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--", ...argv];
}
