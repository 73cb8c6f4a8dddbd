/**
 * Where a request may go: the host rules and the port before any DNS query, then the resolved
 * address (static hosts, a short DNS cache, never a non-public address outside allowAddresses).
 *
 * Part of the proxy program, shipped as source text (see ../script.ts): a function here uses
 * only its parameters, JavaScript globals and the other functions of this file; it reaches
 * another file's functions through `lib`.
 */
import type * as Dns from "node:dns";
import type { CompiledRule } from "./rules.js";
import type { ProxyConfig, ProxyLib, Vetted } from "./types.js";

/**
 * The policy for one destination. `layers` are the compiled filters (the engine's, then its
 * bounds); `selfAddresses` are the proxy's own, never dialled.
 */
export function createVetter(
  config: ProxyConfig,
  dns: typeof Dns,
  lib: ProxyLib,
  layers: { whitelist: CompiledRule[]; blacklist: CompiledRule[] }[],
  selfAddresses: string[],
): (host: string, port: number) => Promise<Vetted> {
  // A short cache of answers: the vetted address is what gets dialled, so caching opens no
  // rebinding window; it only saves the resolver round trip (most of a proxied request's cost).
  const cache = new Map<string, { addresses: string[]; until: number }>();
  const resolve = (host: string): Promise<string[]> => {
    if (lib.parseIPv4(host) || lib.parseIPv6(host)) return Promise.resolve([host]);
    const pinned = config.hosts[host];
    if (pinned) return Promise.resolve(pinned);
    const hit = cache.get(host);
    if (hit && hit.until > Date.now()) return Promise.resolve(hit.addresses);
    return new Promise((done, fail) => {
      const timer = setTimeout(() => fail(new Error(`resolving ${host} timed out`)), config.connectTimeoutMs);
      // IPv4 only: the egress network has no IPv6 (and AAAA queries would only add latency).
      dns.lookup(host, { all: true, family: 4 }, (error, list) => {
        clearTimeout(timer);
        if (error) return fail(new Error(`could not resolve ${host}: ${error.code ?? error.message}`));
        const addresses = list.map((entry) => entry.address);
        if (config.dnsCacheMs > 0) {
          if (cache.size >= 1024) cache.clear();
          cache.set(host, { addresses, until: Date.now() + config.dnsCacheMs });
        }
        done(addresses);
      });
    });
  };

  return async (host, port) => {
    const decision = lib.evaluateLayers(host, layers);
    if (!decision.allowed) return { ok: false, status: 403, reason: decision.reason };
    if (!config.ports.includes(port)) return { ok: false, status: 403, reason: `port ${port} is not allowed (allowed ports: ${config.ports.join(", ")})` };
    let addresses: string[];
    try {
      addresses = await resolve(host);
    } catch (error) {
      return { ok: false, status: 502, reason: (error as Error).message };
    }
    const choice = lib.chooseAddress(host, addresses, { allowCidrs: config.allowAddresses, selfAddresses, sandboxCidrs: config.sandboxSubnets });
    return choice.ok ? choice : { ok: false, status: 403, reason: choice.reason };
  };
}
