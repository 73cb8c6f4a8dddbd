import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Docker from "dockerode";
import { DockerIsol8, type Isol8Plugin } from "@isol8/core";
import { KubernetesDriver, kubernetesDriver, type KubernetesDriverOptions } from "@isol8/plugin-driver-kubernetes";
import { FACADE_LABEL } from "./pods.js";
import { KubernetesFacade, type FacadeOptions } from "./server.js";

/** The driver's `images` option for local images: what `isol8 setup --push` is to record (reference and labels). */
export async function pushedImages(docker: Docker, tags: readonly string[]): Promise<Record<string, { reference: string; labels: Record<string, string> }>> {
  const entries = await Promise.all(
    tags.map(async (tag) => [tag, { reference: tag, labels: (await docker.getImage(tag).inspect()).Config.Labels ?? {} }] as const),
  );
  return Object.fromEntries(entries);
}

/** The images an engine of these plugins runs each runtime in (the tags isol8 setup built), as the driver's `images` option. */
export async function engineImages(docker: Docker, plugins: readonly Isol8Plugin[]): Promise<KubernetesDriverOptions["images"]> {
  const probe = new DockerIsol8({}, { plugins }); // never started: only its image names are read
  return pushedImages(
    docker,
    probe.kit.runtimes.names().map((runtime) => probe.imageFor(runtime)),
  );
}

/**
 * A façade on 127.0.0.1 and a kubeconfig file for it: what an engine needs to choose
 * `driver: "kubernetes"` with `kubernetesDriver(cluster.driverOptions(...))` among its plugins.
 */
export class FacadeCluster {
  readonly facade: KubernetesFacade;
  readonly #dir = mkdtempSync(join(tmpdir(), "isol8-k8s-"));
  #kubeconfig: string | undefined;

  constructor(
    readonly namespace: string,
    options: FacadeOptions = {},
  ) {
    this.facade = new KubernetesFacade({ podPidsLimit: 64, ...options });
  }

  async start(): Promise<this> {
    const server = await this.facade.listen();
    this.#kubeconfig = join(this.#dir, "kubeconfig");
    writeFileSync(this.#kubeconfig, this.facade.kubeconfig(server, this.namespace));
    return this;
  }

  get kubeconfig(): string {
    if (!this.#kubeconfig) throw new Error("FacadeCluster.start() first");
    return this.#kubeconfig;
  }

  /** The plugin's options for this cluster (its nodes' PID limit, what Kubernetes cannot express accepted), `images` given. */
  driverOptions(images: KubernetesDriverOptions["images"], extra: KubernetesDriverOptions = {}): KubernetesDriverOptions {
    return {
      kubeconfig: this.kubeconfig,
      namespace: this.namespace,
      nodePodPidsLimit: 64,
      acceptWeaker: { tmpfsExec: true, nodeLogs: true },
      images,
      startTimeoutMs: 60_000,
      ...extra,
    };
  }

  /** `plugins` plus the Kubernetes driver for this cluster, with the images those plugins' runtimes run in. */
  async plugins(plugins: readonly Isol8Plugin[], extra: KubernetesDriverOptions = {}): Promise<Isol8Plugin[]> {
    return [...plugins, kubernetesDriver(this.driverOptions(await engineImages(this.facade.docker, plugins), extra))];
  }

  /** The main containers (see mainContainers) of the pods carrying these labels, listed through the API server. */
  async containersOfPods(labels: Readonly<Record<string, string>>): Promise<string[]> {
    const pods = await new KubernetesDriver(this.driverOptions({})).list(labels);
    return this.mainContainers(pods.map((pod) => pod.id));
  }

  /** The Docker containers running the main container of these pods (where the program's processes are). */
  async mainContainers(pods: readonly string[]): Promise<string[]> {
    const containers = await this.facade.docker.listContainers({
      filters: { label: [`${FACADE_LABEL}=${this.facade.store.id}`, `${FACADE_LABEL}.role=main`] },
    });
    return containers.filter((c) => pods.includes(c.Labels[`${FACADE_LABEL}.pod`] ?? "")).map((c) => c.Id);
  }

  async close(): Promise<void> {
    await this.facade.close();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
