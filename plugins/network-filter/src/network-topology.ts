/**
 * Docker's topology: an egress network for the proxy, and each sandbox on an internal network of
 * its own that only the proxy shares (sandbox-networks.ts). The proxy serves only connections that
 * arrive on those networks, and its log endpoint listens on the egress network.
 */
import { CONTAINER_LABELS, InvalidOptionsError, type NetworkModeContext, type SandboxInfo } from "@isol8/kit";
import type { ResolvedNetworkFilterOptions } from "./index.js";
import { PLUGIN, ROLE_LABEL, ROLES, egressNetworkName, partLabels, sandboxNetworkPrefix } from "./names.js";
import type { ProxyEndpoint } from "./proxy-container.js";
import { SandboxNetworks, cidrsOverlap, removeNetwork } from "./sandbox-networks.js";
import type { SandboxPlace, Topology, TopologyConfig } from "./topology.js";

export class NetworkTopology implements Topology {
  readonly isolation = "networks";
  readonly #egressNetwork: string;
  #networks: SandboxNetworks | undefined;
  /** sandbox id → its address on its own network. */
  readonly #clientIps = new Map<string, string>();

  constructor(
    private readonly context: NetworkModeContext,
    private readonly options: ResolvedNetworkFilterOptions,
  ) {
    this.#egressNetwork = options.egressNetwork ?? egressNetworkName(context.engineId);
  }

  async setUp() {
    const { driver } = this.context;
    const o = this.options;
    const egressNetwork = this.#egressNetwork;
    if (o.egressNetwork) {
      const info = await driver.networks.inspect(egressNetwork);
      if (!info) throw new InvalidOptionsError(`${PLUGIN}: egressNetwork "${egressNetwork}" does not exist`, { plugin: PLUGIN });
      if (info.internal)
        throw new InvalidOptionsError(`${PLUGIN}: egressNetwork "${egressNetwork}" is an internal network: the proxy could not reach anything`, {
          plugin: PLUGIN,
        });
    } else {
      await driver.networks.create({ name: egressNetwork, labels: partLabels(this.context, ROLES.egress), internal: false });
    }
    const logSubnets = ((await driver.networks.inspect(egressNetwork))?.subnets ?? []).filter((subnet) => /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(subnet));
    if (!logSubnets.length) throw new Error(`${PLUGIN}: the egress network ${egressNetwork} has no IPv4 subnet`);
    // The sandboxes' networks must not overlap the egress side (the proxy would not know which way is which).
    const clash = logSubnets.find((subnet) => cidrsOverlap(subnet, o.sandboxRange));
    if (clash)
      throw new InvalidOptionsError(`${PLUGIN}: sandboxRange ${o.sandboxRange} overlaps the egress network's subnet ${clash}; choose another range`, {
        plugin: PLUGIN,
      });
    const config: TopologyConfig = {
      proxySubnets: [o.sandboxRange],
      sandboxSubnets: [o.sandboxRange, ...o.clusterRanges],
      logSubnets,
      registeredClients: false,
    };
    return {
      config,
      proxyNetwork: { kind: "network", name: egressNetwork } as const,
      proxyAddress: (info: SandboxInfo) => info.addresses[egressNetwork],
    };
  }

  proxyReady(proxy: ProxyEndpoint): void {
    this.#networks = new SandboxNetworks(this.context, proxy.id, this.options);
  }

  async place(): Promise<SandboxPlace> {
    const networks = this.#networks;
    if (!networks) throw new Error(`${PLUGIN}: network mode "filtered" was not started (engine.start() starts it)`);
    const network = await networks.take();
    let released = false;
    return {
      network: { kind: "network", name: network.name },
      proxyIp: network.proxyIp,
      release: async () => {
        if (released) return;
        released = true;
        await networks.give(network);
      },
    };
  }

  async clientIp(sandboxId: string): Promise<string | undefined> {
    let ip = this.#clientIps.get(sandboxId);
    if (ip) return ip;
    const info = await this.context.driver.inspect(sandboxId);
    const own = sandboxNetworkPrefix(this.context.engineId);
    ip = Object.entries(info?.addresses ?? {}).find(([name]) => name.startsWith(own))?.[1];
    if (!ip) return undefined;
    if (this.#clientIps.size > 4096) this.#clientIps.clear();
    this.#clientIps.set(sandboxId, ip);
    return ip;
  }

  close(): void {
    this.#networks?.close();
  }

  async tearDown(): Promise<void> {
    const { driver } = this.context;
    const networks = await driver.networks.list({ [CONTAINER_LABELS.engine]: this.context.engineId, [ROLE_LABEL]: true });
    const failures: string[] = [];
    for (const network of networks) {
      try {
        await removeNetwork(driver, network.name, this.context);
      } catch (error) {
        failures.push(`${network.name}: ${(error as Error).message}`);
      }
    }
    if (failures.length) throw new Error(`${PLUGIN}: could not remove networks: ${failures.join("; ")}`);
  }

  describe() {
    return { egressNetwork: this.#egressNetwork, ownsEgressNetwork: !this.options.egressNetwork, sandboxNetworks: this.#networks?.names ?? [] };
  }
}
