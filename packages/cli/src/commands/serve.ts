import { startServer, type ApiKey } from "@isol8/server";
import { loadCliConfig } from "../cli-config.js";
import { portNumber } from "../flags.js";

export interface ServeFlags {
  port?: number;
  key?: string;
  bind?: string;
  config?: string;
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
    config: config.server,
    configPath: config.filepath,
    keys,
    port,
    host: flags.bind,
  });
  // The server runs until a signal; its handler exits the process.
  return new Promise<number>(() => undefined);
}
