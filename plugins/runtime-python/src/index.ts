import { definePlugin, type RuntimeDefinition } from "@isol8/core";

/** Python 3 from Debian bookworm's packages (containers reach Debian's mirror, not PyPI or python.org). */
export const pythonRuntimeDefinition: RuntimeDefinition = {
  name: "python",
  extensions: [".py"],
  command: (file) => ["python3", file],
  // Unbuffered so output interleaves as written; no .pyc files: the root filesystem is read-only.
  env: { PYTHONUNBUFFERED: "1", PYTHONDONTWRITEBYTECODE: "1", PIP_DISABLE_PIP_VERSION_CHECK: "1" },
  image: {
    // Debian's python3 is fixed by the base suite (bookworm: 3.11); bump to pick up a recipe change.
    version: "1",
    // pip stays for later package installs into the sandbox.
    dockerfile: "RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-pip && rm -rf /var/lib/apt/lists/*\n",
  },
};

export const pythonRuntime = definePlugin({
  name: "isol8:runtime-python",
  setup: () => (kit) => kit.runtimes.register("python", pythonRuntimeDefinition, "isol8:runtime-python"),
});

export default pythonRuntime;
