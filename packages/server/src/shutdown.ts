import type { Server as HttpServer } from "node:http";
import type { EphemeralEngines } from "./engines.js";
import { SERVER_LABELS } from "./engines.js";
import { HttpError } from "./errors.js";
import type { Health } from "./health.js";
import type { Readiness } from "./ready.js";
import type { RequestLog, RequestLogEntry } from "./request-log.js";
import type { Sessions } from "./sessions.js";
import type { Slots } from "./slots.js";

export interface ShutdownReport {
  /** true when every in-flight request finished within the grace period. */
  graceful: boolean;
  /** Requests cancelled after the grace period. */
  cancelled: number;
  /** Containers with the server's label still present after the engines stopped (then removed). */
  leftoverContainers: number;
  durationMs: number;
}

/** What shutdown stops, in the order it stops them. */
export interface ShutdownParts {
  serverId: string;
  health: Health;
  /** GET /ready: not ready first, for `drainDelayMs`, while requests are still served. */
  readiness?: Readiness;
  drainDelayMs?: number;
  slots: Slots;
  httpServer: HttpServer;
  engines: EphemeralEngines;
  sessions: Sessions;
  requests: RequestLog;
  /** Cancels what still runs (the shutdown signal every request's scope follows). */
  cancel: () => void;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/**
 * Graceful shutdown: /ready answers 503 at once, and for `drainDelayMs` requests are still served
 * (a balancer routes new work elsewhere); then stop accepting (the listener closes, /health says draining, new requests
 * and queued ones get 503); let in-flight work finish for up to `graceMs`; then cancel what is
 * left (its clients get 503 or an SSE error event); stop every engine (pools drained, session
 * containers removed; images are kept); remove any container still carrying this server's label;
 * close the remaining connections.
 */
export async function shutDown(parts: ShutdownParts, graceMs: number): Promise<ShutdownReport> {
  const { health, slots, httpServer, engines, sessions, requests } = parts;
  const started = Date.now();
  // Not ready first: a balancer stops sending new work (its health checks see 503) while this
  // node still serves what reaches it; only then does the listener close.
  parts.readiness?.leave();
  if (parts.drainDelayMs) await sleep(parts.drainDelayMs);
  health.drain();
  slots.close(new HttpError(503, "ISOL8_ERR_SHUTTING_DOWN", "The server is shutting down"));
  const closed = httpServer.listening ? new Promise<void>((resolve) => httpServer.close(() => resolve())) : Promise.resolve();
  httpServer.closeIdleConnections();

  const finished = await Promise.race([slots.settled().then(() => true), sleep(graceMs).then(() => false)]);
  const cancelled = finished ? 0 : slots.inflight;
  if (!finished) parts.cancel();
  // Stopping the engines also aborts whatever still runs in them.
  await Promise.allSettled([engines.stopAll(), sessions.deleteAll()]);
  await Promise.race([slots.settled(), sleep(10_000)]);

  const driver = engines.main.driver;
  const leftovers = await driver.list({ [SERVER_LABELS.server]: parts.serverId }).catch(() => []);
  await Promise.allSettled(leftovers.map((c) => driver.remove(c.id)));

  // Let responses (503s, final SSE events) reach their clients, then drop every connection.
  await requests.idle(2_000);
  httpServer.closeAllConnections();
  await closed;
  return { graceful: finished, cancelled, leftoverContainers: leftovers.length, durationMs: Date.now() - started };
}

/**
 * SIGINT/SIGTERM: the first drains (`close`) and exits 0 (1 when shutdown failed); a second one
 * exits at once (the next engine start reaps what is left). An unhandled rejection is logged: it
 * must not take down a server holding other tenants' work.
 */
export function exitOnSignals(server: { close(): Promise<ShutdownReport>; graceMs: number }, log: (entry: RequestLogEntry) => void): void {
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      log({ time: new Date().toISOString(), level: "warn", msg: "second signal: exiting now", signal });
      process.exit(130);
    }
    log({ time: new Date().toISOString(), level: "info", msg: "shutting down", signal, graceMs: server.graceMs });
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
  process.on("unhandledRejection", (reason) => log({ time: new Date().toISOString(), level: "error", msg: "unhandled rejection", error: String(reason) }));
}
