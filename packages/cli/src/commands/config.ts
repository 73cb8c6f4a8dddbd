import { createEngine } from "@isol8/core";
import { loadCliConfig } from "../cli-config.js";

/** `isol8 config`: prints the resolved config, the file it came from, and where each option came from. */
export async function configCommand(flags: { config?: string; json?: boolean }): Promise<number> {
  const config = await loadCliConfig(flags.config);
  const engine = createEngine(config);
  const fromFile = new Set(Object.keys(config.defaults));
  const options = Object.fromEntries(Object.entries(engine.options).map(([key, value]) => [key, { value, source: fromFile.has(key) ? "file" : "default" }]));
  const kit = engine.kit;
  const resolved = {
    file: config.filepath ?? null,
    plugins: config.plugins.map((p) => ({ name: p.name, source: config.hasPlugins ? "file" : "default" })),
    runtimes: kit.runtimes.names(),
    poolStrategies: kit.poolStrategies.names(),
    networkModes: kit.networkModes.names(),
    seccompModes: kit.seccompModes.names(),
    auditSinks: kit.auditSinks.names(),
    options,
  };
  process.stdout.write(`${JSON.stringify(resolved, (_key: string, v: unknown) => (v === undefined ? null : v), 2)}\n`);
  return 0;
}
