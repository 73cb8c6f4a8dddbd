import { randomBytes } from "node:crypto";
import { request } from "node:http";
import { hostname } from "node:os";
import {
  CONTAINER_LABELS,
  ImageMissingError,
  InvalidOptionsError,
  runtimeImageTag,
  type ContainerSpec,
  type DockerDriver,
  type Kit,
  type NetworkLogEntry,
  type NetworkModeContext,
  type NetworkModeDefinition,
  type PooledContainer,
} from "@isol8/core";
import type { FilteredNetworkInfo, ResolvedNetworkFilterOptions } from "./index.js";
import { compileRules, type ProxyConfig, type ProxyLogRecord } from "./proxy-script.js";
import { proxyScriptSource } from "./script.js";

type Docker = DockerDriver["docker"];

/** The label that tells the parts of a filtered network apart (cleanup finds them by engine id + role). */
export const ROLE_LABEL = "isol8.role";
export const ROLES = { proxy: "network-filter-proxy", internal: "network-filter-internal", egress: "network-filter-egress" } as const;
const PLUGIN = "isol8:network-filter";
export const PROXY_PORT = 3128;
export const LOG_PORT = 3129;
/** The proxy's name on the internal network (sandboxes use its address, not this name). */
export const PROXY_ALIAS = "isol8-proxy";
/** How long a log query waits for requests still in flight when the program ended. */
const LOG_SETTLE_MS = 500;

interface Started {
  internalNetwork: string;
  egressNetwork: string;
  ownsEgress: boolean;
  proxyId: string;
  proxyIp: string;
  egressIp: string;
  token: string;
  transport: "http" | "exec";
  driver: DockerDriver;
  /** container id → its address on the internal network. */
  clientIps: Map<string, string>;
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
      internalNetwork: s.internalNetwork,
      egressNetwork: s.egressNetwork,
      ownsEgressNetwork: s.ownsEgress,
      proxyContainerId: s.proxyId,
      proxyUrl: `http://${s.proxyIp}:${PROXY_PORT}`,
      egressAddress: s.egressIp,
      logTransport: s.transport,
    };
  }

  definition(): NetworkModeDefinition {
    return {
      shapeSpec: (spec) => this.#shapeSpec(spec),
      start: (context) => this.#start(context),
      stop: (context) => this.#stop(context),
      logsFor: (container, window) => this.#logsFor(container, window),
    };
  }

  /** Sandboxes join the internal network only, with the proxy in their environment. No capability is added. */
  #shapeSpec(spec: ContainerSpec): ContainerSpec {
    const s = this.#state;
    if (!s) throw new Error(`${PLUGIN}: network mode "filtered" was not started (engine.start() starts it)`);
    const proxy = `http://${s.proxyIp}:${PROXY_PORT}`;
    const noProxy = "localhost,127.0.0.1,::1";
    const env = [
      `HTTP_PROXY=${proxy}`,
      `HTTPS_PROXY=${proxy}`,
      `http_proxy=${proxy}`,
      `https_proxy=${proxy}`,
      `NO_PROXY=${noProxy}`,
      `no_proxy=${noProxy}`,
      // Node's own http/fetch read the variables above only with this (Node >= 22.21 / 24.5).
      "NODE_USE_ENV_PROXY=1",
      // ... which prints an "experimental" warning into every program's stderr on Node 22 otherwise.
      "NODE_OPTIONS=--disable-warning=UNDICI-EHPA",
    ];
    const names = new Set(env.map((e) => e.slice(0, e.indexOf("="))));
    const { NetworkDisabled: _ignored, ...rest } = spec;
    return {
      ...rest,
      Env: [...(spec.Env ?? []).filter((e) => !names.has(e.slice(0, e.indexOf("=")))), ...env],
      HostConfig: { ...spec.HostConfig, NetworkMode: s.internalNetwork },
    };
  }

  #labels(context: NetworkModeContext, role: string): Record<string, string> {
    return {
      [CONTAINER_LABELS.managed]: "true",
      [CONTAINER_LABELS.engine]: context.engineId,
      [CONTAINER_LABELS.ownerPid]: String(process.pid),
      [CONTAINER_LABELS.ownerHost]: hostname(),
      [ROLE_LABEL]: role,
    };
  }

  #image(): string {
    if (this.options.image) return this.options.image;
    return this.kit.runtimes.has("node") ? runtimeImageTag(this.kit.runtimes.get("node")) : "isol8/node:latest";
  }

  async #start(context: NetworkModeContext): Promise<void> {
    if (this.#state) return;
    const filter = context.options.networkFilter ?? { whitelist: [], blacklist: [], bounds: [] };
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
    const image = this.#image();
    if (!(await context.driver.imageExists(image))) throw new ImageMissingError("node (the filtered network's proxy)", image);

    const docker = context.driver.docker;
    const o = this.options;
    const id = context.engineId;
    const t0 = performance.now();
    const steps: Record<string, number> = {};
    const step = (name: string) => (steps[name] = Math.round(performance.now() - t0));
    try {
      const internalNetwork = `isol8-${id}-internal`;
      await docker.createNetwork({
        Name: internalNetwork,
        Driver: "bridge",
        Internal: true,
        EnableIPv6: false,
        CheckDuplicate: true,
        // No address on the bridge: the host (and every service it runs) is unreachable from sandboxes.
        Options: { "com.docker.network.bridge.inhibit_ipv4": "true" },
        Labels: this.#labels(context, ROLES.internal),
        ...(o.internalSubnet ? { IPAM: { Driver: "default", Config: [{ Subnet: o.internalSubnet }] } } : {}),
      });
      let egressNetwork: string;
      const ownsEgress = !o.egressNetwork;
      if (o.egressNetwork) {
        egressNetwork = o.egressNetwork;
        const info = await inspectNetwork(docker, egressNetwork);
        if (!info) throw new InvalidOptionsError(`${PLUGIN}: egressNetwork "${egressNetwork}" does not exist`, { plugin: PLUGIN });
        if (info.Internal) throw new InvalidOptionsError(`${PLUGIN}: egressNetwork "${egressNetwork}" is an internal network: the proxy could not reach anything`, { plugin: PLUGIN });
      } else {
        egressNetwork = `isol8-${id}-egress`;
        await docker.createNetwork({ Name: egressNetwork, Driver: "bridge", Internal: false, EnableIPv6: false, CheckDuplicate: true, Labels: this.#labels(context, ROLES.egress) });
      }
      step("networks");
      const proxySubnets = ipv4Subnets(await inspectNetwork(docker, internalNetwork));
      const logSubnets = ipv4Subnets(await inspectNetwork(docker, egressNetwork));
      if (!proxySubnets.length || !logSubnets.length) throw new Error(`${PLUGIN}: the networks have no IPv4 subnet (internal: ${proxySubnets}, egress: ${logSubnets})`);

      const token = randomBytes(24).toString("hex");
      const config: ProxyConfig = {
        whitelist: filter.whitelist,
        blacklist: filter.blacklist,
        bounds: filter.bounds,
        ports: o.ports,
        proxyPort: PROXY_PORT,
        logPort: LOG_PORT,
        proxySubnets,
        sandboxSubnets: proxySubnets,
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
      const heapMb = Math.max(32, Math.floor((o.memoryLimit / 1024 ** 2) * 0.6));
      const spec: ContainerSpec & { name: string } = {
        name: `isol8-${id}-proxy`,
        Image: image,
        Cmd: ["node", `--max-old-space-size=${heapMb}`, "-e", proxyScriptSource(), JSON.stringify(config)],
        User: "65534:65534",
        WorkingDir: "/",
        Env: ["NODE_ENV=production"],
        Labels: this.#labels(context, ROLES.proxy),
        HostConfig: {
          NetworkMode: egressNetwork,
          Init: true,
          ReadonlyRootfs: true,
          CapDrop: ["ALL"],
          SecurityOpt: ["no-new-privileges"],
          Memory: o.memoryLimit,
          MemorySwap: o.memoryLimit,
          NanoCpus: Math.round(o.cpuLimit * 1e9),
          PidsLimit: o.pidsLimit,
          IpcMode: "private",
          RestartPolicy: { Name: "on-failure", MaximumRetryCount: 5 },
          // The proxy's own diagnostics only (never a sandbox's output), capped.
          LogConfig: { Type: "json-file", Config: { "max-size": "1m", "max-file": "1" } },
        },
      };
      const container = await docker.createContainer(spec);
      step("created");
      // API 1.41 attaches one network at create: the internal one is connected before start.
      await docker.getNetwork(internalNetwork).connect({ Container: container.id, EndpointConfig: { Aliases: [PROXY_ALIAS] } });
      step("connected");
      await container.start();
      step("started");
      const inspected = await container.inspect();
      const proxyIp = inspected.NetworkSettings.Networks[internalNetwork]?.IPAddress;
      const egressIp = inspected.NetworkSettings.Networks[egressNetwork]?.IPAddress;
      if (!proxyIp || !egressIp) throw new Error(`${PLUGIN}: the proxy container has no address on ${!proxyIp ? internalNetwork : egressNetwork}`);
      const state: Started = { internalNetwork, egressNetwork, ownsEgress, proxyId: container.id, proxyIp, egressIp, token, transport: "http", driver: context.driver, clientIps: new Map() };
      state.transport = await this.#waitReady(state, context);
      step("ready");
      this.#state = state;
      context.log.debug("filtered network started", { ...this.info, steps });
    } catch (error) {
      await this.#teardown(context).catch((cleanup) => context.log.warn("cleaning up a failed filtered-network start failed", { error: String(cleanup) }));
      throw error;
    }
  }

  /** Polls the proxy's health endpoint: over HTTP from this process when it can reach the egress network, else by exec. */
  async #waitReady(state: Started, context: NetworkModeContext): Promise<"http" | "exec"> {
    const deadline = Date.now() + this.options.startTimeoutMs;
    const started = Date.now();
    let lastError = "";
    while (Date.now() < deadline) {
      try {
        await queryHttp(state, "/health", 1_000);
        return "http";
      } catch (error) {
        lastError = String(error);
      }
      const info = await context.driver.inspectContainer(state.proxyId);
      if (info && ((!info.State.Running && !info.State.Restarting) || info.RestartCount > 0)) {
        throw new Error(`${PLUGIN}: the proxy container exited (code ${info.State.ExitCode}): ${await proxyLogs(context.driver, state.proxyId)}`);
      }
      // Docker on another machine (DOCKER_HOST) or this process in a container: the egress
      // network is not reachable from here, so read through the proxy container instead. Only
      // once the proxy answers there, and HTTP still fails, is HTTP given up.
      if (Date.now() - started > 3_000) {
        try {
          await queryExec(state, "/health");
        } catch (error) {
          lastError = String(error);
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        try {
          await queryHttp(state, "/health", 3_000);
          return "http";
        } catch {
          return "exec";
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${PLUGIN}: the proxy did not answer within ${this.options.startTimeoutMs} ms (${lastError}): ${await proxyLogs(context.driver, state.proxyId)}`);
  }

  async #stop(context: NetworkModeContext): Promise<void> {
    this.#state = undefined;
    await this.#teardown(context);
  }

  /** Removes everything of this engine's filtered network, found by labels (so a half-made start is cleaned too). */
  async #teardown(context: NetworkModeContext): Promise<void> {
    const docker = context.driver.docker;
    const proxies = await context.driver.listContainers({ [CONTAINER_LABELS.engine]: context.engineId, [ROLE_LABEL]: ROLES.proxy });
    await Promise.all(proxies.map((c) => context.driver.removeContainer(c.Id)));
    const networks = await docker.listNetworks({ filters: { label: [`${CONTAINER_LABELS.engine}=${context.engineId}`, ROLE_LABEL] } });
    const failures: string[] = [];
    for (const network of networks) {
      try {
        await removeNetwork(docker, network.Id, context);
      } catch (error) {
        failures.push(`${network.Name}: ${(error as Error).message}`);
      }
    }
    if (failures.length) throw new Error(`${PLUGIN}: could not remove networks: ${failures.join("; ")}`);
  }

  async #logsFor(container: PooledContainer, window: { start: Date; end: Date }): Promise<NetworkLogEntry[]> {
    const s = this.#state;
    if (!s) return [];
    let ip = s.clientIps.get(container.id);
    if (!ip) {
      const info = await s.driver.inspectContainer(container.id);
      ip = info?.NetworkSettings?.Networks?.[s.internalNetwork]?.IPAddress;
      if (!ip) return [];
      if (s.clientIps.size > 4096) s.clientIps.clear();
      s.clientIps.set(container.id, ip);
    }
    const query = `/logs?client=${encodeURIComponent(ip)}&since=${window.start.getTime()}&until=${window.end.getTime()}&settle=${LOG_SETTLE_MS}`;
    const body = s.transport === "http" ? await queryHttp(s, query, 10_000) : await queryExec(s, query);
    const records = JSON.parse(body) as ProxyLogRecord[];
    return records.map(toLogEntry);
  }
}

export function toLogEntry(record: ProxyLogRecord): NetworkLogEntry {
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

function ipv4Subnets(info: Awaited<ReturnType<typeof inspectNetwork>>): string[] {
  return (info?.IPAM?.Config ?? []).map((c: { Subnet?: string }) => c.Subnet ?? "").filter((subnet: string) => /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(subnet));
}

async function inspectNetwork(docker: Docker, name: string) {
  try {
    return await docker.getNetwork(name).inspect();
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return undefined;
    throw error;
  }
}

/** Disconnects whatever is still attached (e.g. containers kept with `persist`), then removes the network; retries while Docker settles. */
async function removeNetwork(docker: Docker, id: string, context: NetworkModeContext): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const info = await inspectNetwork(docker, id);
    if (!info) return;
    const attached = Object.keys((info.Containers ?? {}) as Record<string, unknown>);
    if (attached.length) context.log.warn("disconnecting containers still on a filtered network", { network: info.Name, containers: attached });
    await Promise.all(attached.map((container) => docker.getNetwork(id).disconnect({ Container: container, Force: true }).catch(() => undefined)));
    try {
      await docker.getNetwork(id).remove();
      return;
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return;
      if (attempt >= 10) throw error;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

function queryHttp(state: Started, path: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: state.egressIp, port: LOG_PORT, path, method: "GET", headers: { authorization: `Bearer ${state.token}` }, timeout: timeoutMs, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString()) : reject(new Error(`log endpoint answered ${res.statusCode}`))));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`log endpoint ${state.egressIp}:${LOG_PORT} timed out`)));
    req.on("error", reject);
    req.end();
  });
}

const EXEC_QUERY =
  'const [url, token] = process.argv.slice(1); require("node:http").get(url, { headers: { authorization: "Bearer " + token } }, (r) => { const b = []; r.on("data", (c) => b.push(c)); r.on("end", () => { process.stdout.write(Buffer.concat(b)); process.exit(r.statusCode === 200 ? 0 : 1); }); }).on("error", (e) => { process.stderr.write(String(e)); process.exit(1); });';

async function queryExec(state: Started, path: string): Promise<string> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const { exitCode } = await state.driver.exec(state.proxyId, {
    argv: ["node", "-e", EXEC_QUERY, `http://${state.egressIp}:${LOG_PORT}${path}`, state.token],
    onOutput: (stream, chunk) => void (stream === "stdout" ? out : err).push(chunk),
  });
  if (exitCode !== 0) throw new Error(`log query in the proxy container failed (${exitCode}): ${Buffer.concat(err).toString().trim()}`);
  return Buffer.concat(out).toString();
}

async function proxyLogs(driver: DockerDriver, id: string): Promise<string> {
  try {
    const buffer = (await driver.docker.getContainer(id).logs({ stdout: true, stderr: true, tail: 20 })) as unknown as Buffer;
    return buffer.toString("utf8").replace(/[\x00-\x08]/g, "").trim().slice(-2000) || "(no output)";
  } catch {
    return "(logs unavailable)";
  }
}
