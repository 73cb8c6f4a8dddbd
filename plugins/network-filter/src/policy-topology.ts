/**
 * A policy driver's topology (Kubernetes): no networks to make. The proxy is a pod labelled
 * "egress" and each sandbox a pod labelled "proxied"; the backend's policy (deploy/kubernetes's
 * NetworkPolicy) lets a proxied pod reach the proxies' port and nothing else. One address serves
 * everything, so the proxy serves only the sandboxes its engine registered: a sandbox of another
 * engine (with other rules) is refused by this engine's proxy.
 */
import type { NetworkModeContext, SandboxInfo } from "@isol8/kit";
import type { ResolvedNetworkFilterOptions } from "./index.js";
import { PLUGIN } from "./names.js";
import type { ProxyEndpoint } from "./proxy-container.js";
import type { ProxyQuery, SandboxPlace, Topology, TopologyConfig } from "./topology.js";

/** A pod's one address (the driver's `addresses` hold a single entry). */
function podAddress(info: SandboxInfo | undefined): string | undefined {
  return Object.values(info?.addresses ?? {})[0];
}

export class PolicyTopology implements Topology {
  readonly isolation = "policy";
  #proxy: { endpoint: ProxyEndpoint; query: ProxyQuery } | undefined;
  /** sandbox id → its registered address. */
  readonly #clients = new Map<string, string>();

  constructor(
    private readonly context: NetworkModeContext,
    private readonly options: ResolvedNetworkFilterOptions,
  ) {}

  async setUp() {
    const config: TopologyConfig = {
      proxySubnets: ["0.0.0.0/0"],
      // The cluster's pods and services: never dialled, even where allowAddresses covers them.
      sandboxSubnets: [...this.options.clusterRanges],
      logSubnets: [],
      registeredClients: true,
    };
    return { config, proxyNetwork: { kind: "egress" } as const, proxyAddress: podAddress };
  }

  proxyReady(endpoint: ProxyEndpoint, query: ProxyQuery): void {
    this.#proxy = { endpoint, query };
  }

  async place(): Promise<SandboxPlace> {
    const proxy = this.#proxy;
    if (!proxy) throw new Error(`${PLUGIN}: network mode "filtered" was not started (engine.start() starts it)`);
    /** The sandbox `created` registers with the proxy, until `release` takes it back. */
    let registered: { sandboxId: string; address: string } | undefined;
    return {
      network: { kind: "proxied" },
      proxyIp: proxy.endpoint.egressIp,
      created: async (sandboxId) => {
        const address = podAddress(await this.context.driver.inspect(sandboxId));
        if (!address) throw new Error(`${PLUGIN}: sandbox ${sandboxId} has no address to register with the egress proxy`);
        // Taken back by `release` even when the answer to this call is lost.
        registered = { sandboxId, address };
        await proxy.query(`/clients?add=${encodeURIComponent(address)}`, "POST");
        this.#clients.set(sandboxId, address);
      },
      release: async () => {
        if (!registered) return;
        const { sandboxId, address } = registered;
        registered = undefined;
        this.#clients.delete(sandboxId);
        await proxy
          .query(`/clients?remove=${encodeURIComponent(address)}`, "POST")
          .catch((error) => this.context.log.warn("removing a sandbox from the egress proxy's clients failed", { address, error: String(error) }));
      },
    };
  }

  async clientIp(sandboxId: string): Promise<string | undefined> {
    return this.#clients.get(sandboxId) ?? podAddress(await this.context.driver.inspect(sandboxId));
  }

  close(): void {
    this.#proxy = undefined;
  }

  async tearDown(): Promise<void> {
    // Nothing but the proxy pod, which the filtered network removes.
  }

  describe() {
    return { egressNetwork: "", ownsEgressNetwork: false, sandboxNetworks: [] };
  }
}
