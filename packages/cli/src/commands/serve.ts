import { startServer, type ApiKey } from "@isol8/server";
import { loadCliConfig } from "../cli-config.js";
import { portNumber } from "../flags.js";

export interface ServeFlags {
  port?: number;
  key?: string;
  bind?: string;
  nodeId?: string;
  /** Serve the web playground under /ui (the config's server.ui). */
  ui?: boolean;
  config?: string;
}

/** --ui turns the page on over the config's server section (which the server validates). */
function uiOver<T>(server: T, ui: boolean | undefined): T | Record<string, unknown> {
  if (!ui) return server;
  return { ...(server !== null && typeof server === "object" ? server : {}), ui: true };
}

function nodeIdOver<T>(server: T, nodeId: string | undefined): T | Record<string, unknown> {
  if (nodeId === undefined) return server;
  return { ...(server !== null && typeof server === "object" ? server : {}), nodeId };
}

/**
 * `isol8 serve`: the HTTP API. Plugins and engine defaults come from the config, as for `run`;
 * its `server` section holds API keys (with tenants), policy ceilings and limits. --key (or
 * ISOL8_API_KEY) adds a key for the tenant "default". SIGINT/SIGTERM shut down gracefully.
 */
export async function serveCommand(flags: ServeFlags): Promise<number> {
  const config = await loadCliConfig(flags.config);
  const envPort = process.env.ISOL8_PORT;
  const port = flags.port ?? (envPort ? portNumber("ISOL8_PORT")(envPort) : undefined);
  const key = flags.key ?? process.env.ISOL8_API_KEY;
  const keys: ApiKey[] = key ? [{ key, tenant: "default" }] : [];
  await startServer({
    plugins: config.plugins,
    defaults: config.defaults,
    // --node-id (or ISOL8_NODE_ID) over the config's server.nodeId; the server validates it.
    config: uiOver(nodeIdOver(config.server, flags.nodeId ?? process.env.ISOL8_NODE_ID), flags.ui),
    configPath: config.filepath,
    keys,
    port,
    host: flags.bind,
  });
  // The server runs until a signal; its handler exits the process.
  return new Promise<number>(() => undefined);
}
