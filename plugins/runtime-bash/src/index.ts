import { definePlugin, type RuntimeDefinition } from "@isol8/kit";
import { bashContextKernel } from "./context-kernel.js";

/** Bash as the base image has it (Debian bookworm's bash). */
export const bashRuntimeDefinition: RuntimeDefinition = {
  name: "bash",
  extensions: [".sh"],
  command: (file) => ["bash", file],
  image: {
    version: "1",
    // The base already has bash; a label is the cheapest instruction that still gives the runtime its own image.
    dockerfile: "LABEL isol8.runtime.bash=1\n",
  },
  // Interpreter contexts: cells sourced by one shell, which keeps its variables, functions and cwd (src/context-kernel.ts).
  context: bashContextKernel,
};

export { BASH_CONTEXT_KERNEL, bashContextKernel } from "./context-kernel.js";

export const bashRuntime = definePlugin({
  name: "isol8:runtime-bash",
  setup: () => (kit) => kit.runtimes.register("bash", bashRuntimeDefinition, "isol8:runtime-bash"),
});

export default bashRuntime;
