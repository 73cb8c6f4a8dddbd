/**
 * How an engine's filtered sandboxes are kept to its proxy, by what the driver has: a private
 * network per sandbox (network-topology.ts: Docker) or the backend's policy by label
 * (policy-topology.ts: Kubernetes' NetworkPolicy). The proxy, its rules and its logs are the
 * same either way (filtered-network.ts).
 */
import type { SandboxInfo, SandboxNetwork } from "@isol8/kit";
import type { ProxyEndpoint } from "./proxy-container.js";
import type { ProxyConfig } from "./proxy/types.js";

/** The proxy config's fields that depend on the topology. */
export type TopologyConfig = Pick<ProxyConfig, "proxySubnets" | "sandboxSubnets" | "logSubnets" | "registeredClients">;

/** Asks the running proxy's log endpoint (see queryProxy). */
export type ProxyQuery = (path: string, method?: "GET" | "POST") => Promise<string>;

/** One sandbox's place: its network, the proxy's address it is given, and what follows its life. */
export interface SandboxPlace {
  network: SandboxNetwork;
  proxyIp: string;
  /** Once the sandbox exists, before any program runs in it. */
  created?: (sandboxId: string) => Promise<void>;
  /** Once the sandbox is removed (or its creation failed); never throws. */
  release: () => Promise<void>;
}

export interface Topology {
  readonly isolation: "networks" | "policy";
  /** Before the proxy starts: makes the egress side; what the proxy's config and sandbox take from it. */
  setUp(): Promise<{ config: TopologyConfig; proxyNetwork: SandboxNetwork; proxyAddress: (info: SandboxInfo) => string | undefined }>;
  /** Once the proxy answers. */
  proxyReady(proxy: ProxyEndpoint, query: ProxyQuery): void;
  /** A new sandbox's place. */
  place(): Promise<SandboxPlace>;
  /** The address a sandbox's requests come from (the client of its log records); undefined when unknown. */
  clientIp(sandboxId: string): Promise<string | undefined>;
  /** No more places are kept for reuse: the engine is stopping. */
  close(): void;
  /** Removes what setUp and place made, found by labels (a half-made start too); the proxy is removed before. */
  tearDown(): Promise<void>;
  /** For FilteredNetworkInfo. */
  describe(): { egressNetwork: string; ownsEgressNetwork: boolean; sandboxNetworks: string[] };
}
