/**
 * The proxy program as the text the proxy container runs (`node -e <source> <config JSON>`).
 *
 * The program is the functions of ./proxy/*.ts, shipped as their source text
 * (Function.prototype.toString) in one script: no module system exists there. So a function
 * uses only its parameters, JavaScript globals and the functions of its own file; it calls
 * another file's functions through `lib` (`lib.inCidr(...)`), the table this script builds.
 * No value imports in those files (type-only ones are erased), no module-level constants, no
 * classes or enums. The host imports the same functions (rule validation, unit tests), so the
 * engine and the proxy can never disagree about what a rule or an address class means.
 */
import * as addresses from "./proxy/addresses.js";
import * as clients from "./proxy/clients.js";
import * as destinations from "./proxy/destinations.js";
import * as forwardHttp from "./proxy/forward-http.js";
import * as forwardTunnel from "./proxy/forward-tunnel.js";
import * as replies from "./proxy/replies.js";
import * as requestLog from "./proxy/request-log.js";
import * as requests from "./proxy/requests.js";
import * as rules from "./proxy/rules.js";
import * as server from "./proxy/server.js";
import type { ProxyLib } from "./proxy/types.js";

/** Every function of the proxy program, by the name its parts call it by: every export of ./proxy/*.ts. */
export const PROXY_LIB: ProxyLib = {
  ...addresses,
  ...clients,
  ...destinations,
  ...forwardHttp,
  ...forwardTunnel,
  ...replies,
  ...requestLog,
  ...requests,
  ...rules,
  ...server,
};

/**
 * The proxy program: every function of PROXY_LIB as source text, the `lib` table of them, then
 * startProxy with the configuration from argv[1]. It is isol8's own code, so argv is fine; the
 * configuration carries the log token, visible only inside the proxy container and to whoever
 * can inspect containers (who controls Docker anyway).
 */
export function proxyScriptSource(): string {
  const functions = Object.entries(PROXY_LIB) as [string, (...args: never[]) => unknown][];
  // Bundlers may rename a function (inCidr → inCidr2): the text declares it, and `lib` points at it, by its run-time name.
  return [
    '"use strict";',
    ...functions.map(([, fn]) => fn.toString()),
    `const lib = { ${functions.map(([name, fn]) => `${name}: ${fn.name}`).join(", ")} };`,
    `${PROXY_LIB.startProxy.name}(JSON.parse(process.argv[1]), { http: require("node:http"), net: require("node:net"), dns: require("node:dns"), os: require("node:os"), crypto: require("node:crypto") }, lib)`,
    '  .then((p) => { process.stdout.write("isol8-proxy ready " + p.proxyAddress + ":" + p.proxyPort + " " + p.logAddress + ":" + p.logPort + "\\n"); const stop = () => p.close().then(() => process.exit(0)); process.on("SIGTERM", stop); process.on("SIGINT", stop); })',
    '  .catch((error) => { process.stderr.write("isol8-proxy failed: " + (error && error.stack || error) + "\\n"); process.exit(1); });',
    'process.on("uncaughtException", (error) => { process.stderr.write("isol8-proxy: " + (error && error.stack || error) + "\\n"); });',
    "",
  ].join("\n");
}
