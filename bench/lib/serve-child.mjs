// `isol8 serve` for the bench: the server package's startServer (what the CLI's serve runs) on
// 127.0.0.1 with an ephemeral port and a random key, in a process of its own. Its engines carry the
// bench's observing plugins so the parent can ask, over IPC, whether the pool has settled.
// Usage (forked): serve-child.mjs '<json { image, apiKey, runtime }>'
import { importWorkspace } from "./workspace.mjs";
import { EngineObserver, isol8, observingPlugins } from "./engines.mjs";

const cfg = JSON.parse(process.argv[2]);
const observer = new EngineObserver();

let server;
try {
  const { startServer } = await importWorkspace("@isol8/server");
  let url;
  server = await startServer({
    plugins: isol8.defaultPlugins(...observingPlugins(observer)),
    defaults: { image: cfg.image, poolStrategy: "fast", poolSize: { clean: 1, dirty: 1 } },
    // As `isol8 serve` runs it (request log on, the default), its lines discarded by `log` below.
    config: { keys: [{ key: cfg.apiKey, tenant: "bench" }], prewarm: [cfg.runtime], requestLog: true },
    host: "127.0.0.1",
    port: 0,
    handleSignals: true,
    log: (entry) => {
      if (entry.msg === "listening") url = entry.url;
    },
  });
  url ??= server.url ?? server.address?.url;
  process.send({ type: "ready", url });
} catch (error) {
  process.send({ type: "error", error: String(error?.stack ?? error).slice(0, 1500) });
  process.exit(1);
}

process.on("message", async (message) => {
  if (message.type === "settle") {
    const waited = await observer.settled(message.runtime, { timeoutMs: 20_000 });
    process.send({ type: "settled", id: message.id, waited });
  } else if (message.type === "stop") {
    const report = await server.close().catch((error) => ({ error: String(error) }));
    process.send({ type: "stopped", report });
    setTimeout(() => process.exit(0), 50);
  }
});
process.on("disconnect", () => {
  server?.close().finally(() => process.exit(0));
});
