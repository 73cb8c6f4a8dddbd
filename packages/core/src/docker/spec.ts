import type Docker from "dockerode";
import { NotSupportedError, type SandboxSpec, type TmpfsMount } from "@isol8/kit";

/** Docker's container create options: they appear nowhere but in the Docker driver. */
export type ContainerCreateOptions = Docker.ContainerCreateOptions;

function tmpfsOptions(mount: TmpfsMount): string {
  return [
    "rw",
    mount.exec ? "exec" : "noexec",
    "nosuid",
    "nodev",
    `size=${mount.sizeBytes}`,
    ...(mount.owner !== undefined ? [`uid=${mount.owner}`, `gid=${mount.owner}`] : []),
    `mode=${mount.mode.toString(8).padStart(4, "0")}`,
  ].join(",");
}

/**
 * The Docker create options of a neutral sandbox spec: every field mapped (DESIGN.md §5), then the
 * spec's `driverExtensions.docker` merged in last (its HostConfig into the HostConfig).
 */
export function dockerCreateOptions(spec: SandboxSpec, name?: string): ContainerCreateOptions {
  if (spec.network.kind === "proxied" || spec.network.kind === "egress") {
    // Docker keeps a filtered sandbox to its proxy with networks (networkIsolation "networks").
    throw new NotSupportedError(`network kind "${spec.network.kind}" is for drivers whose isolation is a policy; the Docker driver uses a named network`);
  }
  const network = spec.network.kind === "network" ? spec.network.name : spec.network.kind;
  const securityOpt = [
    ...(spec.noNewPrivileges ? ["no-new-privileges"] : []),
    ...(spec.seccomp.kind === "profile" ? [`seccomp=${spec.seccomp.json}`] : spec.seccomp.kind === "unconfined" ? ["seccomp=unconfined"] : []),
  ];
  const options: ContainerCreateOptions = {
    ...(name !== undefined && { name }),
    Image: spec.image,
    Cmd: [...spec.command],
    User: spec.user,
    WorkingDir: spec.workdir,
    Env: Object.entries(spec.env).map(([key, value]) => `${key}=${value}`),
    Labels: { ...spec.labels },
    // StdinOnce: the container's stdin closes when the engine's attachment ends (removeWhenDetached).
    ...(spec.attachStdio && {
      OpenStdin: true,
      StdinOnce: spec.removeWhenDetached === true,
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
    }),
    HostConfig: {
      ...(spec.attachStdio && spec.removeWhenDetached === true && { AutoRemove: true }),
      Init: spec.init,
      ReadonlyRootfs: spec.readonlyRootFs,
      Tmpfs: Object.fromEntries(Object.entries(spec.tmpfs).map(([path, mount]) => [path, tmpfsOptions(mount)])),
      CapDrop: ["ALL"],
      ...(spec.capabilities.length > 0 && { CapAdd: [...spec.capabilities] }),
      SecurityOpt: securityOpt,
      Memory: spec.memoryBytes,
      MemorySwap: spec.memoryBytes, // equal to Memory: no swap beyond the limit
      NanoCpus: Math.round(spec.cpus * 1e9),
      PidsLimit: spec.pidsLimit,
      IpcMode: "private",
      NetworkMode: network,
      ...(spec.ociRuntime !== undefined && { Runtime: spec.ociRuntime }),
      ...(spec.sysctls && { Sysctls: { ...spec.sysctls } }),
      ...(spec.restartOnFailure !== undefined && { RestartPolicy: { Name: "on-failure", MaximumRetryCount: spec.restartOnFailure } }),
      LogConfig: spec.logs === "none" ? { Type: "none", Config: {} } : { Type: "json-file", Config: { "max-size": "1m", "max-file": "1" } },
    },
  };
  const extension = spec.driverExtensions?.docker as (ContainerCreateOptions & Record<string, unknown>) | undefined;
  if (!extension) return options;
  return { ...options, ...extension, HostConfig: { ...options.HostConfig, ...extension.HostConfig } };
}
