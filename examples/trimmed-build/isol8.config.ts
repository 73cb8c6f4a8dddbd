import { defineConfig } from "@isol8/core";
import { pythonRuntime } from "@isol8/plugin-runtime-python";

// Only what this app needs: the python runtime. No other runtime, pool or policy plugin is
// imported, so none ends up in the bundle.
export default defineConfig({
  plugins: [pythonRuntime()],
  defaults: { timeoutMs: 10_000, memoryLimit: "256m" },
});
