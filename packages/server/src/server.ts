import { randomUUID } from "node:crypto";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { getRequestListener } from "@hono/node-server";
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { streamSSE } from "hono/streaming";
import type * as z from "zod";
import {
  CONTAINER_LABELS,
  engineOptionsSchema,
  formatZodError,
  InvalidOptionsError,
  type DockerIsol8,
  type EngineAssembly,
  type EngineOptions,
  type ExecutionRequest,
  type PluginOption,
  type ResolvedEngineOptions,
  type StreamEvent,
} from "@isol8/core";
import { KeyRing, type ApiKey } from "./auth.js";
import { parseServerConfig, type ResolvedServerConfig, type ServerConfig } from "./config.js";
import { EngineFactory, EphemeralEngines, SERVER_LABELS } from "./engines.js";
import type { ServerEnv as Env } from "./env.js";
import { HttpError, statusOfCode, toHttpError } from "./errors.js";
import { debugHeapEnabled, debugHeapRoute } from "./debug-heap.js";
import { drive, type Terminal } from "./execution.js";
import { Limiter } from "./limiter.js";
import { Metrics } from "./metrics.js";
import { mountMcpRoute } from "./mcp-route.js";
import { describeRuntimes } from "@isol8/mcp";
import { openApiDocument } from "./openapi.js";
import { applyPolicy, resolvePolicy, type Policy } from "./policy.js";
import { cleanupBodySchema, executeBodySchema, getFileQuerySchema, putFileBodySchema, type ExecuteBody } from "./schemas.js";
import { RequestScope } from "./request-scope.js";
import { Sessions, type Session } from "./sessions.js";
import { formatIssues, zodIssues } from "./validation.js";

declare const __PACKAGE_VERSION__: string;
export const VERSION: string = typeof __PACKAGE_VERSION__ === "string" ? __PACKAGE_VERSION__ : "0.0.0-dev";

export type RequestLogEntry = Record<string, unknown>;

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

export interface ShutdownReport {
  /** true when every in-flight request finished within the grace period. */
  graceful: boolean;
  /** Requests cancelled after the grace period. */
  cancelled: number;
  /** Containers with the server's label still present after the engines stopped (then removed). */
  leftoverContainers: number;
  durationMs: number;
}

/** Where one execution runs, and how to give back what it holds (its slot, its engine, its session). */
interface Target {
  engine: DockerIsol8;
  session?: Session;
  request: ExecutionRequest;
  release: () => void;
}

const KNOWN_ROUTES = new Set(["/health", "/execute", "/execute/stream", "/file", "/sessions", "/session/:id", "/cleanup", "/metrics", "/openapi.json", "/mcp"]);
const PUBLIC_PATHS = new Set(["/health", "/openapi.json"]);
const SSE_HEARTBEAT_MS = 15_000;
/** Request metadata the server sets on every execution (overriding a client's). */
export const METADATA_TENANT = "isol8.tenant";
export const METADATA_REQUEST_ID = "isol8.request-id";

/**
 * The isol8 HTTP API. `createServer` validates the config and assembles everything; `listen`
 * starts the long-lived engine and binds; `close` shuts down gracefully (see there).
 */
export class Isol8Server {
  readonly id = randomUUID();
  readonly app: Hono<Env>;
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
  #started = false;
  #draining = false;
  #closing: Promise<ShutdownReport> | undefined;
  readonly #keys: KeyRing;
  readonly #factory: EngineFactory;
  readonly #defaults: ResolvedEngineOptions;
  readonly #defaultSeccomp: string | undefined;
  readonly #shutdown = new AbortController();
  readonly #inflight = new Set<Promise<void>>();
  #openResponses = 0;
  #responsesIdle: (() => void) | undefined;
  #reaper: NodeJS.Timeout | undefined;
  readonly #log: (entry: RequestLogEntry) => void;
  #dockerCheck: { at: number; ok: boolean; pending?: Promise<boolean> } = { at: 0, ok: false };

  constructor(options: ServerOptions) {
    this.config = parseServerConfig(options.config, options.configPath);
    this.version = options.version ?? VERSION;
    const keys = [...(options.keys ?? []), ...this.config.keys];
    if (keys.length === 0) {
      throw new InvalidOptionsError("The server needs at least one API key: pass --key, set ISOL8_API_KEY, or list server.keys in the isol8 config");
    }
    this.#keys = new KeyRing(keys);
    const parsedDefaults = engineOptionsSchema.safeParse(options.defaults ?? {});
    if (!parsedDefaults.success) throw new InvalidOptionsError(`Invalid engine defaults: ${formatZodError(parsedDefaults.error, "defaults")}`);
    if (parsedDefaults.data.mode !== "ephemeral")
      throw new InvalidOptionsError('defaults.mode: the server picks the mode per request (sessionId); leave it "ephemeral"');
    this.#defaults = parsedDefaults.data;
    this.#factory = new EngineFactory({ plugins: options.plugins, defaults: options.defaults ?? {}, assembly: options.assembly, serverId: this.id });
    this.engines = new EphemeralEngines(this.#factory, { max: this.config.limits.maxEngines, idleMs: 5 * 60_000 });
    this.#defaultSeccomp = this.engines.main.seccompMode;
    this.policy = resolvePolicy(this.config.policy, this.#defaults, this.#defaultSeccomp);
    this.requestTimeoutMs = this.config.limits.requestTimeoutMs ?? this.policy.maxTimeoutMs + 30_000;
    this.limiter = new Limiter(this.config.limits.maxConcurrent, this.config.limits.maxQueue);
    this.sessions = new Sessions({
      perTenant: this.config.limits.maxSessionsPerTenant,
      total: this.config.limits.maxSessions,
      idleMs: this.config.limits.sessionIdleMs,
    });
    this.#log = options.log ?? (this.config.requestLog ? (entry) => process.stdout.write(`${JSON.stringify(entry)}\n`) : () => undefined);
    this.metrics.gauge("isol8_executions_running", "Executions and file operations holding a slot.", () => this.limiter.running);
    this.metrics.gauge("isol8_queue_length", "Requests waiting for a slot.", () => this.limiter.queued);
    this.metrics.gauge("isol8_sessions", "Persistent sessions.", () => this.sessions.count);
    this.metrics.gauge("isol8_profile_engines", "Engines kept for non-default client options.", () => this.engines.size);
    this.app = this.#routes();
    this.httpServer = createHttpServer(
      { headersTimeout: 10_000, requestTimeout: 60_000, keepAliveTimeout: 5_000 },
      getRequestListener(this.app.fetch, { autoCleanupIncoming: true }),
    );
  }

  get url(): string | undefined {
    return this.#url;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** Starts the long-lived engine (Docker must answer) and binds (default 127.0.0.1:3000). */
  async listen(port = this.config.port ?? 3000, host = this.config.host ?? "127.0.0.1"): Promise<{ url: string; port: number; host: string }> {
    const prewarm = this.config.prewarm;
    await this.engines.main.start(prewarm === false ? {} : { prewarm: prewarm === true ? true : { runtimes: prewarm } });
    this.#started = true;
    this.#dockerCheck = { at: Date.now(), ok: true };
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

  async #reap(): Promise<void> {
    this.engines.sweep();
    const reaped = await this.sessions.reap().catch(() => []);
    for (const session of reaped) {
      this.metrics.reaped.inc();
      this.#log({
        time: new Date().toISOString(),
        level: "info",
        msg: "session reaped",
        tenant: session.tenant,
        sessionId: session.id,
        idleMs: this.config.limits.sessionIdleMs,
      });
    }
  }

  // ------------------------------------------------------------------ routes

  #routes(): Hono<Env> {
    const app = new Hono<Env>();

    app.use("*", async (c: Context<Env>, next) => {
      const started = performance.now();
      const given = c.req.header("x-request-id");
      const requestId = given && /^[A-Za-z0-9._-]{1,64}$/.test(given) ? given : randomUUID();
      c.set("requestId", requestId);
      c.set("startedAt", started);
      c.header("X-Request-Id", requestId);
      this.#openResponses++;
      try {
        await next();
      } finally {
        if (!c.get("deferLog")) this.#finish(c, c.res.status, started);
      }
    });

    app.use("*", async (c, next) => {
      if (this.#draining && c.req.path !== "/health")
        throw new HttpError(503, "ISOL8_ERR_SHUTTING_DOWN", "The server is shutting down", { headers: { Connection: "close" } });
      if (!PUBLIC_PATHS.has(c.req.path)) c.set("tenant", this.#keys.authenticate(c.req.header("authorization")));
      await next();
    });

    app.use(
      "*",
      bodyLimit({
        maxSize: this.config.limits.bodyLimit,
        onError: (c: Context<Env>) => {
          this.metrics.rejected.inc({ reason: "body_too_large" });
          const error = new HttpError(413, "ISOL8_ERR_BODY_TOO_LARGE", `The request body is over this server's limit of ${this.config.limits.bodyLimit} bytes`);
          return c.json(error.body(c.get("requestId")), 413, { Connection: "close" });
        },
      }),
    );

    app.onError((err, c) => {
      const error = toHttpError(err);
      if (error.code === "ISOL8_ERR_INTERNAL" && !(err instanceof HttpError)) {
        process.stderr.write(
          `${JSON.stringify({ time: new Date().toISOString(), level: "error", msg: "unexpected error", requestId: c.get("requestId"), error: String((err as Error)?.stack ?? err) })}\n`,
        );
      }
      if (error.status === 429) this.metrics.rejected.inc({ reason: error.code === "ISOL8_ERR_SESSION_LIMIT" ? "session_limit" : "overloaded" });
      return c.json(error.body(c.get("requestId")), error.status as 400, error.headers);
    });

    app.notFound((c) => c.json(new HttpError(404, "ISOL8_ERR_NOT_FOUND", `No route ${c.req.method} ${c.req.path}`).body(c.get("requestId")), 404));

    app.get("/health", async (c) => {
      const status = this.#draining ? "draining" : !this.#started ? "starting" : (await this.#dockerOk()) ? "ok" : "unavailable";
      return c.json({ status, version: this.version, ready: status === "ok" }, status === "ok" ? 200 : 503);
    });

    app.get("/openapi.json", (c) => c.json(openApiDocument(this.version)));

    app.get("/metrics", (c) => c.text(this.metrics.render(), 200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" }));

    if (debugHeapEnabled()) debugHeapRoute(app);

    mountMcpRoute(app, {
      version: this.version,
      runtimes: () => describeRuntimes(this.engines.main.kit.runtimes.values()),
      sessions: this.sessions,
      metrics: this.metrics,
      requestTimeoutMs: this.requestTimeoutMs,
      idleMs: this.config.limits.sessionIdleMs,
      shutdown: this.#shutdown.signal,
      prepare: (c, body, scope) => this.#prepare(c, body, scope),
      withSlot: (c, work) => this.#withSlot(c, work),
      errorOfEvent: (event, request, engine) => this.#errorOfEvent(event, request, engine),
    });

    app.post("/execute", async (c) => {
      const body = await this.#readBody(c, executeBodySchema);
      return this.#execute(c, body);
    });

    app.post("/execute/stream", async (c) => {
      const body = await this.#readBody(c, executeBodySchema);
      return this.#executeStream(c, body);
    });

    app.post("/file", async (c) => {
      const body = await this.#readBody(c, putFileBodySchema);
      c.set("sessionId", body.sessionId);
      const session = this.sessions.require(c.get("tenant")!, body.sessionId);
      await this.#withSlot(c, () => this.sessions.use(session, () => session.engine.putFile(body.path, Buffer.from(body.content, "base64"))));
      return c.json({ ok: true as const });
    });

    app.get("/file", async (c) => {
      const query = this.#validate(getFileQuerySchema, c.req.query(), "query");
      c.set("sessionId", query.sessionId);
      const session = this.sessions.require(c.get("tenant")!, query.sessionId);
      const content = await this.#withSlot(c, () => this.sessions.use(session, () => session.engine.getFile(query.path)));
      return c.json({ content: content.toString("base64") });
    });

    app.get("/sessions", (c) => c.json({ sessions: this.sessions.list(c.get("tenant")!) }));

    app.delete("/session/:id", async (c) => {
      const id = c.req.param("id");
      c.set("sessionId", id);
      await this.sessions.delete(this.sessions.require(c.get("tenant")!, id));
      return c.json({ ok: true as const });
    });

    app.post("/cleanup", async (c) => {
      const text = await c.req.text();
      if (text.trim()) this.#validate(cleanupBodySchema, this.#parseJson(text), "body");
      const removed = await this.sessions.deleteAll(c.get("tenant")!);
      return c.json({ ok: true as const, sessions: removed });
    });

    return app;
  }

  #finish(c: Context<Env>, status: number, started: number, extra: Record<string, unknown> = {}): void {
    const durationMs = Math.round(performance.now() - started);
    const route = KNOWN_ROUTES.has(c.req.routePath) ? c.req.routePath : "other";
    this.metrics.requests.inc({ method: c.req.method, route, status: String(status) });
    this.metrics.duration.observe({ route }, durationMs / 1000);
    this.#log({
      time: new Date().toISOString(),
      level: status >= 500 ? "error" : status >= 400 ? "warn" : "info",
      msg: "request",
      id: c.get("requestId"),
      method: c.req.method,
      path: c.req.path,
      tenant: c.get("tenant") ?? null,
      runtime: c.get("runtime") ?? null,
      ...(c.get("sessionId") && { sessionId: c.get("sessionId") }),
      status,
      durationMs,
      ...extra,
    });
    this.#openResponses--;
    if (this.#openResponses === 0) this.#responsesIdle?.();
  }

  async #dockerOk(): Promise<boolean> {
    const check = this.#dockerCheck;
    if (Date.now() - check.at < 5_000) return check.ok;
    check.pending ??= Promise.race([
      this.engines.main.driver.ping().then(
        () => true,
        () => false,
      ),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 2_000).unref()),
    ]).then((ok) => {
      this.#dockerCheck = { at: Date.now(), ok };
      return ok;
    });
    return check.pending;
  }

  // ------------------------------------------------------------------ bodies

  #parseJson(text: string): unknown {
    try {
      return JSON.parse(text);
    } catch (error) {
      const position = /position (\d+)/.exec((error as Error).message)?.[1];
      throw new HttpError(400, "ISOL8_ERR_INVALID_REQUEST", `Malformed JSON in the request body${position ? ` (at position ${position})` : ""}`, {
        field: "(body)",
      });
    }
  }

  #validate<S extends z.ZodType>(schema: S, value: unknown, where: "body" | "query"): z.output<S> {
    const parsed = schema.safeParse(value);
    if (parsed.success) return parsed.data;
    const issues = zodIssues(parsed.error, undefined, (path) =>
      path.length === 1 && path[0] === "options"
        ? "not an option a client may set"
        : path.length === 0 && where === "body"
          ? "expected request, options, sessionId"
          : undefined,
    );
    const first = issues[0]!.path;
    const top = first.split(/[.[]/)[0];
    const [code, prefix] =
      top === "options"
        ? (["ISOL8_ERR_INVALID_OPTIONS", "Invalid options"] as const)
        : (["ISOL8_ERR_INVALID_REQUEST", top === "request" ? "Invalid execution request" : `Invalid ${where}`] as const);
    throw new HttpError(400, code, `${prefix}: ${formatIssues(issues)}`, { field: first, issues });
  }

  async #readBody<S extends z.ZodType>(c: Context<Env>, schema: S): Promise<z.output<S>> {
    const type = c.req.header("content-type");
    if (type && !/^application\/(?:[\w.+-]+\+)?json\b/i.test(type)) {
      throw new HttpError(415, "ISOL8_ERR_UNSUPPORTED_MEDIA_TYPE", `Expected Content-Type: application/json, got ${type.slice(0, 100)}`);
    }
    const body = this.#validate(schema, this.#parseJson(await c.req.text()), "body");
    const request = (body as { request?: { runtime?: string } }).request;
    if (request?.runtime) c.set("runtime", request.runtime);
    const sessionId = (body as { sessionId?: string }).sessionId;
    if (sessionId) c.set("sessionId", sessionId);
    return body;
  }

  // ------------------------------------------------------------------ execution

  /** Runs `work` holding a concurrency slot (429 when the queue is full), under the request's deadline. */
  async #withSlot<T>(c: Context<Env>, work: () => Promise<T>): Promise<T> {
    const scope = new RequestScope(c.req.raw.signal, this.#shutdown.signal, this.requestTimeoutMs);
    try {
      const release = await this.limiter.acquire(scope.signal).catch((error) => {
        throw error instanceof HttpError ? error : scope.error(this.requestTimeoutMs);
      });
      const running = work();
      const settled = running.then(
        () => undefined,
        () => undefined,
      );
      this.#track(settled.finally(release));
      return await running;
    } finally {
      scope.dispose();
    }
  }

  #track(settled: Promise<void>): void {
    this.#inflight.add(settled);
    void settled.finally(() => this.#inflight.delete(settled));
  }

  /** Picks the engine (a session's, or an ephemeral one) and holds a slot; everything refusable is refused before any output. */
  async #prepare(c: Context<Env>, body: ExecuteBody, scope: RequestScope): Promise<Target> {
    const tenant = c.get("tenant")!;
    const engine = this.engines.main;
    const outcome = applyPolicy(body, this.policy, this.#defaults, {
      defaultSeccomp: this.#defaultSeccomp,
      isRegisteredRuntime: (name) => engine.kit.runtimes.has(name),
    });
    const slot = await this.limiter.acquire(scope.signal).catch((error) => {
      throw error instanceof HttpError ? error : scope.error(this.requestTimeoutMs);
    });
    // In flight from now until released: shutdown waits for it (up to the grace period).
    let done!: () => void;
    this.#track(new Promise<void>((resolve) => (done = resolve)));
    const releaseSlot = () => {
      slot();
      done();
    };
    // Who asked, for admission plugins (beforeAcquire sees metadata) and audit records; a client cannot set these keys.
    outcome.request.metadata = { ...outcome.request.metadata, [METADATA_TENANT]: tenant, [METADATA_REQUEST_ID]: c.get("requestId") };
    try {
      if (body.sessionId) {
        const sessionId = body.sessionId;
        const session = this.sessions.getOrCreate(tenant, sessionId, outcome.profile, outcome.overrides, (overrides) =>
          this.#factory.create(overrides, { [SERVER_LABELS.tenant]: tenant, [CONTAINER_LABELS.session]: sessionId }),
        );
        session.active++;
        session.lastUsedAt = new Date();
        const release = () => {
          session.active--;
          session.lastUsedAt = new Date();
          releaseSlot();
        };
        return { engine: session.engine, session, request: outcome.request, release };
      }
      const held = await this.engines.acquire(outcome.profile, outcome.overrides);
      return {
        engine: held.engine,
        request: outcome.request,
        release: () => {
          held.release();
          releaseSlot();
        },
      };
    } catch (error) {
      releaseSlot();
      throw error;
    }
  }

  #outcomeOf(event: Terminal | undefined, ended: string): string {
    if (ended === "aborted") return "cancelled";
    if (!event || event.type === "error") return "error";
    const r = event.result;
    return r.timedOut ? "timeout" : r.oomKilled ? "oom" : r.exitCode === 0 ? "ok" : "nonzero";
  }

  #errorOfEvent(event: Extract<StreamEvent, { type: "error" }>, request: ExecutionRequest, engine: DockerIsol8): HttpError {
    const details = event.code === "ISOL8_ERR_UNKNOWN_RUNTIME" ? { runtime: request.runtime, registered: engine.kit.runtimes.names() } : undefined;
    return new HttpError(statusOfCode(event.code), event.code ?? "ISOL8_ERR_EXECUTION", event.data, details ? { details } : {});
  }

  async #execute(c: Context<Env>, body: ExecuteBody): Promise<Response> {
    const scope = new RequestScope(c.req.raw.signal, this.#shutdown.signal, this.requestTimeoutMs);
    try {
      const target = await this.#prepare(c, body, scope);
      const { ended, event, settled } = await drive(target.engine, target.request, scope.signal, () => undefined).catch((error) => {
        target.release();
        throw error;
      });
      void settled.finally(target.release);
      this.metrics.executions.inc({ runtime: target.request.runtime, outcome: this.#outcomeOf(event, ended) });
      if (ended === "aborted") throw scope.error(this.requestTimeoutMs);
      if (event!.type === "error") throw this.#errorOfEvent(event!, target.request, target.engine);
      if (target.session) {
        target.session.executions++;
        target.session.runtime = target.request.runtime;
      }
      return c.json(event!.result);
    } finally {
      scope.dispose();
    }
  }

  async #executeStream(c: Context<Env>, body: ExecuteBody): Promise<Response> {
    const scope = new RequestScope(c.req.raw.signal, this.#shutdown.signal, this.requestTimeoutMs);
    let target: Target;
    try {
      target = await this.#prepare(c, body, scope);
    } catch (error) {
      scope.dispose();
      throw error;
    }
    c.set("deferLog", true);
    const started = c.get("startedAt");
    return streamSSE(c, async (stream) => {
      let id = 0;
      let outcome = "error";
      const heartbeat = setInterval(() => void stream.write(": keep-alive\n\n"), SSE_HEARTBEAT_MS);
      const send = async (event: StreamEvent) => {
        if (!stream.aborted) await stream.writeSSE({ event: event.type, data: JSON.stringify(event), id: String(id++) });
      };
      try {
        const { ended, event, settled } = await drive(target.engine, target.request, scope.signal, send);
        void settled.finally(target.release);
        outcome = this.#outcomeOf(event, ended);
        if (ended === "aborted" && scope.reason !== "client") {
          const error = scope.error(this.requestTimeoutMs);
          await send({ type: "error", data: error.message, code: error.code });
        }
        if (event?.type === "exit" && target.session) {
          target.session.executions++;
          target.session.runtime = target.request.runtime;
        }
      } catch (error) {
        target.release();
        await send({ type: "error", data: "Internal server error", code: "ISOL8_ERR_INTERNAL" }).catch(() => undefined);
        process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: "error", msg: "stream failed", error: String(error) })}\n`);
      } finally {
        clearInterval(heartbeat);
        scope.dispose();
        this.metrics.executions.inc({ runtime: target.request.runtime, outcome });
        this.#finish(c, scope.reason === "client" ? 499 : 200, started, { stream: true, outcome });
      }
    });
  }

  // ------------------------------------------------------------------ shutdown

  /**
   * Graceful shutdown: stop accepting (the listener closes, /health says draining, new requests
   * and queued ones get 503); let in-flight work finish for up to `graceMs`; then cancel what is
   * left (its clients get 503 or an SSE error event); stop every engine (pools drained, session
   * containers removed; images are kept); remove any container still carrying this server's label;
   * close the remaining connections.
   */
  close(options: { graceMs?: number } = {}): Promise<ShutdownReport> {
    this.#closing ??= this.#close(options.graceMs ?? this.config.limits.shutdownGraceMs);
    return this.#closing;
  }

  async #close(graceMs: number): Promise<ShutdownReport> {
    const started = Date.now();
    this.#draining = true;
    if (this.#reaper) clearInterval(this.#reaper);
    this.limiter.close(new HttpError(503, "ISOL8_ERR_SHUTTING_DOWN", "The server is shutting down"));
    const listening = this.httpServer.listening;
    const closed = listening ? new Promise<void>((resolve) => this.httpServer.close(() => resolve())) : Promise.resolve();
    this.httpServer.closeIdleConnections();

    const inflight = () => Promise.allSettled([...this.#inflight]);
    const finished = await Promise.race([inflight().then(() => true), sleep(graceMs).then(() => false)]);
    const cancelled = finished ? 0 : this.#inflight.size;
    if (!finished) this.#shutdown.abort();
    // Stopping the engines also aborts whatever still runs in them.
    await Promise.allSettled([this.engines.stopAll(), this.sessions.deleteAll()]);
    await Promise.race([inflight(), sleep(10_000)]);

    const driver = this.engines.main.driver;
    const leftovers = await driver.listContainers({ [SERVER_LABELS.server]: this.id }).catch(() => []);
    await Promise.allSettled(leftovers.map((c) => driver.removeContainer(c.Id)));

    // Let responses (503s, final SSE events) reach their clients, then drop every connection.
    if (this.#openResponses > 0) await Promise.race([new Promise<void>((resolve) => (this.#responsesIdle = resolve)), sleep(2_000)]);
    this.httpServer.closeAllConnections();
    await closed;
    return { graceful: finished, cancelled, leftoverContainers: leftovers.length, durationMs: Date.now() - started };
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

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
  log({ time: new Date().toISOString(), level: "info", msg: "listening", url, version: server.version, serverId: server.id, pid: process.pid });
  if (options.handleSignals !== false) {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      if (signals > 1) {
        log({ time: new Date().toISOString(), level: "warn", msg: "second signal: exiting now", signal });
        process.exit(130);
      }
      log({ time: new Date().toISOString(), level: "info", msg: "shutting down", signal, graceMs: server.config.limits.shutdownGraceMs });
      server.close().then(
        (report) => {
          log({ time: new Date().toISOString(), level: "info", msg: "stopped", ...report });
          process.exit(0);
        },
        (error: unknown) => {
          log({ time: new Date().toISOString(), level: "error", msg: "shutdown failed", error: String(error) });
          process.exit(1);
        },
      );
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    // A stray rejection must not take down a server holding other tenants' work.
    process.on("unhandledRejection", (reason) => log({ time: new Date().toISOString(), level: "error", msg: "unhandled rejection", error: String(reason) }));
  }
  return server;
}
