import { randomUUID } from "node:crypto";
import type { Hono } from "hono";
import { createIsol8McpServer } from "@isol8/mcp";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import type { ServerEnv } from "./env.js";
import { HttpError } from "./errors.js";
import { currentRequest, ServerHost, type AnyContext, type McpRouteDeps } from "./mcp-host.js";

export type { McpRouteDeps } from "./mcp-host.js";

/** The most MCP connections one tenant holds at once (each holds no container by itself; its sessions count against the session caps). */
const MAX_CONNECTIONS_PER_TENANT = 32;

interface Connection {
  tenant: string;
  transport: WebStandardStreamableHTTPServerTransport;
  lastUsedAt: number;
}

/**
 * The open MCP connections (mcp-session-id -> transport), each owned by the tenant whose key
 * initialized it: another tenant's key gets 404 for it, as for a connection that never was. A
 * connection ends on DELETE /mcp or after idleMs unused; then the sessions it made close, unless
 * made with keep.
 */
class McpConnections {
  readonly #byId = new Map<string, Connection>();
  readonly #deps: McpRouteDeps;

  constructor(deps: McpRouteDeps) {
    this.#deps = deps;
  }

  get(id: string, tenant: string): Connection | undefined {
    const connection = this.#byId.get(id);
    return connection?.tenant === tenant ? connection : undefined;
  }

  async open(tenant: string): Promise<Connection> {
    const mine = [...this.#byId.values()].filter((c) => c.tenant === tenant).length;
    if (mine >= MAX_CONNECTIONS_PER_TENANT) {
      throw new HttpError(
        429,
        "ISOL8_ERR_SESSION_LIMIT",
        `Tenant ${tenant} has ${mine} open MCP connections, the most allowed: end one (DELETE /mcp) or let idle ones expire`,
      );
    }
    const host = new ServerHost(tenant, this.#deps);
    const server = createIsol8McpServer(host, { version: this.#deps.version });
    const connection: Connection = {
      tenant,
      lastUsedAt: Date.now(),
      transport: new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => void this.#byId.set(id, connection),
      }),
    };
    await server.connect(connection.transport);
    server.server.onclose = () => {
      const id = connection.transport.sessionId;
      if (id !== undefined && this.#byId.get(id) === connection) this.#byId.delete(id);
      void host.dispose();
    };
    return connection;
  }

  /** Ends the connections unused for longer than idleMs (checked on each /mcp request: no timer). */
  sweep(now = Date.now()): void {
    for (const connection of this.#byId.values()) {
      if (now - connection.lastUsedAt > this.#deps.idleMs) void connection.transport.close();
    }
  }
}

const rpcError = (message: string) => ({ jsonrpc: "2.0", error: { code: -32000, message }, id: null });

/**
 * /mcp: MCP's streamable HTTP transport behind the same Bearer keys, tenants, body limit,
 * ceilings, queue and metrics as the REST routes (the middleware before every route has already
 * authenticated the request). POST carries calls (progress comes as SSE events on the call's
 * response), GET the connection's notification stream, DELETE ends the connection.
 */
export function mountMcpRoute(app: Hono<ServerEnv>, deps: McpRouteDeps): void {
  const connections = new McpConnections(deps);
  app.on(["POST", "GET", "DELETE"], "/mcp", async (c: AnyContext) => {
    connections.sweep();
    const tenant = c.get("tenant") as string;
    let parsedBody: unknown;
    if (c.req.method === "POST") {
      try {
        parsedBody = await c.req.json();
      } catch {
        return c.json({ jsonrpc: "2.0", error: { code: -32700, message: "Parse error: the body is not JSON" }, id: null }, 400);
      }
    }
    const id = c.req.header("mcp-session-id");
    let connection: Connection | undefined;
    if (id !== undefined) {
      connection = connections.get(id, tenant);
      if (!connection) return c.json(rpcError(`MCP session not found: ${id} (it ended or expired): initialize a new one`), 404);
    } else if (c.req.method === "POST" && isInitializeRequest(parsedBody)) {
      connection = await connections.open(tenant);
    } else {
      return c.json(rpcError("Bad Request: no mcp-session-id header; a connection starts with an initialize request"), 400);
    }
    connection.lastUsedAt = Date.now();
    const open = connection;
    return currentRequest.run(c, () => open.transport.handleRequest(c.req.raw, { parsedBody }));
  });
}
