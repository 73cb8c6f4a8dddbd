import { randomBytes } from "node:crypto";
import type Docker from "dockerode";
import type { V1Container, V1ContainerStatus, V1Pod } from "@isol8/plugin-driver-kubernetes";
import { PodNetworks } from "./networks.js";
import { bytes, cpus } from "./quantities.js";
import { alreadyExists, invalid, notFound, quotaExceeded, type StatusCause } from "./status.js";

/** Label on every Docker object the façade makes (value: the façade's own id), so a test removes exactly its own. */
export const FACADE_LABEL = "isol8-test.kubernetes-facade";

export interface PodStoreOptions {
  /** The kubelet's podPidsLimit the façade's "nodes" enforce (a pod spec cannot carry one). */
  podPidsLimit: number;
  /** Pods at most in the namespace: a ResourceQuota (403 "exceeded quota" past it). */
  maxPods?: number;
  /** An existing Docker network that egress-proxy pods join as their way out (a test's "outside"); absent: a bridge the façade makes. */
  egressNetwork?: string;
}

interface PodRecord {
  pod: V1Pod;
  volumes: string[];
  /** Holds the pod's tmpfs volumes mounted (Docker unmounts a tmpfs volume, contents gone, when no container uses it). */
  pauseId?: string;
  initId?: string;
  initExit?: number;
  mainId?: string;
  waiting?: { reason: string; message: string };
  /** Set by evict(): the pod failed with reason Evicted. */
  evicted?: string;
  starting: Promise<void>;
}

/**
 * Pods of one fake node, each backed by real Docker containers made from the Pod spec the way a
 * kubelet with a CRI runtime would: memory emptyDirs are tmpfs volumes shared by the init and
 * main containers, the securityContext becomes the container's user, capabilities, seccomp and
 * no-new-privileges, the limits its cgroup. Network: by the pod's isol8.network label, as
 * deploy/kubernetes/network-policy.yaml on a CNI that enforces it would (see PodNetworks);
 * shareProcessNamespace: Docker's init as PID 1, standing for the pause container that reaps
 * orphans.
 */
export class PodStore {
  readonly id = randomBytes(6).toString("hex");
  readonly #pods = new Map<string, PodRecord>();
  readonly #networks: PodNetworks;

  constructor(
    readonly docker: Docker,
    readonly options: PodStoreOptions,
  ) {
    this.#networks = new PodNetworks(docker, this.id, options.egressNetwork);
  }

  #record(namespace: string, name: string): PodRecord {
    const record = this.#pods.get(`${namespace}/${name}`);
    if (!record) throw notFound(name);
    return record;
  }

  create(namespace: string, pod: V1Pod): V1Pod {
    const name = pod.metadata?.name ?? `${pod.metadata?.generateName ?? ""}${randomBytes(3).toString("hex").slice(0, 5)}`;
    const causes = validate(pod, name);
    if (causes.length) throw invalid(name, causes);
    if (this.#pods.has(`${namespace}/${name}`)) throw alreadyExists(name);
    if (this.options.maxPods !== undefined && this.list(namespace).length >= this.options.maxPods) throw quotaExceeded(name, this.options.maxPods);
    const stored: V1Pod = {
      ...pod,
      metadata: { ...pod.metadata, name, namespace, uid: randomBytes(16).toString("hex"), creationTimestamp: new Date() },
      status: { phase: "Pending" },
    };
    const record: PodRecord = { pod: stored, volumes: [], starting: Promise.resolve() };
    record.starting = this.#start(record).catch((error: Error) => {
      record.waiting ??= { reason: "CreateContainerError", message: error.message };
    });
    this.#pods.set(`${namespace}/${name}`, record);
    return this.#withStatus(record, undefined);
  }

  async #start(record: PodRecord): Promise<void> {
    const spec = record.pod.spec!;
    const main = spec.containers[0]!;
    for (const image of new Set([main.image!, ...(spec.initContainers ?? []).map((c) => c.image!)])) {
      const exists = await this.docker
        .getImage(image)
        .inspect()
        .then(() => true)
        .catch(() => false);
      if (!exists) {
        record.waiting = { reason: "ErrImagePull", message: `rpc error: code = NotFound desc = failed to pull and unpack image "${image}": not found` };
        return;
      }
    }
    const volumeOf = new Map<string, string>();
    for (const volume of spec.volumes ?? []) {
      if (volume.emptyDir?.medium !== "Memory") throw new Error(`volume ${volume.name}: the façade maps memory emptyDirs only`);
      const size = volume.emptyDir.sizeLimit ? bytes(String(volume.emptyDir.sizeLimit)) : 64 * 2 ** 20;
      const volumeName = `facade-${this.id}-${record.pod.metadata!.name}-${volume.name}`;
      await this.docker.createVolume({
        Name: volumeName,
        Driver: "local",
        DriverOpts: { type: "tmpfs", device: "tmpfs", o: `size=${size}` },
        Labels: { [FACADE_LABEL]: this.id },
      });
      record.volumes.push(volumeName);
      volumeOf.set(volume.name, volumeName);
    }
    const pause = await this.docker.createContainer({
      Image: main.image,
      Entrypoint: ["/bin/sh", "-c", "exec sleep infinity"],
      User: "65535:65535",
      Labels: { [FACADE_LABEL]: this.id, [`${FACADE_LABEL}.pod`]: record.pod.metadata!.name!, [`${FACADE_LABEL}.role`]: "pause" },
      HostConfig: {
        NetworkMode: "none",
        CapDrop: ["ALL"],
        ReadonlyRootfs: true,
        Memory: 16 * 2 ** 20,
        SecurityOpt: ["no-new-privileges"],
        LogConfig: { Type: "none", Config: {} },
        Mounts: [...volumeOf.values()].map((source, i) => ({
          Type: "volume" as const,
          Source: source,
          Target: `/pod-volumes/${i}`,
          VolumeOptions: { NoCopy: true } as never,
        })),
      },
    });
    record.pauseId = pause.id;
    await pause.start();
    for (const init of spec.initContainers ?? []) {
      const container = await this.docker.createContainer(this.#containerOptions(record.pod, init, volumeOf, "init"));
      record.initId = container.id;
      await container.start();
      const { StatusCode } = (await container.wait()) as { StatusCode: number };
      record.initExit = StatusCode;
      if (StatusCode !== 0) return;
    }
    if (record.pod.metadata?.deletionTimestamp) return;
    // The pod's network (its label) is the main container's; the init container runs with none.
    const network = await this.#networks.modeOf(record.pod.metadata?.labels ?? {});
    const options = this.#containerOptions(record.pod, main, volumeOf, "main");
    const container = await this.docker.createContainer({ ...options, HostConfig: { ...options.HostConfig, NetworkMode: network.mode } });
    record.mainId = container.id;
    await network.beforeStart(container.id);
    await container.start();
  }

  #containerOptions(pod: V1Pod, container: V1Container, volumeOf: Map<string, string>, role: string): Docker.ContainerCreateOptions {
    const context = container.securityContext ?? {};
    const podContext = pod.spec!.securityContext ?? {};
    const seccomp = context.seccompProfile ?? podContext.seccompProfile;
    if (seccomp?.type === "Localhost") throw new Error("the façade's node has no Localhost seccomp profiles");
    const limits = container.resources?.limits ?? {};
    const caps = context.capabilities ?? {};
    return {
      Image: container.image,
      ...(container.command && { Entrypoint: container.command }),
      ...(container.args && { Cmd: container.args }),
      User: `${context.runAsUser ?? 0}:${context.runAsGroup ?? 0}`,
      WorkingDir: container.workingDir,
      Env: (container.env ?? []).map((e) => `${e.name}=${e.value ?? ""}`),
      Labels: { [FACADE_LABEL]: this.id, [`${FACADE_LABEL}.pod`]: pod.metadata!.name!, [`${FACADE_LABEL}.role`]: role },
      ...(container.stdin && { OpenStdin: true, StdinOnce: container.stdinOnce === true, AttachStdin: true, AttachStdout: true, AttachStderr: true }),
      Tty: container.tty === true,
      HostConfig: {
        Init: pod.spec!.shareProcessNamespace === true,
        ReadonlyRootfs: context.readOnlyRootFilesystem === true,
        CapDrop: caps.drop ?? [],
        CapAdd: caps.add ?? [],
        SecurityOpt: [
          ...(context.allowPrivilegeEscalation === false ? ["no-new-privileges"] : []),
          ...(seccomp?.type === "Unconfined" ? ["seccomp=unconfined"] : []),
        ],
        ...(limits.memory && { Memory: bytes(String(limits.memory)), MemorySwap: bytes(String(limits.memory)) }),
        ...(limits.cpu && { NanoCpus: Math.round(cpus(String(limits.cpu)) * 1e9) }),
        PidsLimit: this.options.podPidsLimit,
        NetworkMode: "none",
        IpcMode: "private",
        Mounts: (container.volumeMounts ?? []).map((m) => ({
          Type: "volume" as const,
          Source: volumeOf.get(m.name)!,
          Target: m.mountPath,
          ReadOnly: m.readOnly === true,
          VolumeOptions: { NoCopy: true } as never,
        })),
        ...(pod.spec!.securityContext?.sysctls && { Sysctls: Object.fromEntries(pod.spec!.securityContext.sysctls.map((s) => [s.name, s.value])) }),
        LogConfig: { Type: "none", Config: {} },
      },
    };
  }

  async get(namespace: string, name: string): Promise<V1Pod> {
    const record = this.#record(namespace, name);
    const info = record.mainId
      ? await this.docker
          .getContainer(record.mainId)
          .inspect()
          .catch(() => undefined)
      : undefined;
    return this.#withStatus(record, info);
  }

  /** The Docker container of a pod's main container (attach and exec go to it). */
  containerOf(namespace: string, name: string): string | undefined {
    return this.#record(namespace, name).mainId;
  }

  list(namespace: string): PodRecord[] {
    return [...this.#pods.entries()].filter(([key]) => key.startsWith(`${namespace}/`)).map(([, record]) => record);
  }

  async listPods(namespace: string, selector: string | undefined): Promise<V1Pod[]> {
    const matches = parseSelector(selector);
    const pods = await Promise.all(this.list(namespace).map((r) => this.get(namespace, r.pod.metadata!.name!)));
    return pods.filter((pod) => matches(pod.metadata?.labels ?? {}));
  }

  /** Marks the pod Failed/Evicted and stops its containers, as the kubelet does under node pressure. */
  async evict(namespace: string, name: string): Promise<void> {
    const record = this.#record(namespace, name);
    record.evicted = "The node was low on resource: memory.";
    if (record.mainId)
      await this.docker
        .getContainer(record.mainId)
        .kill()
        .catch(() => undefined);
  }

  async delete(namespace: string, name: string): Promise<V1Pod> {
    const record = this.#record(namespace, name);
    record.pod.metadata!.deletionTimestamp = new Date();
    const pod = await this.get(namespace, name);
    this.#pods.delete(`${namespace}/${name}`);
    await record.starting;
    for (const id of [record.mainId, record.initId, record.pauseId])
      if (id)
        await this.docker
          .getContainer(id)
          .remove({ force: true, v: true })
          .catch(() => undefined);
    for (const volume of record.volumes)
      await this.docker
        .getVolume(volume)
        .remove()
        .catch(() => undefined);
    return pod;
  }

  /** Removes every pod and the pods' networks (the test's teardown). */
  async close(): Promise<void> {
    for (const key of [...this.#pods.keys()]) {
      const [namespace, name] = key.split("/") as [string, string];
      await this.delete(namespace, name);
    }
    await this.#networks.close();
  }

  #withStatus(record: PodRecord, info: Docker.ContainerInspectInfo | undefined): V1Pod {
    const spec = record.pod.spec!;
    const main = spec.containers[0]!;
    const init = spec.initContainers?.[0];
    const initStatuses: V1ContainerStatus[] = init
      ? [
          {
            name: init.name,
            image: init.image!,
            imageID: "",
            ready: record.initExit === 0,
            restartCount: 0,
            state:
              record.initExit !== undefined
                ? { terminated: { exitCode: record.initExit, reason: record.initExit === 0 ? "Completed" : "Error" } }
                : { waiting: { reason: "PodInitializing" } },
          },
        ]
      : [];
    let phase = "Pending";
    let state: V1ContainerStatus["state"] = {
      waiting: record.waiting ?? { reason: init && record.initExit === undefined ? "PodInitializing" : "ContainerCreating", message: "" },
    };
    if (record.initExit !== undefined && record.initExit !== 0) phase = "Failed";
    if (info) {
      if (info.State.Running) {
        phase = "Running";
        state = { running: { startedAt: new Date(info.State.StartedAt) } };
      } else if (info.State.FinishedAt && !info.State.FinishedAt.startsWith("0001")) {
        phase = info.State.ExitCode === 0 ? "Succeeded" : "Failed";
        state = {
          terminated: { exitCode: info.State.ExitCode, reason: info.State.OOMKilled ? "OOMKilled" : info.State.ExitCode === 0 ? "Completed" : "Error" },
        };
      }
    }
    if (record.evicted) phase = "Failed";
    const podIP = info && this.#networks.addressOf(info);
    return {
      ...record.pod,
      status: {
        phase,
        ...(podIP && { podIP, podIPs: [{ ip: podIP }] }),
        ...(record.evicted && { reason: "Evicted", message: record.evicted }),
        ...(initStatuses.length > 0 && { initContainerStatuses: initStatuses }),
        containerStatuses: [
          {
            name: main.name,
            image: main.image!,
            imageID: "",
            ready: phase === "Running",
            restartCount: 0,
            started: phase === "Running",
            state,
            ...(info && { containerID: `docker://${info.Id}` }),
          },
        ],
      },
    };
  }
}

/** The checks of the API server's validation that matter here, as 422 causes. */
function validate(pod: V1Pod, name: string): StatusCause[] {
  const causes: StatusCause[] = [];
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(name) || name.length > 253)
    causes.push({
      field: "metadata.name",
      reason: "FieldValueInvalid",
      message: `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'`,
    });
  const containers = pod.spec?.containers ?? [];
  if (containers.length !== 1)
    causes.push({
      field: "spec.containers",
      reason: containers.length ? "FieldValueNotSupported" : "FieldValueRequired",
      message: "the façade runs pods of exactly one container",
    });
  for (const [i, c] of containers.entries()) {
    if (!c.image) causes.push({ field: `spec.containers[${i}].image`, reason: "FieldValueRequired", message: "Required value" });
    const limits = c.resources?.limits ?? {};
    const requests = c.resources?.requests ?? {};
    for (const key of Object.keys(requests)) {
      if (
        limits[key] !== undefined &&
        String(requests[key]) !== String(limits[key]) &&
        bytes(String(requests[key]).replace(/m$/, "")) > bytes(String(limits[key]).replace(/m$/, ""))
      )
        causes.push({ field: `spec.containers[${i}].resources.requests`, reason: "FieldValueInvalid", message: `must be less than or equal to ${key} limit` });
    }
  }
  return causes;
}

/** Equality-based label selectors: `k=v`, `k==v`, `k!=v`, `k`, `!k`, comma-separated. */
export function parseSelector(selector: string | undefined): (labels: Record<string, string>) => boolean {
  const terms = (selector ?? "")
    .split(",")
    .map((t) => t.trim())
    .filter(Boolean);
  return (labels) =>
    terms.every((term) => {
      if (term.startsWith("!")) return !(term.slice(1) in labels);
      const ne = term.split("!=");
      if (ne.length === 2) return labels[ne[0]!] !== ne[1];
      const eq = term.split(/==?/);
      if (eq.length === 2) return labels[eq[0]!] === eq[1];
      return term in labels;
    });
}
