import type { V1Pod } from "@kubernetes/client-node";
import type { ExecOptions, SandboxInfo } from "@isol8/kit";
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
      return new KubernetesApiError(0, waiting.reason, `pod ${name}, container ${container.name}: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ""}`);
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

/**
 * An exec's argv with what the API cannot carry: `setpriv` for a user ("uid:gid", every
 * capability and supplementary group dropped), `env` for the environment and working directory.
 */
export function execArgv(options: Pick<ExecOptions, "argv" | "user" | "env" | "workdir">): string[] {
  let argv = [...options.argv];
  const env = Object.entries(options.env ?? {}).map(([key, value]) => `${key}=${value}`);
  if (env.length > 0 || options.workdir !== undefined) {
    argv = ["env", ...(options.workdir !== undefined ? ["-C", options.workdir] : []), ...env, ...argv];
  }
  if (options.user !== undefined && options.user !== "0" && options.user !== "0:0" && options.user !== "root") {
    const match = /^(\d+)(?::(\d+))?$/.exec(options.user);
    if (!match) throw new KubernetesApiError(0, "Invalid", `exec as user "${options.user}": the Kubernetes driver takes numeric "uid:gid" only`);
    const gid = match[2] ?? match[1];
    argv = ["setpriv", `--reuid=${match[1]}`, `--regid=${gid}`, "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--", ...argv];
  }
  return argv;
}
