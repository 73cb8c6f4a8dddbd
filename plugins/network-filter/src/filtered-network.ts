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
  type PreparedSandbox,
  type SpecContext,
} from "@isol8/kit";
import type { FilteredNetworkInfo, ResolvedNetworkFilterOptions } from "./index.js";
import { compileRules, parseCidr, type ProxyConfig, type ProxyLogRecord } from "./proxy-script.js";
import { proxyScriptSource } from "./script.js";

type Docker = DockerDriver["docker"];

/** The label that tells the parts of a filtered network apart (cleanup finds them by engine id + role). */
const ROLE_LABEL = "isol8.role";
const ROLES = { proxy: "network-filter-proxy", sandbox: "network-filter-sandbox", egress: "network-filter-egress" } as const;
const PLUGIN = "isol8:network-filter";
const PROXY_PORT = 3128;
const LOG_PORT = 3129;
/** Each sandbox's own network: a /29 (network, gateway, proxy, sandbox, three spare) of sandboxRange. */
const SANDBOX_PREFIX = 29;
/** How many random /29s prepare() tries when Docker says one overlaps a network of another engine. */
const ALLOCATION_ATTEMPTS = 32;
/** How long a log query waits for requests still in flight when the program ended. */
const LOG_SETTLE_MS = 500;

interface Started {
  egressNetwork: string;
  ownsEgress: boolean;
  proxyId: string;
  egressIp: string;
  token: string;
  transport: "http" | "exec";
  driver: DockerDriver;
  /** container id → its address on its own network. */
  clientIps: Map<string, string>;
  /** Slots (the /29s of sandboxRange, by index) this engine's sandbox networks hold. */
  slots: Set<number>;
  /** Sandbox networks whose sandbox is gone, the proxy still attached: the next sandboxes' (up to spareNetworks). */
  spares: SandboxNetwork[];
  context: NetworkModeContext;
}

interface SandboxNetwork {
  slot: number;
  name: string;
  proxyIp: string;
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
      sandboxNetworks: [...s.slots].map((slot) => sandboxNetworkName(s.context.engineId, slot)),
      egressNetwork: s.egressNetwork,
      ownsEgressNetwork: s.ownsEgress,
      proxyContainerId: s.proxyId,
      egressAddress: s.egressIp,
      logTransport: s.transport,
    };
  }

  definition(): NetworkModeDefinition {
    return {
      shapeSpec: (spec) => this.#shapeSpec(spec),
      prepare: (spec, context) => this.#prepare(spec, context),
      start: (context) => this.#start(context),
      stop: (context) => this.#stop(context),
      logsFor: (container, window) => this.#logsFor(container, window),
    };
  }

  /**
   * No network until prepare() gives the sandbox its own: a spec that skipped prepare() runs with
   * loopback only (fails closed). No capability is added.
   */
  #shapeSpec(spec: ContainerSpec): ContainerSpec {
    if (!this.#state) throw new Error(`${PLUGIN}: network mode "filtered" was not started (engine.start() starts it)`);
    const { NetworkDisabled: _ignored, ...rest } = spec;
    return { ...rest, HostConfig: { ...spec.HostConfig, NetworkMode: "none" } };
  }

  /**
   * One sandbox's own network: internal, no address on the bridge (no host), a /29 of
   * sandboxRange holding only the proxy (.2) and the sandbox. Sandboxes never share a network, so
   * none has a path to another; the proxy is their only peer. Released when the container goes.
   */
  async #prepare(spec: ContainerSpec, _context: SpecContext): Promise<PreparedSandbox> {
    const s = this.#state;
    if (!s) throw new Error(`${PLUGIN}: network mode "filtered" was not started (engine.start() starts it)`);
    const docker = s.driver.docker;
    let network = s.spares.pop();
    if (!network) {
      network = await this.#createSandboxNetwork(s);
      try {
        await docker.getNetwork(network.name).connect({ Container: s.proxyId, EndpointConfig: { IPAMConfig: { IPv4Address: network.proxyIp } } });
      } catch (error) {
        await this.#releaseSandboxNetwork(s, network.slot);
        throw error;
      }
    }
    const { name, proxyIp } = network;
    const taken = network;
    const proxy = `http://${proxyIp}:${PROXY_PORT}`;
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
    let released = false;
    return {
      spec: {
        ...spec,
        Env: [...(spec.Env ?? []).filter((e) => !names.has(e.slice(0, e.indexOf("=")))), ...env],
        HostConfig: { ...spec.HostConfig, NetworkMode: name },
      },
      release: async () => {
        if (released) return;
        released = true;
        // Kept for the next sandbox while there is room, once it holds nothing but the proxy.
        if (this.#state === s && s.spares.length < this.options.spareNetworks && (await this.#holdsOnlyProxy(s, name))) {
          s.spares.push(taken);
          return;
        }
        await this.#releaseSandboxNetwork(s, taken.slot);
      },
    };
  }

  /** Whether a sandbox network has no endpoint but the proxy's (its sandbox is gone). */
  async #holdsOnlyProxy(s: Started, name: string): Promise<boolean> {
    const info = await inspectNetwork(s.driver.docker, name).catch(() => undefined);
    const attached = Object.keys((info?.Containers ?? {}) as Record<string, unknown>);
    return attached.length === 1 && attached[0] === s.proxyId;
  }

  /** Creates a sandbox network on a free /29 of sandboxRange: random slots, skipping those Docker says overlap another network. */
  async #createSandboxNetwork(s: Started): Promise<SandboxNetwork> {
    const range = parseCidr(this.options.sandboxRange)!;
    const count = 2 ** (SANDBOX_PREFIX - range.prefix);
    let lastError = "";
    for (let attempt = 0; attempt < ALLOCATION_ATTEMPTS; attempt++) {
      const slot = Math.floor(Math.random() * count);
      if (s.slots.has(slot)) continue;
      s.slots.add(slot);
      const subnet = slotSubnet(range.bytes, range.prefix, slot);
      const name = sandboxNetworkName(s.context.engineId, slot);
      try {
        await s.driver.docker.createNetwork({
          Name: name,
          Driver: "bridge",
          Internal: true,
          EnableIPv6: false,
          CheckDuplicate: true,
          // No address on the bridge: the host (and every service it runs) is unreachable from the sandbox.
          Options: { "com.docker.network.bridge.inhibit_ipv4": "true" },
          Labels: this.#labels(s.context, ROLES.sandbox),
          IPAM: { Driver: "default", Config: [{ Subnet: subnet.cidr }] },
        });
        return { slot, name, proxyIp: subnet.proxyIp };
      } catch (error) {
        s.slots.delete(slot);
        lastError = (error as Error).message;
        // Another engine (or anything else) holds an overlapping subnet, or the name: try another slot.
        if (!/overlap|already exists/i.test(lastError)) throw error;
      }
    }
    throw new Error(
      `${PLUGIN}: no free /${SANDBOX_PREFIX} in sandboxRange ${this.options.sandboxRange} after ${ALLOCATION_ATTEMPTS} tries (${lastError}); give a larger range`,
    );
  }

  /** Disconnects the proxy from a sandbox network and removes it; never throws (stop() removes what is left). */
  async #releaseSandboxNetwork(s: Started, slot: number): Promise<void> {
    const name = sandboxNetworkName(s.context.engineId, slot);
    try {
      await s.driver.docker
        .getNetwork(name)
        .disconnect({ Container: s.proxyId, Force: true })
        .catch((error: { statusCode?: number }) => {
          if (error.statusCode !== 404 && error.statusCode !== 403) throw error;
        });
      await removeNetwork(s.driver.docker, name, s.context);
      s.slots.delete(slot);
    } catch (error) {
      s.context.log.warn("removing a sandbox network failed; engine.stop() removes it", { network: name, error: String(error) });
    }
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
    const image = this.#image();
    if (!(await context.driver.imageExists(image))) throw new ImageMissingError("node (the filtered network's proxy)", image);

    const docker = context.driver.docker;
    const o = this.options;
    const id = context.engineId;
    const t0 = performance.now();
    const steps: Record<string, number> = {};
    const step = (name: string) => (steps[name] = Math.round(performance.now() - t0));
    try {
      let egressNetwork: string;
      const ownsEgress = !o.egressNetwork;
      if (o.egressNetwork) {
        egressNetwork = o.egressNetwork;
        const info = await inspectNetwork(docker, egressNetwork);
        if (!info) throw new InvalidOptionsError(`${PLUGIN}: egressNetwork "${egressNetwork}" does not exist`, { plugin: PLUGIN });
        if (info.Internal)
          throw new InvalidOptionsError(`${PLUGIN}: egressNetwork "${egressNetwork}" is an internal network: the proxy could not reach anything`, {
            plugin: PLUGIN,
          });
      } else {
        egressNetwork = `isol8-${id}-egress`;
        await docker.createNetwork({
          Name: egressNetwork,
          Driver: "bridge",
          Internal: false,
          EnableIPv6: false,
          CheckDuplicate: true,
          Labels: this.#labels(context, ROLES.egress),
        });
      }
      step("networks");
      const logSubnets = ipv4Subnets(await inspectNetwork(docker, egressNetwork));
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
          // The proxy sits on every sandbox's network: it must never route between them (the
          // sandboxes have no route to use it, but nothing should depend on that alone).
          Sysctls: { "net.ipv4.ip_forward": "0", "net.ipv6.conf.all.forwarding": "0" },
          RestartPolicy: { Name: "on-failure", MaximumRetryCount: 5 },
          // The proxy's own diagnostics only (never a sandbox's output), capped.
          LogConfig: { Type: "json-file", Config: { "max-size": "1m", "max-file": "1" } },
        },
      };
      const container = await docker.createContainer(spec);
      step("created");
      await container.start();
      step("started");
      const inspected = await container.inspect();
      const egressIp = inspected.NetworkSettings.Networks[egressNetwork]?.IPAddress;
      if (!egressIp) throw new Error(`${PLUGIN}: the proxy container has no address on ${egressNetwork}`);
      const state: Started = {
        egressNetwork,
        ownsEgress,
        proxyId: container.id,
        egressIp,
        token,
        transport: "http",
        driver: context.driver,
        clientIps: new Map(),
        slots: new Set(),
        spares: [],
        context,
      };
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
    throw new Error(
      `${PLUGIN}: the proxy did not answer within ${this.options.startTimeoutMs} ms (${lastError}): ${await proxyLogs(context.driver, state.proxyId)}`,
    );
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
      const own = `isol8-${s.context.engineId}-sandbox-`;
      ip = Object.entries(info?.NetworkSettings?.Networks ?? {}).find(([name]) => name.startsWith(own))?.[1]?.IPAddress;
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

/** The name of an engine's sandbox network in a slot. */
function sandboxNetworkName(engineId: string, slot: number): string {
  return `isol8-${engineId}-sandbox-${slot}`;
}

/** The slot-th /29 of a range: its CIDR and the proxy's address in it (.2; .1 is the unused gateway). */
function slotSubnet(base: number[], prefix: number, slot: number): { cidr: string; proxyIp: string } {
  const start = (((base[0]! << 24) | (base[1]! << 16) | (base[2]! << 8) | base[3]!) >>> 0) & (prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0);
  const network = (start + slot * 2 ** (32 - SANDBOX_PREFIX)) >>> 0;
  const text = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
  return { cidr: `${text(network)}/${SANDBOX_PREFIX}`, proxyIp: text(network + 2) };
}

/** Whether two IPv4 CIDRs share an address. */
function cidrsOverlap(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  if (!x || !y || x.bytes.length !== 4 || y.bytes.length !== 4) return false;
  const prefix = Math.min(x.prefix, y.prefix);
  const value = (bytes: number[]) => ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  return (value(x.bytes) & mask) >>> 0 === (value(y.bytes) & mask) >>> 0;
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
    await Promise.all(
      attached.map((container) =>
        docker
          .getNetwork(id)
          .disconnect({ Container: container, Force: true })
          .catch(() => undefined),
      ),
    );
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
    const req = request(
      { host: state.egressIp, port: LOG_PORT, path, method: "GET", headers: { authorization: `Bearer ${state.token}` }, timeout: timeoutMs, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString()) : reject(new Error(`log endpoint answered ${res.statusCode}`)),
        );
        res.on("error", reject);
      },
    );
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
    return (
      buffer
        .toString("utf8")
        .replace(/[\x00-\x08]/g, "")
        .trim()
        .slice(-2000) || "(no output)"
    );
  } catch {
    return "(logs unavailable)";
  }
}
