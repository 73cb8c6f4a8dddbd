import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, expect } from "vitest";
import { serve, type Served } from "../../server/test/serve-process.js";

/** One test file's `isol8 serve` and its MCP clients over POST /mcp (see `mcpOverHttp`). */
export interface McpOverHttp {
  /** The server: set from beforeAll on. */
  readonly served: Served;
  /** A client with the file's key, connected in beforeAll, closed in afterAll. */
  readonly client: Client;
  /** A new client (the SDK's streamable HTTP transport) with `key`: the caller closes it. */
  connect(key: string): Promise<Client>;
  /** The same, with its transport (its MCP session id, its close). */
  connectWithTransport(key: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }>;
}

/**
 * Registers the file's beforeAll and afterAll: `isol8 serve` (the built CLI) with `configFile` in a
 * scratch directory and `key` as its API key, and a client with that key; afterAll closes the
 * client, stops the server with SIGTERM, expects it to exit 0, and removes the directory. `name`
 * names the scratch directory (isol8-<name>-…) and the client (isol8-<name>-test).
 */
export function mcpOverHttp(name: string, key: string, configFile: Record<string, unknown>): McpOverHttp {
  let dir: string;
  let served: Served | undefined;
  let client: Client | undefined;

  const connectWithTransport = async (as: string) => {
    const transport = new StreamableHTTPClientTransport(new URL(`${started().url}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${as}` } } });
    const c = new Client({ name: `isol8-${name}-test`, version: "1.0.0" });
    await c.connect(transport);
    return { client: c, transport };
  };
  const started = () => {
    if (!served) throw new Error(`isol8 serve of ${name} is not started: use it inside the tests (after beforeAll)`);
    return served;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `isol8-${name}-`));
    served = await serve(dir, key, configFile);
    client = (await connectWithTransport(key)).client;
  });

  afterAll(async () => {
    await client?.close();
    started().child.kill("SIGTERM");
    expect((await started().exited).code).toBe(0);
    await rm(dir, { recursive: true, force: true });
  });

  return {
    get served() {
      return started();
    },
    get client() {
      if (!client) throw new Error(`the MCP client of ${name} is not connected: use it inside the tests (after beforeAll)`);
      return client;
    },
    connect: async (as) => (await connectWithTransport(as)).client,
    connectWithTransport,
  };
}
