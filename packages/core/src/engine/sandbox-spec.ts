import { readlinkSync } from "node:fs";
import { hostname } from "node:os";
import {
  CONTAINER_LABELS,
  SANDBOX_DIR,
  STAGE_SPEC_LABELS,
  STAGE_SPEC_NETWORK,
  STAGE_SPEC_SECURITY,
  type Kit,
  type Logger,
  type NetworkModeContext,
  type ResolvedEngineOptions,
  type SandboxDriver,
  type SandboxSpec,
} from "@isol8/kit";
import type { MainProcess } from "./launcher.js";

/** Threads an OCI runtime such as gVisor adds to the container's pids cgroup. */
const OCI_RUNTIME_PIDS_HEADROOM = 256;

/**
 * The hardened spec every sandbox starts from (DESIGN.md §5), before the sandboxSpec hook: a
 * read-only root, memory-backed /sandbox (owned by the sandbox's own uid, 0700) and /tmp,
 * every capability dropped but the launcher's main process's own, no new privileges, the
 * limits, no network, and output never stored by the backend.
 */
export function baseSandboxSpec(options: ResolvedEngineOptions, image: string, uid: number, main: MainProcess): SandboxSpec {
  return {
    image,
    command: main.command,
    user: main.user,
    attachStdio: main.attachStdio,
    workdir: SANDBOX_DIR,
    env: { HOME: "/sandbox", ...main.env },
    labels: { ...main.labels, [CONTAINER_LABELS.uid]: String(uid) },
    init: true,
    readonlyRootFs: options.readonlyRootFs,
    tmpfs: {
      [SANDBOX_DIR]: { sizeBytes: options.sandboxSize, mode: 0o700, owner: uid, exec: true },
      "/tmp": { sizeBytes: options.tmpSize, mode: 0o1777, exec: false },
      // The sandbox user's /etc/passwd and /etc/group entries (the image links them here;
      // root's, written at start: by the executor, or on the exec path by one exec as root).
      "/run/isol8": { sizeBytes: 1024 * 1024, mode: 0o755, exec: false },
    },
    capabilities: main.capabilities,
    noNewPrivileges: true,
    memoryBytes: options.memoryLimit,
    cpus: options.cpuLimit,
    pidsLimit: options.pidsLimit,
    seccomp: { kind: "default" },
    network: { kind: "none" },
    logs: "none",
  };
}

/**
 * The core's own taps of the sandboxSpec hook: the seccomp mode and the network mode in force
 * (by registry), the OCI runtime, and the ownership labels last.
 */
export function tapCoreSpec(kit: Kit, seccompMode: () => string | undefined): void {
  const hooks = kit.hooks;
  const name = "isol8:core";
  hooks.sandboxSpec.tapPromise({ name, stage: STAGE_SPEC_SECURITY }, async (spec, ctx) => {
    const mode = seccompMode();
    return mode ? kit.seccompModes.get(mode).shapeSpec(spec, ctx) : spec;
  });
  hooks.sandboxSpec.tap({ name, stage: STAGE_SPEC_SECURITY }, (spec, ctx) =>
    ctx.options.ociRuntime
      ? {
          ...spec,
          ociRuntime: ctx.options.ociRuntime,
          // A user-space kernel (gVisor) runs its own threads inside the container's pids cgroup:
          // without headroom the sandbox itself dies at the limit.
          pidsLimit: spec.pidsLimit + OCI_RUNTIME_PIDS_HEADROOM,
        }
      : spec,
  );
  hooks.sandboxSpec.tapPromise({ name, stage: STAGE_SPEC_NETWORK }, async (spec, ctx) => kit.networkModes.get(ctx.options.network).shapeSpec(spec, ctx));
  hooks.sandboxSpec.tap({ name, stage: STAGE_SPEC_LABELS }, (spec, ctx) => ({
    ...spec,
    labels: {
      ...spec.labels,
      ...ownerLabels(ctx.engineId),
      [CONTAINER_LABELS.runtime]: ctx.runtime,
      [CONTAINER_LABELS.mode]: ctx.options.mode,
      ...(ctx.options.persist ? { [CONTAINER_LABELS.persist]: "true" } : {}),
    },
  }));
}

/** This process's PID namespace, as the reaper compares it. */
const PID_NAMESPACE = pidNamespace();

/** This process's PID namespace: the inode of /proc/self/ns/pid (undefined where there is none). */
export function pidNamespace(): string | undefined {
  try {
    return /^pid:\[(\d+)\]$/.exec(readlinkSync("/proc/self/ns/pid"))?.[1];
  } catch {
    return undefined;
  }
}

/** The labels that make a sandbox or network this engine's: the reaper and cleanup find what carries them. */
export function ownerLabels(engineId: string): Record<string, string> {
  return {
    [CONTAINER_LABELS.managed]: "true",
    [CONTAINER_LABELS.engine]: engineId,
    [CONTAINER_LABELS.ownerPid]: String(process.pid),
    [CONTAINER_LABELS.ownerHost]: hostname(),
    ...(PID_NAMESPACE && { [CONTAINER_LABELS.ownerPidNamespace]: PID_NAMESPACE }),
  };
}

/** What a network or seccomp mode's start/stop/prepare get from the engine. */
export function networkModeContext(
  engineId: string,
  options: ResolvedEngineOptions,
  driver: SandboxDriver,
  log: Logger,
  imageFor: (runtime: string) => string,
): NetworkModeContext {
  return { engineId, options, driver, log, imageFor, ownerLabels: ownerLabels(engineId) };
}
