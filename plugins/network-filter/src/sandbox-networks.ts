/**
 * Each sandbox's own network: internal, no address for the host, a /29 of sandboxRange holding
 * only the proxy (.2) and that sandbox. Sandboxes never share a network, so none has a path to
 * another; the proxy is their only peer. Networks whose sandbox is gone are kept as spares (the
 * proxy still attached) for the next sandboxes, so one is rarely made on an execution's path.
 */
import type { NetworkModeContext, SandboxDriver } from "@isol8/kit";
import { PLUGIN, ROLES, partLabels, sandboxNetworkName } from "./names.js";
import { parseCidr } from "./proxy/addresses.js";

/** Each sandbox's network is a /29: network, gateway (unused), proxy, sandbox, three spare addresses. */
const SANDBOX_PREFIX = 29;
/** How many random /29s a new network tries when the driver says one overlaps a network of another engine. */
const ALLOCATION_ATTEMPTS = 32;

export interface SandboxNetwork {
  slot: number;
  name: string;
  /** The proxy's address on it: the sandbox's HTTP(S)_PROXY. */
  proxyIp: string;
}

/** One engine's sandbox networks, cut from `sandboxRange`. */
export class SandboxNetworks {
  /** Slots (the /29s of sandboxRange, by index) this engine's networks hold. */
  readonly #slots = new Set<number>();
  /** Networks whose sandbox is gone, the proxy still attached: the next sandboxes' (up to spareNetworks). */
  readonly #spares: SandboxNetwork[] = [];
  #closed = false;

  constructor(
    private readonly context: NetworkModeContext,
    private readonly proxyId: string,
    private readonly options: { sandboxRange: string; spareNetworks: number },
  ) {}

  /** The names of the sandbox networks that exist now (spares included). */
  get names(): string[] {
    return [...this.#slots].map((slot) => sandboxNetworkName(this.context.engineId, slot));
  }

  /** A network for one sandbox, the proxy attached: a spare, else a new one. */
  async take(): Promise<SandboxNetwork> {
    const spare = this.#spares.pop();
    if (spare) return spare;
    const network = await this.#create();
    try {
      await this.context.driver.networks.connect(network.name, this.proxyId, network.proxyIp);
    } catch (error) {
      await this.#remove(network.slot);
      throw error;
    }
    return network;
  }

  /**
   * Takes back a sandbox's network once its sandbox is removed: kept as a spare while there is
   * room and it holds nothing but the proxy, else removed. Never throws (stop() removes what is left).
   */
  async give(network: SandboxNetwork): Promise<void> {
    if (!this.#closed && this.#spares.length < this.options.spareNetworks && (await this.#holdsOnlyProxy(network.name))) {
      this.#spares.push(network);
      return;
    }
    await this.#remove(network.slot);
  }

  /** No more spares are kept: the engine is stopping (and removes every network by its labels). */
  close(): void {
    this.#closed = true;
  }

  /** Whether a sandbox network has no endpoint but the proxy's (its sandbox is gone). */
  async #holdsOnlyProxy(name: string): Promise<boolean> {
    const attached = await this.context.driver.networks.attached(name).catch(() => undefined);
    return attached?.length === 1 && attached[0] === this.proxyId;
  }

  /** Creates a network on a free /29 of sandboxRange: random slots, skipping those the driver says overlap another network. */
  async #create(): Promise<SandboxNetwork> {
    const range = parseCidr(this.options.sandboxRange)!;
    const count = 2 ** (SANDBOX_PREFIX - range.prefix);
    let lastError = "";
    for (let attempt = 0; attempt < ALLOCATION_ATTEMPTS; attempt++) {
      const slot = Math.floor(Math.random() * count);
      if (this.#slots.has(slot)) continue;
      this.#slots.add(slot);
      const subnet = slotSubnet(range.bytes, range.prefix, slot);
      const name = sandboxNetworkName(this.context.engineId, slot);
      try {
        // Internal: no route out, and (the driver's part of the contract) no address for the host on it.
        await this.context.driver.networks.create({ name, labels: partLabels(this.context, ROLES.sandbox), internal: true, subnet: subnet.cidr });
        return { slot, name, proxyIp: subnet.proxyIp };
      } catch (error) {
        this.#slots.delete(slot);
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
  async #remove(slot: number): Promise<void> {
    const { driver, engineId, log } = this.context;
    const name = sandboxNetworkName(engineId, slot);
    try {
      await driver.networks.disconnect(name, this.proxyId);
      await removeNetwork(driver, name, this.context);
      this.#slots.delete(slot);
    } catch (error) {
      log.warn("removing a sandbox network failed; engine.stop() removes it", { network: name, error: String(error) });
    }
  }
}

/** Disconnects whatever is still attached (e.g. containers kept with `persist`), then removes the network; retries while the backend settles. */
export async function removeNetwork(driver: SandboxDriver, name: string, context: Pick<NetworkModeContext, "log">): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const attached = await driver.networks.attached(name);
    if (!attached) return;
    if (attached.length) context.log.warn("disconnecting containers still on a filtered network", { network: name, containers: attached });
    await Promise.all(attached.map((id) => driver.networks.disconnect(name, id).catch(() => undefined)));
    try {
      await driver.networks.remove(name);
      return;
    } catch (error) {
      if (attempt >= 10) throw error;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** The slot-th /29 of a range: its CIDR and the proxy's address in it (.2; .1 is the unused gateway). */
function slotSubnet(base: number[], prefix: number, slot: number): { cidr: string; proxyIp: string } {
  const start = (((base[0]! << 24) | (base[1]! << 16) | (base[2]! << 8) | base[3]!) >>> 0) & (prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0);
  const network = (start + slot * 2 ** (32 - SANDBOX_PREFIX)) >>> 0;
  const text = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
  return { cidr: `${text(network)}/${SANDBOX_PREFIX}`, proxyIp: text(network + 2) };
}

/** Whether two IPv4 CIDRs share an address. */
export function cidrsOverlap(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  if (!x || !y || x.bytes.length !== 4 || y.bytes.length !== 4) return false;
  const prefix = Math.min(x.prefix, y.prefix);
  const value = (bytes: number[]) => ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  return (value(x.bytes) & mask) >>> 0 === (value(y.bytes) & mask) >>> 0;
}
