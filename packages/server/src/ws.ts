import { STATUS_CODES, type IncomingMessage, type Server as HttpServer } from "node:http";
import type { Duplex } from "node:stream";
import { EXECUTE_WS_PATH, EXECUTE_WS_PROTOCOL, keyFromSubprotocols } from "@isol8/kit";
import type { Context, Hono } from "hono";
import { WebSocketServer, type WebSocket } from "ws";
import type { ServerEnv } from "./env.js";
import { HttpError } from "./errors.js";
import { WsSession, type WsSessionDeps } from "./ws-session.js";

/** How long a refused upgrade's answer may take to leave before its socket is dropped. */
const REFUSAL_FLUSH_MS = 2_000;

/** An upgrade request on its way through the app: the route accepts it by setting `accept`. */
interface PendingUpgrade {
  accept?: (ws: WebSocket) => void;
}

/**
 * The WebSocket side of `isol8 serve` (`GET /execute/ws`, see @isol8/kit's ws-wire.ts). Every
 * upgrade request is answered: one for another path gets 404 and is closed (a server that
 * listens for upgrades must answer each one, or the client waits forever). One for /execute/ws
 * goes through the Hono app like any request (request id, drain gate, authentication, the log
 * line), with a key from a subprotocol standing in for the Authorization header; the app's
 * error answer (401, 403, 503) is written back and the socket closed, and only the route's
 * accept upgrades it. The connection's run is a WsSession.
 */
export class WebSocketEndpoint {
  readonly #app: Hono<ServerEnv>;
  readonly #wss: WebSocketServer;
  readonly #pending = new WeakMap<Request, PendingUpgrade>();
  readonly #sessions = new Set<WsSession>();
  readonly #deps: WsSessionDeps;
  #draining = false;

  constructor(httpServer: HttpServer, app: Hono<ServerEnv>, deps: WsSessionDeps & { maxPayload: number }) {
    this.#app = app;
    this.#deps = deps;
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: deps.maxPayload,
      // Select "isol8" when offered; never echo the key-carrying subprotocol.
      handleProtocols: (offered) => (offered.has(EXECUTE_WS_PROTOCOL) ? EXECUTE_WS_PROTOCOL : false),
    });
    httpServer.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.#upgrade(req, socket, head));
  }

  /** The route: mounted with the others, so the middleware before it applies. */
  mount(app: Hono<ServerEnv>): void {
    app.get(EXECUTE_WS_PATH, (c) => {
      const pending = this.#pending.get(c.req.raw);
      if (!pending)
        throw new HttpError(426, "ISOL8_ERR_INVALID_REQUEST", `${EXECUTE_WS_PATH} is a WebSocket endpoint: connect with a WebSocket client`, {
          headers: { Upgrade: "websocket" },
        });
      c.set("deferLog", true);
      pending.accept = (ws) => this.#start(ws, c);
      return c.body(null, 200);
    });
  }

  /** Shutdown: connections waiting for their request, or done, close now; running ones close after their last event. */
  drain(): void {
    this.#draining = true;
    for (const session of this.#sessions) session.drain();
  }

  get connections(): number {
    return this.#sessions.size;
  }

  #start(ws: WebSocket, c: Context<ServerEnv>): void {
    const session = new WsSession(ws, c, this.#deps, () => this.#sessions.delete(session));
    this.#sessions.add(session);
    if (this.#draining) session.drain();
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on("error", () => socket.destroy());
    const path = (req.url ?? "/").split("?")[0];
    if (path !== EXECUTE_WS_PATH) {
      refuse(socket, new HttpError(404, "ISOL8_ERR_NOT_FOUND", `No WebSocket endpoint at ${path.slice(0, 200)}: this server's is ${EXECUTE_WS_PATH}`));
      return;
    }
    // What ws's handshake checks, checked first: a request it would refuse never reaches the app
    // (whose log line would then wait for a connection that never opens).
    const key = req.headers["sec-websocket-key"];
    if (
      req.method !== "GET" ||
      req.headers.upgrade?.toLowerCase() !== "websocket" ||
      typeof key !== "string" ||
      !/^[+/0-9A-Za-z]{22}==$/.test(key.trim()) ||
      !["8", "13"].includes(String(req.headers["sec-websocket-version"]))
    ) {
      refuse(
        socket,
        new HttpError(
          400,
          "ISOL8_ERR_INVALID_REQUEST",
          "Not a valid WebSocket upgrade request (RFC 6455: GET, Upgrade: websocket, Sec-WebSocket-Key, Sec-WebSocket-Version: 13)",
        ),
      );
      return;
    }
    let request: Request;
    try {
      request = toRequest(req);
    } catch {
      refuse(socket, new HttpError(400, "ISOL8_ERR_INVALID_REQUEST", "Malformed upgrade request"));
      return;
    }
    const pending: PendingUpgrade = {};
    this.#pending.set(request, pending);
    let response: Response;
    try {
      response = await this.#app.fetch(request);
    } catch {
      refuse(socket, new HttpError(500, "ISOL8_ERR_INTERNAL", "Internal server error"));
      return;
    } finally {
      this.#pending.delete(request);
    }
    const accept = pending.accept;
    if (!accept) {
      await answer(socket, response);
      return;
    }
    if (socket.destroyed) return;
    this.#wss.handleUpgrade(req, socket, head, accept);
  }
}

/** The upgrade request as a fetch Request for the app; a key in a subprotocol becomes the Authorization header. */
function toRequest(req: IncomingMessage): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(", ") : value);
  }
  const key = keyFromSubprotocols(req.headers["sec-websocket-protocol"]);
  if (key !== undefined && !headers.has("authorization")) headers.set("authorization", `Bearer ${key}`);
  return new Request(new URL(req.url ?? "/", `http://${req.headers.host ?? "localhost"}`), { method: req.method, headers });
}

/** Writes an HTTP error answer on the raw socket and closes it. */
function refuse(socket: Duplex, error: HttpError): void {
  const body = JSON.stringify(error.body());
  writeAndClose(socket, error.status, { "Content-Type": "application/json", ...error.headers }, Buffer.from(body));
}

/** Writes the app's (non-upgrade) answer on the raw socket and closes it. */
async function answer(socket: Duplex, response: Response): Promise<void> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    if (!["connection", "content-length", "transfer-encoding", "keep-alive"].includes(name)) headers[name] = value;
  });
  // Bounded: an answer that streams (no route here does) must not hold the socket.
  const body = await Promise.race([
    response.arrayBuffer().then((b) => Buffer.from(b)),
    new Promise<Buffer>((resolve) => setTimeout(() => resolve(Buffer.alloc(0)), REFUSAL_FLUSH_MS).unref()),
  ]);
  writeAndClose(socket, response.status, headers, body);
}

function writeAndClose(socket: Duplex, status: number, headers: Record<string, string>, body: Buffer): void {
  if (socket.destroyed) return;
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  lines.push("Connection: close", `Content-Length: ${body.length}`, "", "");
  socket.end(Buffer.concat([Buffer.from(lines.join("\r\n")), body]));
  setTimeout(() => socket.destroy(), REFUSAL_FLUSH_MS).unref();
}
