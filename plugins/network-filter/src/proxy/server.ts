/**
 * The proxy program's entry: the proxy server (on every address, serving only connections that
 * arrive on a sandbox network) and the log endpoint (on the egress address), wired to the parts.
 *
 * Part of the proxy program, shipped as source text (see ../script.ts): a function here uses
 * only its parameters, JavaScript globals and the other functions of this file; it reaches
 * another file's functions through `lib`.
 */
import type * as Http from "node:http";
import type * as Net from "node:net";
import type { ProxyConfig, ProxyContext, ProxyLib, ProxyModules, RunningProxy } from "./types.js";

/**
 * Starts the proxy (port config.proxyPort) and its log endpoint (config.logPort on the address
 * inside config.logSubnets, or every address with registeredClients; GET /health, GET
 * /logs?client=&since=&until=&settle=, POST /clients?add=IP|remove=IP; bearer token). Resolves
 * once both listen.
 */
export function startProxy(config: ProxyConfig, mods: ProxyModules, lib: ProxyLib): Promise<RunningProxy> {
  const { http, os } = mods;
  const layers = [
    { whitelist: lib.compileRules(config.whitelist, "whitelist"), blacklist: lib.compileRules(config.blacklist, "blacklist") },
    ...config.bounds.map((bound, i) => ({
      whitelist: lib.compileRules(bound.whitelist, `bounds[${i}].whitelist`),
      blacklist: lib.compileRules(bound.blacklist, `bounds[${i}].blacklist`),
    })),
  ];

  const addressIn = (subnets: string[]): string | null => {
    for (const list of Object.values(os.networkInterfaces())) {
      for (const info of list ?? []) {
        if (subnets.some((cidr) => lib.inCidr(info.address, cidr))) return info.address;
      }
    }
    return null;
  };
  // Sandbox networks are connected to the proxy while it runs (one per sandbox), so it listens on
  // every address and serves only connections that arrived on an address in proxySubnets.
  const proxyAddress = "0.0.0.0";
  const logAddress = config.registeredClients ? "0.0.0.0" : addressIn(config.logSubnets);
  if (!logAddress) {
    return Promise.reject(new Error(`no interface in ${config.logSubnets.join(",")}: ${JSON.stringify(os.networkInterfaces())}`));
  }

  // Never dialled: the proxy's own addresses (every one when it listens on all).
  const selfAddresses = config.registeredClients
    ? Object.values(os.networkInterfaces()).flatMap((list) => (list ?? []).map((info) => info.address))
    : [logAddress];
  /** The peers the engine registered (registeredClients): its sandboxes' addresses. */
  const clients = new Set<string>();
  const log = lib.createRequestLog(config.ringSize);
  const limit = lib.createClientLimit(config.maxConnectionsPerClient);
  const ctx: ProxyContext = {
    config,
    mods,
    lib,
    record: (entry) => log.record(entry),
    enter: (client) => limit.enter(client),
    leave: (client) => limit.leave(client),
    vet: lib.createVetter(config, mods.dns, lib, layers, selfAddresses),
    agent: new http.Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 16, timeout: config.idleTimeoutMs }),
  };

  const server = http.createServer({
    requireHostHeader: false,
    headersTimeout: 30_000,
    requestTimeout: 300_000,
    keepAliveTimeout: 5_000,
    maxHeaderSize: 32 * 1024,
  });

  server.on("connection", (socket: Net.Socket) => {
    if (config.registeredClients) {
      if (!clients.has(lib.clientOf(socket))) socket.destroy();
      return;
    }
    const local = (socket.localAddress ?? "").replace(/^::ffff:/, "");
    if (!config.proxySubnets.some((cidr) => lib.inCidr(local, cidr))) socket.destroy();
  });
  server.on("request", (req: Http.IncomingMessage, res: Http.ServerResponse) => lib.forwardRequest(ctx, req, res));
  server.on("connect", (req: Http.IncomingMessage, socket: Net.Socket, head: Buffer) => lib.openTunnel(ctx, req, socket, head));

  server.on("upgrade", (req: Http.IncomingMessage, socket: Net.Socket) => {
    const target = lib.parseRequestTarget(req.method ?? "GET", req.url ?? "");
    const reason = "protocol upgrades (WebSocket over http://, h2c) are not supported: HTTP and HTTPS only (wss:// works through CONNECT)";
    ctx.record({
      time: Date.now(),
      client: lib.clientOf(socket),
      method: req.method ?? "?",
      host: target.host,
      path: target.ok ? target.path : null,
      action: "BLOCK",
      reason,
      status: 403,
      durationMs: 0,
      open: false,
    });
    socket.on("error", () => undefined);
    socket.end(lib.rawReply(403, "Forbidden", lib.refusalText(`${req.method} ${req.url}`, reason)));
  });

  server.on("clientError", (error: NodeJS.ErrnoException, socket: Net.Socket) => {
    socket.on("error", () => undefined);
    if (!error.code?.startsWith("HPE_") || !socket.writable) return socket.destroy();
    const reason = `not a valid HTTP request (${error.code}): HTTP and HTTPS only`;
    ctx.record({
      time: Date.now(),
      client: lib.clientOf(socket),
      method: "-",
      host: "",
      path: null,
      action: "BLOCK",
      reason,
      status: 400,
      durationMs: 0,
      open: false,
    });
    socket.end(lib.rawReply(400, "Bad Request", lib.refusalText("request", reason)));
  });

  const logServer = http.createServer(lib.createLogEndpoint(config, mods.crypto, log, { proxyAddress, logAddress }, clients));

  const listen = (srv: Http.Server, port: number, address: string) =>
    new Promise<void>((done, fail) => {
      srv.once("error", fail);
      srv.listen(port, address, () => {
        srv.removeListener("error", fail);
        done();
      });
    });
  return Promise.all([listen(server, config.proxyPort, proxyAddress), listen(logServer, config.logPort, logAddress)]).then(() => ({
    proxyAddress,
    proxyPort: (server.address() as Net.AddressInfo).port,
    logAddress,
    logPort: (logServer.address() as Net.AddressInfo).port,
    close: () =>
      new Promise<void>((done) => {
        ctx.agent.destroy();
        server.closeAllConnections();
        logServer.closeAllConnections();
        let pending = 2;
        const one = () => --pending === 0 && done();
        server.close(one);
        logServer.close(one);
      }),
  }));
}
