import * as z from "zod";
import { definePlugin, sizeSchema, type Kit, type NetworkModeDefinition } from "@isol8/kit";
import { FilteredNetwork } from "./filtered-network.js";
import { PLUGIN } from "./names.js";
import { parseCidr, parseIPv4, parseIPv6 } from "./proxy/addresses.js";

export const PLUGIN_NAME = PLUGIN;

const cidr = z.string().refine((value) => parseCidr(value) !== null && value.includes("/"), "expected a CIDR range such as 10.20.0.0/16");
const ip = z.string().refine((value) => parseIPv4(value) !== null || parseIPv6(value) !== null, "expected an IPv4 or IPv6 address");
const port = z.number().int().min(1).max(65535);

export const networkFilterOptionsSchema = z.strictObject({
  /** Image of the proxy container (needs `node` on PATH). Default: the node runtime's image, else isol8/node:latest. */
  image: z.string().min(1).optional(),
  /**
   * An existing Docker network for the proxy's egress side, instead of one the engine creates
   * (and removes). It must be a normal (not internal) network: what the proxy may reach is there.
   */
  egressNetwork: z.string().min(1).optional(),
  /**
   * IPv4 range the sandboxes' own networks are cut from: one /29 per sandbox container (a /16
   * holds 8192). Each engine picks free /29s at random and skips those Docker says overlap
   * another network, so engines of one host may share the default range.
   */
  sandboxRange: z
    .string()
    .refine((value) => {
      const range = parseCidr(value);
      return range !== null && value.includes("/") && range.bytes.length === 4 && range.prefix >= 8 && range.prefix <= 28;
    }, "expected an IPv4 CIDR range from /8 to /28, such as 10.213.0.0/16")
    .default("10.213.0.0/16"),
  /**
   * Sandbox networks kept for reuse once their sandbox is removed (the proxy stays attached, no
   * sandbox), so a new sandbox's network is usually not made on the execution's path. A network is
   * only reused when it holds nothing but the proxy. 0: each is removed with its container.
   */
  spareNetworks: z.number().int().min(0).max(256).default(4),
  /** Destination ports allowed through the proxy, for http:// requests and CONNECT tunnels alike. */
  ports: z.array(port).min(1).default([80, 443]),
  /**
   * Ranges the proxy never dials, even where allowAddresses covers them: on Kubernetes, the
   * cluster's pod and service ranges (the proxy must not be a way from a sandbox to other pods).
   */
  clusterRanges: z.array(cidr).default([]),
  /** Address ranges the proxy may dial although they are not public (an operator's internal services). */
  allowAddresses: z.array(cidr).default([]),
  /** Static resolver entries of the proxy (consulted before DNS): host name → address(es). */
  hosts: z.record(z.string().min(1), z.union([ip, z.array(ip).min(1)])).default({}),
  /**
   * CONNECT tunnels must begin with a TLS ClientHello whose server name (when sent) is the CONNECT
   * host, or an HTTP/1.x request whose Host (when sent) is the CONNECT target; anything else
   * (SSH, SMTP, raw bytes) is cut before a byte goes upstream.
   */
  inspectTunnels: z.boolean().default(true),
  /** How long the proxy reuses a DNS answer (ms; 0 = never). The vetted address is the one dialled either way. */
  dnsCacheMs: z.number().int().nonnegative().default(5_000),
  memoryLimit: sizeSchema.default(128 * 1024 ** 2),
  cpuLimit: z.number().positive().default(0.5),
  pidsLimit: z.number().int().positive().default(64),
  /** Request records kept by the proxy for `logNetwork` (a ring: the oldest go first). */
  logRingSize: z.number().int().min(16).max(1_000_000).default(10_000),
  maxConnectionsPerClient: z.number().int().positive().default(256),
  connectTimeoutMs: z.number().int().positive().default(10_000),
  idleTimeoutMs: z.number().int().positive().default(300_000),
  /** How long engine.start() waits for the proxy to answer. */
  startTimeoutMs: z.number().int().positive().default(30_000),
});

export type NetworkFilterOptions = z.input<typeof networkFilterOptionsSchema>;
export type ResolvedNetworkFilterOptions = z.output<typeof networkFilterOptionsSchema>;

/** What a started filtered network consists of (for diagnostics and tests). */
export interface FilteredNetworkInfo {
  /** How sandboxes are kept to the proxy: networks of their own (Docker) or the backend's policy (Kubernetes). */
  isolation: "networks" | "policy";
  /** The range sandbox networks are cut from (networks). */
  sandboxRange: string;
  /** The sandbox networks that exist now (one per sandbox container: the proxy and that sandbox); none with a policy. */
  sandboxNetworks: string[];
  /** The proxy's egress network; "" with a policy (the proxy pod's one address). */
  egressNetwork: string;
  /** true when the engine created the egress network (and removes it in stop()). */
  ownsEgressNetwork: boolean;
  proxyContainerId: string;
  /** The proxy's address on the egress network (its log endpoint listens there), or its pod's address. */
  egressAddress: string;
  /** How the engine reads request logs: over HTTP from this process, or by exec in the proxy container. */
  logTransport: "http" | "exec";
}

/** Each registered "filtered" mode's state, by the definition registered (the same object whichever view of the kit reads it). */
const instances = new WeakMap<NetworkModeDefinition, FilteredNetwork>();

/**
 * The topology of an engine's "filtered" mode once engine.start() ran; undefined before and
 * after stop(). `engine.kit` is the engine's kit.
 */
export function filteredNetworkInfo(kit: Kit): FilteredNetworkInfo | undefined {
  if (!kit.networkModes.has("filtered")) return undefined;
  return instances.get(kit.networkModes.get("filtered"))?.info;
}

/**
 * Network mode "filtered": each sandbox sits on an internal Docker network of its own (no route
 * out, no host access, no IPv6, no other sandbox) whose only peer is an egress proxy container
 * that allows HTTP and HTTPS to hosts the engine's `networkFilter` rules allow, and logs each request.
 */
export const networkFilter = definePlugin({
  name: PLUGIN_NAME,
  options: networkFilterOptionsSchema,
  setup: (options) => (kit) => {
    const mode = new FilteredNetwork(options, kit);
    const definition = mode.definition();
    instances.set(definition, mode);
    kit.networkModes.register("filtered", definition);
  },
});

export default networkFilter;

export { proxyScriptSource } from "./script.js";
export {
  checkHostHeader,
  chooseAddress,
  classifyAddress,
  compileRules,
  evaluateRules,
  inspectTunnelStart,
  normalizeHost,
  parseRequestTarget,
  type ProxyLogRecord,
} from "./proxy-script.js";
