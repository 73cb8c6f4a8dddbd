import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { getRequestListener } from "@hono/node-server";
import { Hono } from "hono";
import type { EngineAssembly } from "@isol8/core";
import { engineOptionsSchema, formatZodError, InvalidOptionsError, type EngineOptions, type PluginOption } from "@isol8/kit";
import { KeyRing, type ApiKey } from "./auth.js";
import { parseServerConfig, type ResolvedServerConfig, type ServerConfig } from "./config.js";
import { ContextLedger } from "./context-limits.js";
import { EngineFactory, EphemeralEngines } from "./engines.js";
import type { ServerEnv } from "./env.js";
import { Health } from "./health.js";
import { Limiter } from "./limiter.js";
import { Metrics } from "./metrics.js";
import { Readiness } from "./ready.js";
import { installMiddleware } from "./middleware.js";
import { FailureLog, mountAdmin } from "./admin.js";
import { isUiPath, mountUi } from "./ui-routes.js";
import { resolvePolicy, type Policy } from "./policy.js";
import { RequestLog, type RequestLogEntry } from "./request-log.js";
import { mountRoutes } from "./routes.js";
import { Sessions } from "./sessions.js";
import { exitOnSignals, shutDown, type ShutdownReport } from "./shutdown.js";
import { Slots } from "./slots.js";
import { Targets } from "./targets.js";
import { WebSocketEndpoint } from "./ws.js";

export type { RequestLogEntry } from "./request-log.js";
export type { ShutdownReport } from "./shutdown.js";
export { METADATA_REQUEST_ID, METADATA_TENANT } from "./targets.js";

declare const __PACKAGE_VERSION__: string;
export const VERSION: string = typeof __PACKAGE_VERSION__ === "string" ? __PACKAGE_VERSION__ : "0.0.0-dev";

export interface ServerOptions {
  /** The plugins every engine of the server is built from (runtimes, pools, network and seccomp modes, sinks). */
  plugins: readonly PluginOption[];
  /** Engine defaults (the config's `defaults`). */
  defaults?: EngineOptions;
  /** The `server` section of the config (validated here; a bad key is named). */
  config?: ServerConfig | Record<string, unknown>;
  /** The config file, for error messages. */
  configPath?: string;
  /** Keys in addition to the config's (from --key or ISOL8_API_KEY). */
  keys?: ApiKey[];
  /** Docker client and engine logger for the engines. */
  assembly?: Omit<EngineAssembly, "plugins">;
  /** Where request log lines go (default: one JSON line each on stdout, when config.requestLog). */
  log?: (entry: RequestLogEntry) => void;
  version?: string;
}

/**
 * The isol8 HTTP API. `createServer` validates the config and assembles everything; `listen`
 * starts the long-lived engine and binds; `close` shuts down gracefully (see shutdown.ts).
 *
 * The rooms: middleware.ts (request id, log line, drain gate, auth, body limit, error bodies),
 * routes.ts and sse.ts (the routes; mcp-route.ts for /mcp), bodies.ts (parsing and checking
 * bodies), targets.ts (policy, engine or session) over slots.ts (the concurrency slots),
 * shutdown.ts (drain, cancel, stop, signals). This file wires them.
 */
export class Isol8Server {
  readonly id = randomUUID();
  /** This node's id behind a load balancer (config nodeId, default the host name): X-Isol8-Node on every response. */
  readonly nodeId: string;
  readonly app: Hono<ServerEnv>;
  readonly config: ResolvedServerConfig;
  readonly policy: Policy;
  readonly metrics = new Metrics();
  readonly httpServer: HttpServer;
  readonly sessions: Sessions;
  readonly engines: EphemeralEngines;
  readonly limiter: Limiter;
  readonly version: string;
  readonly requestTimeoutMs: number;
  #url: string | undefined;
  #closing: Promise<ShutdownReport> | undefined;
  readonly #health: Health;
  readonly #readiness: Readiness;
  readonly #slots: Slots;
  readonly #requests: RequestLog;
  readonly #shutdown = new AbortController();
  /** GET /execute/ws (interactive runs) and the answer to every other upgrade request. */
  readonly #ws: WebSocketEndpoint;
  #reaper: NodeJS.Timeout | undefined;

  constructor(options: ServerOptions) {
    this.config = parseServerConfig(options.config, options.configPath);
    this.nodeId = this.config.nodeId ?? hostname();
    this.version = options.version ?? VERSION;
    const keys = [...(options.keys ?? []), ...this.config.keys];
    if (keys.length === 0) {
      throw new InvalidOptionsError("The server needs at least one API key: pass --key, set ISOL8_API_KEY, or list server.keys in the isol8 config");
    }
    const keyRing = new KeyRing(keys);
    const parsedDefaults = engineOptionsSchema.safeParse(options.defaults ?? {});
    if (!parsedDefaults.success) throw new InvalidOptionsError(`Invalid engine defaults: ${formatZodError(parsedDefaults.error, "defaults")}`);
    if (parsedDefaults.data.mode !== "ephemeral")
      throw new InvalidOptionsError('defaults.mode: the server picks the mode per request (sessionId); leave it "ephemeral"');
    const defaults = parsedDefaults.data;
    const factory = new EngineFactory({ plugins: options.plugins, defaults: options.defaults ?? {}, assembly: options.assembly, serverId: this.id });
    const limits = this.config.limits;
    this.engines = new EphemeralEngines(factory, { max: limits.maxEngines, idleMs: 5 * 60_000 });
    const defaultSeccomp = this.engines.main.seccompMode;
    this.policy = resolvePolicy(this.config.policy, defaults, defaultSeccomp);
    this.requestTimeoutMs = limits.requestTimeoutMs ?? this.policy.maxTimeoutMs + 30_000;
    this.limiter = new Limiter(limits.maxConcurrent, limits.maxQueue);
    this.sessions = new Sessions({ perTenant: limits.maxSessionsPerTenant, total: limits.maxSessions, idleMs: limits.sessionIdleMs }, this.nodeId);
    this.#slots = new Slots(this.limiter, this.#shutdown.signal, this.requestTimeoutMs);
    this.#health = new Health(() => this.engines.main.driver.ping());
    this.#readiness = new Readiness({ health: this.#health, limiter: this.limiter, readyMaxQueue: limits.readyMaxQueue ?? limits.maxQueue, node: this.nodeId });
    this.metrics.info("isol8_node_info", "This server node (its nodeId, the X-Isol8-Node header).", { node: this.nodeId, version: this.version });
    const log = options.log ?? (this.config.requestLog ? (entry) => process.stdout.write(`${JSON.stringify(entry)}\n`) : () => undefined);
    this.#requests = new RequestLog(this.metrics, log);
    this.metrics.gauge("isol8_executions_running", "Executions and file operations holding a slot.", () => this.limiter.running);
    this.metrics.gauge("isol8_queue_length", "Requests waiting for a slot.", () => this.limiter.queued);
    this.metrics.gauge("isol8_sessions", "Persistent sessions.", () => this.sessions.count);
    this.metrics.gauge("isol8_profile_engines", "Engines kept for non-default client options.", () => this.engines.size);

    const targets = new Targets({ engines: this.engines, factory, sessions: this.sessions, slots: this.#slots, policy: this.policy, defaults, defaultSeccomp });
    this.app = new Hono<ServerEnv>();
    // The operator view's last failures: before authentication, so a refused key is one of them.
    const failures = new FailureLog();
    if (this.config.adminTenants.length > 0) this.app.use("*", failures.middleware);
    installMiddleware(this.app, {
      requests: this.#requests,
      health: this.#health,
      keys: keyRing,
      metrics: this.metrics,
      bodyLimit: limits.bodyLimit,
      nodeId: this.nodeId,
      ...(this.config.ui && { isPublic: isUiPath }),
    });
    this.#readiness.mount(this.app);
    if (this.config.ui) mountUi(this.app);
    if (this.config.adminTenants.length > 0) {
      const tenants = [...new Set(keys.map((k) => k.tenant))];
      mountAdmin(this.app, {
        adminTenants: this.config.adminTenants,
        tenants,
        sessions: this.sessions,
        limiter: this.limiter,
        metrics: this.metrics,
        failures,
        node: this.nodeId,
        version: this.version,
        readiness: this.#readiness,
      });
    }
    mountRoutes(this.app, {
      version: this.version,
      health: this.#health,
      metrics: this.metrics,
      sessions: this.sessions,
      engines: this.engines,
      slots: this.#slots,
      targets,
      requests: this.#requests,
      idleMs: limits.sessionIdleMs,
      contexts: new ContextLedger(this.sessions, { perSession: this.policy.maxContextsPerSession, perTenant: this.policy.maxContextsPerTenant }),
    });
    this.httpServer = createHttpServer(
      { headersTimeout: 10_000, requestTimeout: 60_000, keepAliveTimeout: 5_000 },
      getRequestListener(this.app.fetch, { autoCleanupIncoming: true }),
    );
    this.#ws = new WebSocketEndpoint(this.httpServer, this.app, {
      slots: this.#slots,
      targets,
      metrics: this.metrics,
      requests: this.#requests,
      maxPayload: limits.bodyLimit,
    });
    this.#ws.mount(this.app);
  }

  get url(): string | undefined {
    return this.#url;
  }

  get draining(): boolean {
    return this.#health.draining;
  }

  /** Starts the long-lived engine (Docker must answer) and binds (default 127.0.0.1:3000). */
  async listen(port = this.config.port ?? 3000, host = this.config.host ?? "127.0.0.1"): Promise<{ url: string; port: number; host: string }> {
    const prewarm = this.config.prewarm;
    await this.engines.main.start(prewarm === false ? {} : { prewarm: prewarm === true ? true : { runtimes: prewarm } });
    this.#health.started();
    try {
      await new Promise<void>((resolve, reject) => {
        this.httpServer.once("error", reject);
        this.httpServer.listen(port, host, () => {
          this.httpServer.off("error", reject);
          resolve();
        });
      });
    } catch (error) {
      // Nothing the engine made may outlive a server that could not start.
      await this.engines.stopAll();
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "EADDRINUSE" || code === "EACCES" || code === "EADDRNOTAVAIL") {
        throw new InvalidOptionsError(`Cannot listen on ${host}:${port}: ${code === "EADDRINUSE" ? "the port is in use" : (error as Error).message}`);
      }
      throw error;
    }
    const address = this.httpServer.address() as AddressInfo;
    this.#url = `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`;
    const every = Math.max(50, Math.min(this.config.limits.sessionIdleMs / 2, 30_000));
    this.#reaper = setInterval(() => void this.#reap(), every);
    this.#reaper.unref();
    return { url: this.#url, port: address.port, host: address.address };
  }

  /** Stops idle profile engines and idle sessions (every half idle time, at most every 30 s). */
  async #reap(): Promise<void> {
    this.engines.sweep();
    const reaped = await this.sessions.reap().catch(() => []);
    for (const session of reaped) {
      this.metrics.reaped.inc();
      this.#requests.write({
        time: new Date().toISOString(),
        level: "info",
        msg: "session reaped",
        tenant: session.tenant,
        sessionId: session.id,
        idleMs: this.config.limits.sessionIdleMs,
      });
    }
  }

  /** Graceful shutdown (see shutDown); every call returns the same report. */
  close(options: { graceMs?: number } = {}): Promise<ShutdownReport> {
    if (!this.#closing) {
      if (this.#reaper) clearInterval(this.#reaper);
      this.#ws.drain();
      const parts = {
        serverId: this.id,
        health: this.#health,
        readiness: this.#readiness,
        drainDelayMs: this.config.limits.drainDelayMs,
        slots: this.#slots,
        httpServer: this.httpServer,
        engines: this.engines,
        sessions: this.sessions,
      };
      this.#closing = shutDown(
        { ...parts, requests: this.#requests, cancel: () => this.#shutdown.abort() },
        options.graceMs ?? this.config.limits.shutdownGraceMs,
      );
    }
    return this.#closing;
  }
}

/** Builds a server from its options (validates the config; starts nothing). */
export function createServer(options: ServerOptions): Isol8Server {
  return new Isol8Server(options);
}

export interface StartServerOptions extends ServerOptions {
  port?: number;
  host?: string;
  /** Install SIGINT/SIGTERM handlers that shut down gracefully and exit (default true). */
  handleSignals?: boolean;
}

/**
 * createServer + listen, and (by default) graceful shutdown on SIGINT/SIGTERM: the first signal
 * drains and exits 0; a second one exits at once (the next engine start reaps what is left).
 */
export async function startServer(options: StartServerOptions): Promise<Isol8Server> {
  const server = createServer(options);
  const { url } = await server.listen(options.port, options.host);
  const log = options.log ?? ((entry: RequestLogEntry) => process.stdout.write(`${JSON.stringify(entry)}\n`));
  log({
    time: new Date().toISOString(),
    level: "info",
    msg: "listening",
    url,
    version: server.version,
    serverId: server.id,
    node: server.nodeId,
    pid: process.pid,
  });
  if (options.handleSignals !== false) exitOnSignals({ close: () => server.close(), graceMs: server.config.limits.shutdownGraceMs }, log);
  return server;
}
