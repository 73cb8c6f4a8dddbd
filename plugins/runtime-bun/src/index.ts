import { definePlugin, type PackageInstaller, type RuntimeDefinition } from "@isol8/kit";
import * as z from "zod";
import { BUN_WARM_START, BUN_WARM_START_COMMAND, BUN_WARM_START_HASH, BUN_WARM_START_PATH } from "./warm-start.js";

export const bunRuntimeOptions = z.strictObject({
  /** npm registry for installPackages. Default: npm's own. */
  registry: z.url({ error: "expected the registry URL, e.g. https://registry.example.com/" }).optional(),
});

/** `bun add` in /sandbox: packages land in /sandbox/node_modules, where bun resolves them. */
export function bunInstaller(options: z.output<typeof bunRuntimeOptions> = {}): PackageInstaller {
  return {
    validName: /^(?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*(?:@[A-Za-z0-9.^~<>=*+_-]+)?$/,
    command: (packages, { caBundle }) => [
      "bun",
      "add",
      "--cwd",
      "/sandbox",
      "--no-save",
      "--no-progress",
      "--ignore-scripts",
      ...(options.registry ? ["--registry", options.registry] : []),
      ...(caBundle ? ["--cafile", caBundle] : []),
      ...packages,
    ],
    env: ({ caBundle }) => ({ ...(caBundle ? { NODE_EXTRA_CA_CERTS: caBundle } : {}) }),
    // Derived images: a project beside bun, with /node_modules linked to its node_modules, where
    // bun resolves it from /sandbox (the parent directory's node_modules). No cache left in the image.
    imageCommand: (packages, { caBundle }) => [
      "sh",
      "-c",
      'mkdir -p /usr/local/lib/isol8-bun && cd /usr/local/lib/isol8-bun && bun add "$@" && ln -sfn /usr/local/lib/isol8-bun/node_modules /node_modules',
      "sh",
      "--no-progress",
      "--no-cache",
      "--ignore-scripts",
      ...(options.registry ? ["--registry", options.registry] : []),
      ...(caBundle ? ["--cafile", caBundle] : []),
      ...packages,
    ],
  };
}

/** The Bun binary, as published in the npm package `@oven/bun-linux-x64`. */
export const BUN_VERSION = "1.4.5";

export const bunRuntimeDefinition: RuntimeDefinition = {
  name: "bun",
  extensions: [".ts"],
  command: (file) => ["bun", "run", file],
  // The root filesystem is read-only: point every cache Bun may write at /tmp (a tmpfs).
  env: {
    NO_COLOR: "1",
    DO_NOT_TRACK: "1",
    BUN_INSTALL_CACHE_DIR: "/tmp/.bun/install-cache",
    BUN_RUNTIME_TRANSPILER_CACHE_PATH: "/tmp/.bun/transpiler-cache",
    XDG_CACHE_HOME: "/tmp/.cache",
  },
  image: {
    // The binary comes from the build context, not the Dockerfile, so its version must be in the hash.
    version: `@oven/bun-linux-x64@${BUN_VERSION} warm-start@${BUN_WARM_START_HASH}`,
    dockerfile: `COPY bun /usr/local/bin/bun\nCOPY bun-warm-start.js ${BUN_WARM_START_PATH}\n`,
    // The host fetches it with its own npm: containers may not reach the npm registry.
    context: async (helpers) => ({
      bun: { path: await helpers.npmPackageFile(`@oven/bun-linux-x64@${BUN_VERSION}`, "bin/bun"), mode: 0o755 },
      "bun-warm-start.js": { content: BUN_WARM_START, mode: 0o644 },
    }),
  },
  packages: bunInstaller(),
  // Bun keeps every variable it started with (the default environment of Bun.spawn and of a
  // Worker, Bun.which's PATH), whatever the program does to process.env: an execution whose
  // environment differs from the warm start's in any variable runs cold.
  warmStart: { command: BUN_WARM_START_COMMAND, startupEnv: /^/ },
};

export const bunRuntime = definePlugin({
  name: "isol8:runtime-bun",
  options: bunRuntimeOptions,
  setup: (options) => (kit) => kit.runtimes.register("bun", { ...bunRuntimeDefinition, packages: bunInstaller(options) }, "isol8:runtime-bun"),
});

export default bunRuntime;
