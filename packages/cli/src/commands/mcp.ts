import { createEngine, createLogger, type DockerIsol8 } from "@isol8/core";
import { describeRuntimes } from "@isol8/kit";
import { EngineHost, serveStdio } from "@isol8/mcp";
import { loadCliConfig } from "../cli-config.js";

export interface McpFlags {
  config?: string;
  debug?: boolean;
}

/** The config's server.policy.maxTimeoutMs, when it sets one. */
function configuredMaxTimeout(server: unknown): number | undefined {
  const value = (server as { policy?: { maxTimeoutMs?: unknown } } | undefined)?.policy?.maxTimeoutMs;
  return typeof value === "number" ? value : undefined;
}

/**
 * `isol8 mcp`: the Model Context Protocol over stdio, for an MCP client that starts isol8 as a
 * subprocess. The config's plugins and engine defaults apply (and its server.policy.maxTimeoutMs
 * as the timeout ceiling). stdout carries protocol messages only: the engine logs to stderr.
 * Ends when the client closes the connection; every session's sandbox is removed then.
 */
export async function mcpCommand(flags: McpFlags): Promise<number> {
  const config = await loadCliConfig(flags.config);
  const logger = createLogger({ debug: flags.debug, name: "isol8-mcp" });
  const engine: DockerIsol8 = createEngine(config, { mode: "ephemeral" }, { logger });
  await engine.start();
  const host = new EngineHost({
    engine,
    createSessionEngine: () => createEngine(config, { mode: "persistent" }, { logger }),
    runtimes: describeRuntimes(engine.kit.runtimes.values()),
    maxTimeoutMs: configuredMaxTimeout(config.server) ?? engine.options.timeoutMs,
  });
  logger.info("serving MCP on stdio", { runtimes: host.runtimes().map((r) => r.name), pid: process.pid });
  // A client that kills the server instead of closing stdin must not leave session sandboxes behind.
  const onSignal = (signal: NodeJS.Signals) => {
    logger.info("signal: closing sessions and stopping", { signal });
    void Promise.allSettled([host.dispose(), engine.stop()]).then(() => process.exit(0));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    await serveStdio(host);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await engine.stop();
    logger.info("MCP connection closed: sessions and engine stopped");
  }
  return 0;
}
