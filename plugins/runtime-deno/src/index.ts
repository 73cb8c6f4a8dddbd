import { definePlugin, type RuntimeDefinition } from "@isol8/core";

/** The Deno binary, as published in the npm package `@deno/linux-x64-glibc`. */
export const DENO_VERSION = "2.9.6";

export const denoRuntimeDefinition: RuntimeDefinition = {
  name: "deno",
  extensions: [".mts"],
  // The container is the sandbox, so Deno's own permission prompts would only get in the way.
  command: (file) => ["deno", "run", "--allow-all", "--no-prompt", file],
  // DENO_DIR must be writable (the root filesystem is read-only); /tmp keeps it out of the user's /sandbox.
  env: { DENO_DIR: "/tmp/.deno", NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
  image: {
    // The binary comes from the build context, not the Dockerfile, so its version must be in the hash.
    version: `@deno/linux-x64-glibc@${DENO_VERSION}`,
    dockerfile: "COPY deno /usr/local/bin/deno\n",
    // The host fetches it with its own npm: containers may not reach the npm registry.
    context: async (helpers) => ({
      deno: { path: await helpers.npmPackageFile(`@deno/linux-x64-glibc@${DENO_VERSION}`, "deno"), mode: 0o755 },
    }),
  },
};

export const denoRuntime = definePlugin({
  name: "isol8:runtime-deno",
  setup: () => (kit) => kit.runtimes.register("deno", denoRuntimeDefinition, "isol8:runtime-deno"),
});

export default denoRuntime;
