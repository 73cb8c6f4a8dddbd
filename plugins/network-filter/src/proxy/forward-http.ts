/**
 * Plain HTTP through the proxy: an absolute http:// request target, vetted, forwarded to the
 * vetted address with the Host header rebuilt from the target and hop-by-hop headers dropped.
 *
 * Part of the proxy program, shipped as source text (see ../script.ts): a function here uses
 * only its parameters, JavaScript globals and the other functions of this file; it reaches
 * another file's functions through `ctx.lib`.
 */
import type * as Http from "node:http";
import type * as Net from "node:net";
import type { ProxyContext } from "./types.js";

/** The headers to send on (request or response): every header but the hop-by-hop ones and those the Connection header names. */
export function forwardHeaders(raw: string[]): Record<string, string | string[]> {
  const drop = new Set([
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
  ]);
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === "connection") for (const token of raw[i + 1]!.split(",")) drop.add(token.trim().toLowerCase());
  }
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (drop.has(name.toLowerCase())) continue;
    const existing = out[name];
    out[name] = existing === undefined ? raw[i + 1]! : [...(Array.isArray(existing) ? existing : [existing]), raw[i + 1]!];
  }
  return out;
}

/** The proxy server's "request" handler: one plain-HTTP request, recorded, refused or forwarded. */
export function forwardRequest(ctx: ProxyContext, req: Http.IncomingMessage, res: Http.ServerResponse): void {
  const { config, lib } = ctx;
  const time = Date.now();
  const client = lib.clientOf(req.socket);
  const method = req.method ?? "?";
  const target = lib.parseRequestTarget(method, req.url ?? "");
  const block = (status: number, host: string, path: string | null, reason: string) => {
    ctx.record({ time, client, method, host, path, action: "BLOCK", reason, status, durationMs: Date.now() - time, open: false });
    const body = lib.refusalText(`${method} ${host || req.url}`, reason);
    res.writeHead(status, {
      "content-type": "text/plain; charset=utf-8",
      "content-length": Buffer.byteLength(body),
      "x-isol8-blocked": "1",
      connection: "close",
    });
    res.end(body);
  };
  if (!target.ok) return block(target.status, target.host, target.path, target.reason);
  const hostValues: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === "host") hostValues.push(req.rawHeaders[i + 1]!);
  const hostProblem = lib.checkHostHeader(hostValues, target);
  if (hostProblem) return block(403, target.host, target.path, hostProblem);
  if (!ctx.enter(client)) return block(429, target.host, target.path, `more than ${config.maxConnectionsPerClient} concurrent requests from ${client}`);
  const entry = ctx.record({ time, client, method, host: target.host, path: target.path, action: "ALLOW", durationMs: 0, open: true });
  let done = false;
  const finish = (status?: number) => {
    if (done) return;
    done = true;
    ctx.leave(client);
    entry.durationMs = Date.now() - time;
    if (status !== undefined) entry.status = status;
    entry.open = false;
  };
  res.on("close", () => finish());
  ctx
    .vet(target.host, target.port)
    .then((vetted) => {
      if (!vetted.ok) {
        entry.action = vetted.status === 403 ? "BLOCK" : "ALLOW";
        if (vetted.status === 403) entry.reason = vetted.reason;
        finish(vetted.status);
        const body = lib.refusalText(`${method} http://${lib.hostHeaderFor(target.host, target.port)}${target.path}`, vetted.reason);
        res.writeHead(vetted.status, {
          "content-type": "text/plain; charset=utf-8",
          "content-length": Buffer.byteLength(body),
          "x-isol8-blocked": vetted.status === 403 ? "1" : "0",
          connection: "close",
        });
        res.end(body);
        return;
      }
      const headers = forwardHeaders(req.rawHeaders);
      headers.host = lib.hostHeaderFor(target.host, target.port);
      const upstream = ctx.mods.http.request({
        host: vetted.address,
        port: target.port,
        method,
        path: target.path!,
        headers,
        agent: ctx.agent,
        setHost: false,
      });
      const connectTimer = setTimeout(() => upstream.destroy(new Error(`connecting to ${vetted.address}:${target.port} timed out`)), config.connectTimeoutMs);
      upstream.on("socket", (socket: Net.Socket) => {
        if (!socket.connecting) clearTimeout(connectTimer);
        else socket.once("connect", () => clearTimeout(connectTimer));
      });
      upstream.on("response", (answer: Http.IncomingMessage) => {
        clearTimeout(connectTimer);
        entry.status = answer.statusCode;
        res.writeHead(answer.statusCode ?? 502, answer.statusMessage, forwardHeaders(answer.rawHeaders));
        answer.pipe(res);
        answer.on("error", () => res.destroy());
      });
      upstream.on("error", (error: Error) => {
        clearTimeout(connectTimer);
        if (!res.headersSent) {
          const body = lib.refusalText(
            `${method} http://${lib.hostHeaderFor(target.host, target.port)}${target.path}`,
            `upstream ${vetted.address}:${target.port}: ${error.message}`,
          );
          res.writeHead(502, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(body), connection: "close" });
          res.end(body);
        } else res.destroy();
        finish(502);
      });
      req.pipe(upstream);
      res.on("close", () => {
        if (!res.writableFinished) upstream.destroy();
      });
    })
    .catch(() => {
      // A throw while forwarding ends this request only: never the proxy every sandbox uses.
      if (!res.headersSent) res.writeHead(502, { connection: "close" });
      res.destroy();
      finish(502);
    });
}
