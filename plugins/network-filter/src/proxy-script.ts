/**
 * The egress proxy of network mode "filtered" as the host uses it: its pure logic (option
 * validation, tests) and runProxy, the program run in this process (tests). The program itself
 * lives in ./proxy/ (one file per part) and is shipped into the proxy container by ./script.ts.
 */
import { PROXY_LIB } from "./script.js";
import type { ProxyConfig, ProxyModules, RunningProxy } from "./proxy/types.js";

export { chooseAddress, classifyAddress, inCidr, parseCidr, parseIPv4, parseIPv6 } from "./proxy/addresses.js";
export { checkHostHeader, inspectTunnelStart, normalizeHost, parseAuthority, parseClientHello, parseRequestTarget } from "./proxy/requests.js";
export { compileRules, evaluateLayers, evaluateRules } from "./proxy/rules.js";
export type { ProxyConfig, ProxyLogRecord, ProxyModules, RunningProxy } from "./proxy/types.js";

/** Starts the proxy program in this process, as the container runs it (the same functions, the same `lib`). */
export function runProxy(config: ProxyConfig, mods: ProxyModules): Promise<RunningProxy> {
  return PROXY_LIB.startProxy(config, mods, PROXY_LIB);
}
