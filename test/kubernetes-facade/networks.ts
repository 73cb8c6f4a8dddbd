import type Docker from "dockerode";
import { FACADE_LABEL } from "./pods.js";

/** The pods' network label (the driver's NETWORK_LABEL) and the values deploy/kubernetes's policies select. */
const NETWORK_LABEL = "isol8.network";

/**
 * The façade's CNI, standing for a cluster whose NetworkPolicies (deploy/kubernetes) are enforced:
 * a pod labelled "none" has no network; "filtered" pods and "egress-proxy" pods share an internal
 * network (no route out: a filtered pod reaches the proxies and nothing outside), and an
 * egress-proxy pod is also on a normal bridge (its way out). A pod's IP is its address on the
 * internal network. Not emulated: the policy's refusal between two filtered pods (they share the
 * internal network here); the manifest test checks the policy allows a filtered pod the proxies'
 * port only.
 */
export class PodNetworks {
  #made: Promise<{ pods: string; egress: string }> | undefined;

  constructor(
    private readonly docker: Docker,
    private readonly id: string,
    /** An existing network for the proxies' way out (never removed here); absent: one made and removed. */
    private readonly egressNetwork?: string,
  ) {}

  get #names() {
    return { pods: `facade-${this.id}-pods`, egress: this.egressNetwork ?? `facade-${this.id}-egress` };
  }

  /** The network mode its label gives a pod's main container. */
  #modeName(labels: Record<string, string>): string {
    const value = labels[NETWORK_LABEL];
    return value === "filtered" || value === "egress-proxy" ? this.#names.pods : "none";
  }

  /** The Docker network mode of a pod's main container, its networks made on first use, and what to do before it starts. */
  async modeOf(labels: Record<string, string>): Promise<{ mode: string; beforeStart: (containerId: string) => Promise<void> }> {
    const mode = this.#modeName(labels);
    if (mode === "none") return { mode, beforeStart: async () => undefined };
    const names = await this.#make();
    const egress = labels[NETWORK_LABEL] === "egress-proxy";
    return {
      mode,
      beforeStart: async (containerId) => {
        if (egress) await this.docker.getNetwork(names.egress).connect({ Container: containerId });
      },
    };
  }

  /** A pod's IP: its address on the internal network. */
  addressOf(info: Docker.ContainerInspectInfo): string | undefined {
    return info.NetworkSettings?.Networks?.[this.#names.pods]?.IPAddress || undefined;
  }

  #make(): Promise<{ pods: string; egress: string }> {
    this.#made ??= (async () => {
      const names = this.#names;
      await this.docker.createNetwork({ Name: names.pods, Internal: true, Labels: { [FACADE_LABEL]: this.id } });
      if (!this.egressNetwork) await this.docker.createNetwork({ Name: names.egress, Labels: { [FACADE_LABEL]: this.id } });
      return names;
    })();
    return this.#made;
  }

  async close(): Promise<void> {
    if (!this.#made) return;
    const names = await this.#made.catch(() => undefined);
    this.#made = undefined;
    if (!names) return;
    for (const name of this.egressNetwork ? [names.pods] : [names.pods, names.egress])
      await this.docker
        .getNetwork(name)
        .remove()
        .catch(() => undefined);
  }
}
