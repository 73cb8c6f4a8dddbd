/**
 * The types of the proxy program: its configuration, the Node modules it is given, its request
 * records, and what its parts share. Types only: nothing here is shipped.
 */
import type * as Http from "node:http";
import type * as Net from "node:net";
import type * as Dns from "node:dns";
import type * as Os from "node:os";
import type * as Crypto from "node:crypto";
import type * as Addresses from "./addresses.js";
import type * as Clients from "./clients.js";
import type * as Destinations from "./destinations.js";
import type * as ForwardHttp from "./forward-http.js";
import type * as ForwardTunnel from "./forward-tunnel.js";
import type * as Replies from "./replies.js";
import type * as RequestLog from "./request-log.js";
import type * as Requests from "./requests.js";
import type * as Rules from "./rules.js";
import type * as Server from "./server.js";

export interface ProxyConfig {
  whitelist: string[];
  blacklist: string[];
  /** Outer filters that must allow a host as well (the operator's, when a request narrowed it). */
  bounds: { whitelist: string[]; blacklist: string[] }[];
  /** Destination ports a request or tunnel may use. */
  ports: number[];
  proxyPort: number;
  logPort: number;
  /** The proxy serves connections that arrive on an address inside one of these (the sandboxes' networks). */
  proxySubnets: string[];
  /** Ranges of the sandboxes' networks: never dialled (the proxy must not be a way from one sandbox to another). */
  sandboxSubnets: string[];
  /** The log endpoint listens on its address inside one of these (the egress network). */
  logSubnets: string[];
  /**
   * A policy driver (Kubernetes): the proxy has one address for everything, so it serves only the
   * peers the engine registered (POST /clients?add=IP) instead of connections arriving on
   * proxySubnets, and the log endpoint listens on every address (bearer token as ever).
   */
  registeredClients: boolean;
  /** Bearer token of the log endpoint. */
  token: string;
  ringSize: number;
  maxConnectionsPerClient: number;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  /** CONNECT tunnels must start with TLS (server name = CONNECT host) or HTTP/1.x (Host = CONNECT target): inspectTunnelStart. */
  inspectTunnels: boolean;
  /** Operator ranges the proxy may dial although they are not public. */
  allowAddresses: string[];
  /** Static resolver entries, consulted before DNS. */
  hosts: Record<string, string[]>;
  /** How long a DNS answer is reused (0: never). */
  dnsCacheMs: number;
}

export interface ProxyModules {
  http: typeof Http;
  net: typeof Net;
  dns: typeof Dns;
  os: typeof Os;
  crypto: typeof Crypto;
}

export interface ProxyLogRecord {
  /** ms since the epoch at which the request arrived. */
  time: number;
  client: string;
  method: string;
  host: string;
  path: string | null;
  action: "ALLOW" | "BLOCK";
  reason?: string;
  status?: number;
  durationMs: number;
  open: boolean;
}

export interface RunningProxy {
  proxyAddress: string;
  proxyPort: number;
  logAddress: string;
  logPort: number;
  close(): Promise<void>;
}

/**
 * Every function of the program, by name. A function calls one of another file through it
 * (`lib.inCidr(...)`), never through an import: the program is shipped as the functions' source
 * text, where no module system exists (see ../script.ts).
 */
export type ProxyLib = typeof Addresses &
  typeof Clients &
  typeof Destinations &
  typeof ForwardHttp &
  typeof ForwardTunnel &
  typeof Replies &
  typeof RequestLog &
  typeof Requests &
  typeof Rules &
  typeof Server;

/** A destination as the policy judged it: the address to dial, or the status and reason of the refusal. */
export type Vetted = { ok: true; address: string } | { ok: false; status: number; reason: string };

/** What the parts of one running proxy share (made once by startProxy). */
export interface ProxyContext {
  readonly config: ProxyConfig;
  readonly mods: ProxyModules;
  readonly lib: ProxyLib;
  /** Stores a request's record in the ring the log endpoint reads; returns it, to be completed while the request is open. */
  record(entry: ProxyLogRecord): ProxyLogRecord;
  /** Counts a client's open requests: false when it already has maxConnectionsPerClient. */
  enter(client: string): boolean;
  leave(client: string): void;
  /** The policy for one destination: rules and port before any DNS query, then the address check. */
  vet(host: string, port: number): Promise<Vetted>;
  /** The upstream connection pool of plain-HTTP requests. */
  readonly agent: Http.Agent;
}
