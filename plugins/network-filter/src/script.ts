import * as proxy from "./proxy-script.js";
import type { ProxyConfig } from "./proxy-script.js";

/** The functions shipped into the proxy container, in an order where each is declared before use at run time. */
const SHIPPED = [
  proxy.parseIPv4,
  proxy.parseIPv6,
  proxy.classifyIPv4,
  proxy.classifyIPv6,
  proxy.classifyAddress,
  proxy.parseCidr,
  proxy.inCidr,
  proxy.normalizeHost,
  proxy.parseAuthority,
  proxy.parseRequestTarget,
  proxy.hostHeaderFor,
  proxy.checkHostHeader,
  proxy.compileRules,
  proxy.evaluateRules,
  proxy.evaluateLayers,
  proxy.chooseAddress,
  proxy.parseClientHello,
  proxy.inspectTunnelStart,
  proxy.runProxy,
] as const;

/**
 * The proxy program: the functions of proxy-script.ts as source text, then a call of runProxy
 * with the configuration from argv[1] (`node -e <source> <config JSON>`). It is isol8's own code,
 * so argv is fine; the configuration carries the log token, visible only inside the proxy
 * container and to whoever can inspect containers (who controls Docker anyway).
 */
export function proxyScriptSource(): string {
  // Bundlers may rename a function (runProxy → runProxy2); call it by its run-time name.
  return [
    '"use strict";',
    ...SHIPPED.map((fn) => fn.toString()),
    `${proxy.runProxy.name}(JSON.parse(process.argv[1]), { http: require("node:http"), net: require("node:net"), dns: require("node:dns"), os: require("node:os"), crypto: require("node:crypto") })`,
    '  .then((p) => { process.stdout.write("isol8-proxy ready " + p.proxyAddress + ":" + p.proxyPort + " " + p.logAddress + ":" + p.logPort + "\\n"); const stop = () => p.close().then(() => process.exit(0)); process.on("SIGTERM", stop); process.on("SIGINT", stop); })',
    '  .catch((error) => { process.stderr.write("isol8-proxy failed: " + (error && error.stack || error) + "\\n"); process.exit(1); });',
    'process.on("uncaughtException", (error) => { process.stderr.write("isol8-proxy: " + (error && error.stack || error) + "\\n"); });',
    "",
  ].join("\n");
}

export type { ProxyConfig };
