import { defaultPlugins, defineConfig } from "isol8";

// The default configuration: the plugins a batteries-included engine has (defaultPlugins is
// the one list of them), and the engine's defaults spelled out. `isol8 config` shows what this resolves to.
export default defineConfig({
  plugins: defaultPlugins(),
  defaults: {
    mode: "ephemeral",
    network: "none",
    memoryLimit: "512m",
    cpuLimit: 1,
    pidsLimit: 64,
    readonlyRootFs: true,
    maxOutputSize: "1m",
    timeoutMs: 30_000,
    poolStrategy: "fast",
    poolSize: { clean: 1, dirty: 1 },
  },
});
