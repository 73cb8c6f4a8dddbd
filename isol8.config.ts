import { defineConfig } from "@isol8/core";
import { bashRuntime } from "@isol8/plugin-runtime-bash";
import { bunRuntime } from "@isol8/plugin-runtime-bun";
import { denoRuntime } from "@isol8/plugin-runtime-deno";
import { nodeRuntime } from "@isol8/plugin-runtime-node";
import { pythonRuntime } from "@isol8/plugin-runtime-python";
import { seccomp } from "@isol8/plugin-seccomp";
import { stdoutAudit } from "@isol8/plugin-audit-stdout";
import { networkFilter } from "@isol8/plugin-network-filter";
import { fastPool } from "@isol8/plugin-pool-fast";
import { securePool } from "@isol8/plugin-pool-secure";

// The default configuration: the plugins a batteries-included engine has, and the engine's
// defaults spelled out. `isol8 config` shows what this resolves to.
export default defineConfig({
  plugins: [pythonRuntime(), nodeRuntime(), bunRuntime(), denoRuntime(), bashRuntime(), fastPool(), securePool(), seccomp(), networkFilter(), stdoutAudit()],
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
