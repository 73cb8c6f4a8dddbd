/**
 * HTTPS (and any http:// a client tunnels) through the proxy: a CONNECT to a vetted host:port,
 * spliced to the vetted address once its first bytes are a TLS ClientHello or an HTTP/1.x
 * request for that host (inspectTunnelStart).
 *
 * Part of the proxy program, shipped as source text (see ../script.ts): a function here uses
 * only its parameters, JavaScript globals and the other functions of this file; it reaches
 * another file's functions through `ctx.lib`.
 */
import type * as Http from "node:http";
import type * as Net from "node:net";
import type { ProxyContext } from "./types.js";

/** The proxy server's "connect" handler: one CONNECT tunnel, recorded, refused or spliced. */
export function openTunnel(ctx: ProxyContext, req: Http.IncomingMessage, socket: Net.Socket, head: Buffer): void {
  const { config, lib } = ctx;
  const statusText = (status: number) => ctx.mods.http.STATUS_CODES[status] ?? "Error";
  const time = Date.now();
  const client = lib.clientOf(socket);
  socket.on("error", () => undefined);
  const target = lib.parseRequestTarget("CONNECT", req.url ?? "");
  const refuse = (status: number, host: string, reason: string, action: "BLOCK" | "ALLOW") => {
    ctx.record({
      time,
      client,
      method: "CONNECT",
      host,
      path: null,
      action,
      ...(action === "BLOCK" ? { reason } : {}),
      status,
      durationMs: Date.now() - time,
      open: false,
    });
    socket.end(lib.rawReply(status, statusText(status), lib.refusalText(`CONNECT ${host || req.url}`, reason)));
  };
  if (!target.ok) return refuse(target.status, target.host, target.reason, "BLOCK");
  if (!ctx.enter(client)) return refuse(429, target.host, `more than ${config.maxConnectionsPerClient} concurrent requests from ${client}`, "BLOCK");
  const entry = ctx.record({ time, client, method: "CONNECT", host: target.host, path: null, action: "ALLOW", durationMs: 0, open: true });
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    ctx.leave(client);
    entry.durationMs = Date.now() - time;
    entry.open = false;
  };
  socket.on("close", finish);
  // A client that hangs up before the tunnel is spliced would otherwise stay half-open.
  const onEarlyEnd = () => socket.destroy();
  socket.on("end", onEarlyEnd);
  ctx
    .vet(target.host, target.port)
    .then((vetted) => {
      if (socket.destroyed) return finish();
      if (!vetted.ok) {
        if (vetted.status === 403) {
          entry.action = "BLOCK";
          entry.reason = vetted.reason;
        }
        entry.status = vetted.status;
        finish();
        socket.end(
          lib.rawReply(vetted.status, statusText(vetted.status), lib.refusalText(`CONNECT ${lib.hostHeaderFor(target.host, target.port)}`, vetted.reason)),
        );
        return;
      }
      const upstream = ctx.mods.net.connect({ host: vetted.address, port: target.port });
      upstream.pause();
      const connectTimer = setTimeout(() => upstream.destroy(new Error(`connecting to ${vetted.address}:${target.port} timed out`)), config.connectTimeoutMs);
      let established = false;
      upstream.on("error", (error: Error) => {
        clearTimeout(connectTimer);
        if (!established) {
          entry.status = 502;
          finish();
          socket.end(
            lib.rawReply(
              502,
              "Bad Gateway",
              lib.refusalText(`CONNECT ${lib.hostHeaderFor(target.host, target.port)}`, `upstream ${vetted.address}:${target.port}: ${error.message}`),
            ),
          );
        } else socket.destroy();
      });
      socket.on("close", () => upstream.destroy());
      upstream.on("close", () => socket.destroy());
      upstream.once("connect", () => {
        clearTimeout(connectTimer);
        established = true;
        entry.status = 200;
        socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
        const splice = (first: Buffer) => {
          socket.removeListener("end", onEarlyEnd);
          if (first.length) upstream.write(first);
          socket.pipe(upstream);
          upstream.pipe(socket);
          upstream.resume();
          socket.resume();
          socket.setTimeout(config.idleTimeoutMs, () => socket.destroy());
        };
        if (!config.inspectTunnels) return splice(head);
        // Peek at the first bytes before any goes upstream (and hold the server's bytes meanwhile).
        let buffered = head;
        const reject = (reason: string) => {
          clearTimeout(peekTimer);
          socket.removeListener("data", onData);
          entry.action = "BLOCK";
          entry.reason = reason;
          upstream.destroy();
          socket.destroy();
        };
        const peekTimer = setTimeout(() => reject("nothing (no TLS ClientHello, no HTTP request) within 10 s"), 10_000);
        const check = () => {
          const verdict = lib.inspectTunnelStart(buffered, target);
          if (verdict.status === "more") return;
          if (verdict.status === "block") return reject(verdict.reason);
          clearTimeout(peekTimer);
          socket.removeListener("data", onData);
          socket.pause();
          splice(buffered);
        };
        const onData = (chunk: Buffer) => {
          buffered = Buffer.concat([buffered, chunk]);
          check();
        };
        socket.on("data", onData);
        if (buffered.length) check();
      });
    })
    .catch(() => {
      // A throw while opening the tunnel ends this tunnel only: never the proxy every sandbox uses.
      entry.status = 502;
      finish();
      socket.destroy();
    });
}
