import { randomBytes } from "node:crypto";
import {
  CONTAINER_LABELS,
  ImageMissingError,
  InvalidOptionsError,
  type Kit,
  type NetworkLogEntry,
  type NetworkModeContext,
  type NetworkModeDefinition,
  type PooledContainer,
  type PreparedSandbox,
  type SandboxSpec,
} from "@isol8/kit";
import type { FilteredNetworkInfo, ResolvedNetworkFilterOptions } from "./index.js";
import { LOG_PORT, PLUGIN, PROXY_PORT, ROLE_LABEL, ROLES, egressNetworkName, partLabels, proxyName, sandboxNetworkPrefix } from "./names.js";
import { proxySandboxSpec, queryProxy, waitReady, type ProxyEndpoint } from "./proxy-container.js";
import { compileRules } from "./proxy/rules.js";
import type { ProxyConfig, ProxyLogRecord } from "./proxy/types.js";
import { SandboxNetworks, cidrsOverlap, removeNetwork } from "./sandbox-networks.js";

/** How long a log query waits for requests still in flight when the program ended. */
const LOG_SETTLE_MS = 500;

interface Started {
  egressNetwork: string;
  ownsEgress: boolean;
  proxy: ProxyEndpoint;
  transport: "http" | "exec";
  networks: SandboxNetworks;
  /** container id → its address on its own network. */
  clientIps: Map<string, string>;
  context: NetworkModeContext;
}

/** One engine's filtered network: its networks, its proxy, its logs. */
export class FilteredNetwork {
  #state: Started | undefined;

  constructor(
    private readonly options: ResolvedNetworkFilterOptions,
    private readonly kit: Kit,
  ) {}

  get info(): FilteredNetworkInfo | undefined {
    const s = this.#state;
    if (!s) return undefined;
    return {
      sandboxRange: this.options.sandboxRange,
      sandboxNetworks: s.networks.names,
      egressNetwork: s.egressNetwork,
      ownsEgressNetwork: s.ownsEgress,
      proxyContainerId: s.proxy.id,
      egressAddress: s.proxy.egressIp,
      logTransport: s.transport,
    };
  }

  definition(): NetworkModeDefinition {
    return {
      shapeSpec: (spec) => this.#shapeSpec(spec),
      prepare: (spec) => this.#prepare(spec),
      start: (context) => this.#start(context),
      stop: (context) => this.#stop(context),
      logsFor: (container, window) => this.#logsFor(container, window),
    };
  }

  /**
   * No network until prepare() gives the sandbox its own: a spec that skipped prepare() runs with
   * loopback only (fails closed). No capability is added.
   */
  #shapeSpec(spec: SandboxSpec): SandboxSpec {
    if (!this.#state) throw new Error(`${PLUGIN}: network mode "filtered" was not started (engine.start() starts it)`);
    return { ...spec, network: { kind: "none" } };
  }

  /**
   * One sandbox's own network (see SandboxNetworks), and the proxy variables pointing at the
   * proxy's address on it. Given back when the container goes.
   */
  async #prepare(spec: SandboxSpec): Promise<PreparedSandbox> {
    const s = this.#state;
    if (!s) throw new Error(`${PLUGIN}: network mode "filtered" was not started (engine.start() starts it)`);
    const network = await s.networks.take();
    const proxy = `http://${network.proxyIp}:${PROXY_PORT}`;
    const noProxy = "localhost,127.0.0.1,::1";
    const env = {
      HTTP_PROXY: proxy,
      HTTPS_PROXY: proxy,
      http_proxy: proxy,
      https_proxy: proxy,
      NO_PROXY: noProxy,
      no_proxy: noProxy,
      // Node's own http/fetch read the variables above only with this (Node >= 22.21 / 24.5).
      NODE_USE_ENV_PROXY: "1",
      // ... which prints an "experimental" warning into every program's stderr on Node 22 otherwise.
      NODE_OPTIONS: "--disable-warning=UNDICI-EHPA",
    };
    let released = false;
    return {
      spec: { ...spec, env: { ...spec.env, ...env }, network: { kind: "network", name: network.name } },
      release: async () => {
        if (released) return;
        released = true;
        await s.networks.give(network);
      },
    };
  }

  /** The proxy image: the option, else the image the engine runs node in, else isol8's node image. */
  #image(context: NetworkModeContext): string {
    if (this.options.image) return this.options.image;
    return this.kit.runtimes.has("node") ? context.imageFor("node") : "isol8/node:latest";
  }

  async #start(context: NetworkModeContext): Promise<void> {
    if (this.#state) return;
    const given = context.options.networkFilter;
    const filter = { whitelist: given?.whitelist ?? [], blacklist: given?.blacklist ?? [], bounds: given?.bounds ?? [] };
    try {
      compileRules(filter.whitelist, "whitelist");
      compileRules(filter.blacklist, "blacklist");
      filter.bounds.forEach((bound, i) => {
        compileRules(bound.whitelist, `bounds[${i}].whitelist`);
        compileRules(bound.blacklist, `bounds[${i}].blacklist`);
      });
    } catch (error) {
      throw new InvalidOptionsError((error as Error).message, { plugin: PLUGIN });
    }
    const image = this.#image(context);
    if (!(await context.driver.imageExists(image))) throw new ImageMissingError("node (the filtered network's proxy)", image);

    const { driver, engineId } = context;
    const o = this.options;
    const t0 = performance.now();
    const steps: Record<string, number> = {};
    const step = (name: string) => (steps[name] = Math.round(performance.now() - t0));
    try {
      const egressNetwork = o.egressNetwork ?? egressNetworkName(engineId);
      const ownsEgress = !o.egressNetwork;
      if (o.egressNetwork) {
        const info = await driver.networks.inspect(egressNetwork);
        if (!info) throw new InvalidOptionsError(`${PLUGIN}: egressNetwork "${egressNetwork}" does not exist`, { plugin: PLUGIN });
        if (info.internal)
          throw new InvalidOptionsError(`${PLUGIN}: egressNetwork "${egressNetwork}" is an internal network: the proxy could not reach anything`, {
            plugin: PLUGIN,
          });
      } else {
        await driver.networks.create({ name: egressNetwork, labels: partLabels(context, ROLES.egress), internal: false });
      }
      step("networks");
      const logSubnets = ((await driver.networks.inspect(egressNetwork))?.subnets ?? []).filter((subnet) => /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(subnet));
      if (!logSubnets.length) throw new Error(`${PLUGIN}: the egress network ${egressNetwork} has no IPv4 subnet`);
      // The sandboxes' networks must not overlap the egress side (the proxy would not know which way is which).
      const clash = logSubnets.find((subnet) => cidrsOverlap(subnet, o.sandboxRange));
      if (clash)
        throw new InvalidOptionsError(`${PLUGIN}: sandboxRange ${o.sandboxRange} overlaps the egress network's subnet ${clash}; choose another range`, {
          plugin: PLUGIN,
        });

      const token = randomBytes(24).toString("hex");
      const config: ProxyConfig = {
        whitelist: filter.whitelist,
        blacklist: filter.blacklist,
        bounds: filter.bounds,
        ports: o.ports,
        proxyPort: PROXY_PORT,
        logPort: LOG_PORT,
        proxySubnets: [o.sandboxRange],
        sandboxSubnets: [o.sandboxRange],
        logSubnets,
        token,
        ringSize: o.logRingSize,
        maxConnectionsPerClient: o.maxConnectionsPerClient,
        connectTimeoutMs: o.connectTimeoutMs,
        idleTimeoutMs: o.idleTimeoutMs,
        inspectTunnels: o.inspectTunnels,
        dnsCacheMs: o.dnsCacheMs,
        allowAddresses: o.allowAddresses,
        hosts: Object.fromEntries(Object.entries(o.hosts).map(([name, value]) => [name.toLowerCase(), Array.isArray(value) ? value : [value]])),
      };
      const labels = partLabels(context, ROLES.proxy);
      const spec = proxySandboxSpec({ image, egressNetwork, config, labels, memoryLimit: o.memoryLimit, cpuLimit: o.cpuLimit, pidsLimit: o.pidsLimit });
      const proxyId = await driver.create(spec, { name: proxyName(engineId) });
      step("started");
      const egressIp = (await driver.inspect(proxyId))?.addresses[egressNetwork];
      if (!egressIp) throw new Error(`${PLUGIN}: the proxy container has no address on ${egressNetwork}`);
      const proxy: ProxyEndpoint = { driver, id: proxyId, egressIp, token };
      const transport = await waitReady(proxy, o.startTimeoutMs);
      step("ready");
      this.#state = {
        egressNetwork,
        ownsEgress,
        proxy,
        transport,
        networks: new SandboxNetworks(context, proxyId, o),
        clientIps: new Map(),
        context,
      };
      context.log.debug("filtered network started", { ...this.info, steps });
    } catch (error) {
      await this.#teardown(context).catch((cleanup) => context.log.warn("cleaning up a failed filtered-network start failed", { error: String(cleanup) }));
      throw error;
    }
  }

  async #stop(context: NetworkModeContext): Promise<void> {
    this.#state?.networks.close();
    this.#state = undefined;
    await this.#teardown(context);
  }

  /** Removes everything of this engine's filtered network, found by labels (so a half-made start is cleaned too). */
  async #teardown(context: NetworkModeContext): Promise<void> {
    const { driver } = context;
    const proxies = await driver.list({ [CONTAINER_LABELS.engine]: context.engineId, [ROLE_LABEL]: ROLES.proxy });
    await Promise.all(proxies.map((proxy) => driver.remove(proxy.id)));
    const networks = await driver.networks.list({ [CONTAINER_LABELS.engine]: context.engineId, [ROLE_LABEL]: true });
    const failures: string[] = [];
    for (const network of networks) {
      try {
        await removeNetwork(driver, network.name, context);
      } catch (error) {
        failures.push(`${network.name}: ${(error as Error).message}`);
      }
    }
    if (failures.length) throw new Error(`${PLUGIN}: could not remove networks: ${failures.join("; ")}`);
  }

  async #logsFor(container: PooledContainer, window: { start: Date; end: Date }): Promise<NetworkLogEntry[]> {
    const s = this.#state;
    if (!s) return [];
    let ip = s.clientIps.get(container.id);
    if (!ip) {
      const info = await s.context.driver.inspect(container.id);
      const own = sandboxNetworkPrefix(s.context.engineId);
      ip = Object.entries(info?.addresses ?? {}).find(([name]) => name.startsWith(own))?.[1];
      if (!ip) return [];
      if (s.clientIps.size > 4096) s.clientIps.clear();
      s.clientIps.set(container.id, ip);
    }
    const query = `/logs?client=${encodeURIComponent(ip)}&since=${window.start.getTime()}&until=${window.end.getTime()}&settle=${LOG_SETTLE_MS}`;
    const records = JSON.parse(await queryProxy(s.proxy, s.transport, query)) as ProxyLogRecord[];
    return records.map(toLogEntry);
  }
}

function toLogEntry(record: ProxyLogRecord): NetworkLogEntry {
  return {
    timestamp: new Date(record.time).toISOString(),
    method: record.method,
    host: record.host,
    path: record.path,
    action: record.action,
    ...(record.reason ? { reason: record.reason } : {}),
    durationMs: record.durationMs,
  };
}
