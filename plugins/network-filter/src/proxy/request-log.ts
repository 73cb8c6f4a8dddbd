/**
 * The proxy's request records: a bounded ring, and the log endpoint the engine reads them from
 * (GET /health and GET /logs?client=&since=&until=&settle=, bearer token).
 *
 * Part of the proxy program, shipped as source text (see ../script.ts): a function here uses
 * only its parameters, JavaScript globals and the other functions of this file.
 */
import type * as Http from "node:http";
import type * as Crypto from "node:crypto";
import type { ProxyConfig, ProxyLogRecord } from "./types.js";

export interface RequestLog {
  /** Stores a record (the oldest goes when the ring is full); returns it, to be completed while its request is open. */
  record(entry: ProxyLogRecord): ProxyLogRecord;
  /** One client's records that arrived between two instants (ms since the epoch), oldest first. */
  select(client: string, since: number, until: number): ProxyLogRecord[];
}

/** A ring of `size` records: memory stays flat whatever the sandboxes do. */
export function createRequestLog(size: number): RequestLog {
  const ring = new Array<ProxyLogRecord | undefined>(Math.max(1, size));
  let next = 0;
  return {
    record: (entry) => {
      ring[next] = entry;
      next = (next + 1) % ring.length;
      return entry;
    },
    select: (client, since, until) => {
      const list: ProxyLogRecord[] = [];
      for (let i = 0; i < ring.length; i++) {
        const entry = ring[(next + i) % ring.length];
        if (entry && entry.client === client && entry.time >= since && entry.time <= until) list.push(entry);
      }
      return list;
    },
  };
}

/**
 * The log endpoint's request handler: answers only the bearer token of `config.token`. A query
 * waits (up to `settle` ms, at most 5 s) for its client's requests still in flight, so a tunnel
 * closing as the program exits is complete.
 */
export function createLogEndpoint(
  config: ProxyConfig,
  crypto: typeof Crypto,
  log: RequestLog,
  where: { proxyAddress: string; logAddress: string },
  clients: Set<string>,
): (req: Http.IncomingMessage, res: Http.ServerResponse) => void {
  const tokenBytes = Buffer.from(`Bearer ${config.token}`);
  return (req, res) => {
    const given = Buffer.from(req.headers.authorization ?? "");
    if (given.length !== tokenBytes.length || !crypto.timingSafeEqual(given, tokenBytes)) {
      res.writeHead(401).end();
      return;
    }
    const url = new URL(req.url ?? "/", "http://log");
    if (url.pathname === "/health") {
      res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ ok: true, proxyAddress: where.proxyAddress, logAddress: where.logAddress }));
      return;
    }
    if (url.pathname === "/clients" && req.method === "POST") {
      // The engine registers a sandbox's address once it exists and removes it with the sandbox.
      const add = url.searchParams.get("add");
      const remove = url.searchParams.get("remove");
      if (add) clients.add(add);
      if (remove) clients.delete(remove);
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ clients: clients.size }));
      return;
    }
    if (url.pathname !== "/logs") {
      res.writeHead(404).end();
      return;
    }
    const client = url.searchParams.get("client") ?? "";
    const since = Number(url.searchParams.get("since") ?? 0);
    const until = Number(url.searchParams.get("until") ?? Date.now());
    const deadline = Date.now() + Math.min(Number(url.searchParams.get("settle") ?? 0), 5_000);
    const answer = () => {
      const list = log.select(client, since, until);
      if (list.some((e) => e.open) && Date.now() < deadline) {
        setTimeout(answer, 20);
        return;
      }
      const now = Date.now();
      const body = JSON.stringify(list.map((e) => (e.open ? { ...e, durationMs: now - e.time } : e)));
      res.writeHead(200, { "content-type": "application/json" }).end(body);
    };
    answer();
  };
}
