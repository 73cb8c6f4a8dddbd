import { definePlugin, type PackageInstaller, type RuntimeDefinition } from "@isol8/kit";
import * as z from "zod";
import { DENO_WARM_START, DENO_WARM_START_COMMAND, DENO_WARM_START_HASH, DENO_WARM_START_PATH } from "./warm-start.js";

export const denoRuntimeOptions = z.strictObject({
  /** npm registry for installPackages (npm: specifiers). Default: npm's own. */
  registry: z.url({ error: "expected the registry URL, e.g. https://registry.example.com/" }).optional(),
});

/**
 * Deno caches `npm:` packages into DENO_DIR ahead of the run, so the code's
 * `import x from "npm:name"` finds them without a network.
 */
export function denoInstaller(options: z.output<typeof denoRuntimeOptions> = {}): PackageInstaller {
  return {
    validName: /^(?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*(?:@[A-Za-z0-9.^~<>=*+_-]+)?$/,
    command: (packages) => ["deno", "cache", "--quiet", ...packages.map((name) => `npm:${name}`)],
    env: ({ caBundle }) => ({
      ...(options.registry ? { NPM_CONFIG_REGISTRY: options.registry } : {}),
      ...(caBundle ? { DENO_CERT: caBundle } : {}),
    }),
    // Deno keys its npm cache by registry: the run must name the same one, or it fetches again
    // from npm's default registry.
    ...(options.registry ? { runEnv: { NPM_CONFIG_REGISTRY: options.registry } } : {}),
  };
}

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
    version: `@deno/linux-x64-glibc@${DENO_VERSION} warm-start@${DENO_WARM_START_HASH}`,
    dockerfile: `COPY deno /usr/local/bin/deno\nCOPY deno-warm-start.js ${DENO_WARM_START_PATH}\n`,
    // The host fetches it with its own npm: containers may not reach the npm registry.
    context: async (helpers) => ({
      deno: { path: await helpers.npmPackageFile(`@deno/linux-x64-glibc@${DENO_VERSION}`, "deno"), mode: 0o755 },
      "deno-warm-start.js": { content: DENO_WARM_START, mode: 0o644 },
    }),
  },
  packages: denoInstaller(),
  // Variables deno (and its npm, TLS and proxy set-up, ICU, V8) may read while it starts.
  warmStart: {
    command: DENO_WARM_START_COMMAND,
    startupEnv:
      /^(DENO_|NO_COLOR$|FORCE_COLOR$|NPM_CONFIG_|NODE_|TZ$|HOME$|LANG$|LANGUAGE$|LC_|XDG_|RUST_|V8_|SSL_CERT_|(HTTPS?|ALL|NO)_PROXY$|(https?|all|no)_proxy$)/,
  },
};

export const denoRuntime = definePlugin({
  name: "isol8:runtime-deno",
  options: denoRuntimeOptions,
  setup: (options) => (kit) => kit.runtimes.register("deno", { ...denoRuntimeDefinition, packages: denoInstaller(options) }, "isol8:runtime-deno"),
});

export default denoRuntime;
