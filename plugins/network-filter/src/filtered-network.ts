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
import { LOG_PORT, PLUGIN, PROXY_PORT, ROLE_LABEL, ROLES, partLabels, proxyName } from "./names.js";
import { NetworkTopology } from "./network-topology.js";
import { PolicyTopology } from "./policy-topology.js";
import { proxySandboxSpec, queryProxy, waitReady, type ProxyEndpoint } from "./proxy-container.js";
import { compileRules } from "./proxy/rules.js";
import type { ProxyConfig, ProxyLogRecord } from "./proxy/types.js";
import type { Topology } from "./topology.js";

/** How long a log query waits for requests still in flight when the program ended. */
const LOG_SETTLE_MS = 500;

interface Started {
  topology: Topology;
  proxy: ProxyEndpoint;
  transport: "http" | "exec";
  context: NetworkModeContext;
}

/** One engine's filtered network: its proxy, the topology keeping its sandboxes to it, its logs. */
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
      isolation: s.topology.isolation,
      sandboxRange: this.options.sandboxRange,
      ...s.topology.describe(),
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
   * No network until prepare() gives the sandbox its place: a spec that skipped prepare() runs
   * with loopback only (fails closed). No capability is added.
   */
  #shapeSpec(spec: SandboxSpec): SandboxSpec {
    if (!this.#state) throw new Error(`${PLUGIN}: network mode "filtered" was not started (engine.start() starts it)`);
    return { ...spec, network: { kind: "none" } };
  }

  /** One sandbox's place (see Topology), and the proxy variables pointing at the proxy's address there. */
  async #prepare(spec: SandboxSpec): Promise<PreparedSandbox> {
    const s = this.#state;
    if (!s) throw new Error(`${PLUGIN}: network mode "filtered" was not started (engine.start() starts it)`);
    const place = await s.topology.place();
    const proxy = `http://${place.proxyIp}:${PROXY_PORT}`;
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
    return {
      spec: { ...spec, env: { ...spec.env, ...env }, network: place.network },
      ...(place.created && { created: place.created }),
      release: place.release,
    };
  }

  /** The proxy image: the option, else the image the engine runs node in, else isol8's node image. */
  #image(context: NetworkModeContext): string {
    if (this.options.image) return this.options.image;
    return this.kit.runtimes.has("node") ? context.imageFor("node") : "isol8/node:latest";
  }

  /** How this engine's sandboxes are kept to the proxy: by what its driver has (see Topology). */
  #topology(context: NetworkModeContext): Topology {
    return context.driver.networkIsolation === "policy" ? new PolicyTopology(context, this.options) : new NetworkTopology(context, this.options);
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
    const topology = this.#topology(context);
    const t0 = performance.now();
    const steps: Record<string, number> = {};
    const step = (name: string) => (steps[name] = Math.round(performance.now() - t0));
    try {
      const place = await topology.setUp();
      step("networks");
      const token = randomBytes(24).toString("hex");
      const config: ProxyConfig = {
        whitelist: filter.whitelist,
        blacklist: filter.blacklist,
        bounds: filter.bounds,
        ports: o.ports,
        proxyPort: PROXY_PORT,
        logPort: LOG_PORT,
        ...place.config,
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
      const spec = proxySandboxSpec({
        image,
        network: place.proxyNetwork,
        policy: topology.isolation === "policy",
        config,
        labels,
        memoryLimit: o.memoryLimit,
        cpuLimit: o.cpuLimit,
        pidsLimit: o.pidsLimit,
      });
      const proxyId = await driver.create(spec, { name: proxyName(engineId) }).catch((error: unknown) => {
        // A backend's refusal names a spec field (a pod's pidsLimit, say): say it is the proxy's,
        // whose limits are this plugin's options, not the engine's.
        if (error instanceof Error) error.message = `${PLUGIN}: the egress proxy's sandbox (this plugin's memoryLimit, cpuLimit, pidsLimit): ${error.message}`;
        throw error;
      });
      step("started");
      const info = await driver.inspect(proxyId);
      const egressIp = info && place.proxyAddress(info);
      if (!egressIp) throw new Error(`${PLUGIN}: the proxy container has no address on its egress side`);
      const proxy: ProxyEndpoint = { driver, id: proxyId, egressIp, token };
      const transport = await waitReady(proxy, o.startTimeoutMs);
      step("ready");
      topology.proxyReady(proxy, (path, method) => queryProxy(proxy, transport, path, method));
      this.#state = { topology, proxy, transport, context };
      context.log.debug("filtered network started", { ...this.info, steps });
    } catch (error) {
      await this.#teardown(context, topology).catch((cleanup) =>
        context.log.warn("cleaning up a failed filtered-network start failed", { error: String(cleanup) }),
      );
      throw error;
    }
  }

  async #stop(context: NetworkModeContext): Promise<void> {
    const topology = this.#state?.topology ?? this.#topology(context);
    topology.close();
    this.#state = undefined;
    await this.#teardown(context, topology);
  }

  /** Removes everything of this engine's filtered network, found by labels (so a half-made start is cleaned too). */
  async #teardown(context: NetworkModeContext, topology: Topology): Promise<void> {
    const { driver } = context;
    const proxies = await driver.list({ [CONTAINER_LABELS.engine]: context.engineId, [ROLE_LABEL]: ROLES.proxy });
    await Promise.all(proxies.map((proxy) => driver.remove(proxy.id)));
    await topology.tearDown();
  }

  async #logsFor(container: PooledContainer, window: { start: Date; end: Date }): Promise<NetworkLogEntry[]> {
    const s = this.#state;
    if (!s) return [];
    const ip = await s.topology.clientIp(container.id);
    if (!ip) return [];
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
    ...(record.status !== undefined ? { status: record.status } : {}),
    durationMs: record.durationMs,
  };
}
