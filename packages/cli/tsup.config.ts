import { cpSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { Plugin } from "esbuild";
import { defineConfig, type Options } from "tsup";

const pkg = JSON.parse(readFileSync(new URL("./package.json", import.meta.url), "utf8"));

/** scripts/build.mjs builds into dist.next/ and then swaps it in; tsup alone writes dist/. */
const outDir = process.env.ISOL8_CLI_OUT_DIR ?? "dist";

const common: Options = {
  format: ["esm"],
  outDir,
  sourcemap: true,
  // Not here: the two builds below write to outDir at the same time (scripts/build.mjs starts from an empty one).
  clean: false,
  target: "node20",
  tsconfig: "tsconfig.build.json",
  define: { __PACKAGE_VERSION__: JSON.stringify(pkg.version) },
};

/**
 * Modules of the Docker client a run over the local socket never calls, kept out of the bundle
 * and loaded from the installed packages at their first use (src/defer-modules.ts does the same
 * for the unbundled loader): dockerode's BuildKit session (gRPC, protobufjs: only `buildImage`
 * with `version: "2"`), its BuildKit status decoder (protobufjs, and a .proto file it finds by
 * `__dirname`), and docker-modem's SSH transport (ssh2: only DOCKER_HOST=ssh://). Each is reached
 * through @isol8/core (a dependency of this package), which depends on dockerode.
 */
const LAZY: readonly { request: string; importer: RegExp; load: string; call: boolean }[] = [
  { request: "./session", importer: /[\\/]dockerode[\\/]lib[\\/]docker\.js$/, load: 'dockerode()("./session")', call: true },
  { request: "./buildkit", importer: /[\\/]dockerode[\\/]lib[\\/]docker\.js$/, load: 'dockerode()("./buildkit")', call: false },
  { request: "./ssh", importer: /[\\/]docker-modem[\\/]lib[\\/]modem\.js$/, load: 'createRequire(dockerode().resolve("docker-modem"))("./ssh")', call: true },
];

const lazyDockerExtras: Plugin = {
  name: "isol8-lazy-docker-extras",
  setup(build) {
    build.onResolve({ filter: /^\.\/(session|buildkit|ssh)$/ }, (args) => {
      const lazy = LAZY.find((l) => l.request === args.path && l.importer.test(args.importer));
      return lazy ? { path: lazy.request, namespace: "isol8-lazy" } : undefined;
    });
    build.onLoad({ filter: /.*/, namespace: "isol8-lazy" }, (args) => {
      const lazy = LAZY.find((l) => l.request === args.path)!;
      const dockerode =
        'const { createRequire } = require("node:module");\nconst dockerode = () => createRequire(createRequire(require.resolve("@isol8/core")).resolve("dockerode"));\n';
      // A module that exports one function (required at start-up): a stand-in that loads it at its first call.
      const contents = lazy.call
        ? `${dockerode}let real;\nmodule.exports = function (...args) {\n  real ??= ${lazy.load};\n  return real.apply(this, args);\n};\n`
        : `${dockerode}module.exports = ${lazy.load};\n`;
      return { contents, loader: "js", resolveDir: "." };
    });
  },
};

export default defineConfig([
  // The library: its dependencies stay packages of their own.
  { ...common, entry: { index: "src/index.ts" }, dts: { entry: { index: "src/index.ts" } } },
  // The `isol8` command, bundled: a command loads a few files instead of hundreds (module loading
  // was most of `isol8 run`'s own start-up). Each command stays a chunk of its own, imported by its
  // action, so `isol8 --version` loads commander and the flag parsers only.
  {
    ...common,
    entry: { bin: "src/bin.ts" },
    splitting: true,
    platform: "node",
    // Everything but what a command loads only on request from the installed packages: the
    // TypeScript compiler (cosmiconfig's optional loader; never used: jiti loads a .ts config),
    // and the isol8 server's client (run --host) with its HTTP stack.
    // jiti (a .ts config's loader) stays a package too: it loads its transpiler from files beside its own.
    noExternal: [/^(?!typescript$|@isol8\/remote$|undici$|jiti$)/],
    external: ["typescript", "@isol8/remote", "undici", "jiti"],
    esbuildPlugins: [lazyDockerExtras],
    // CommonJS modules in an ES module bundle call require(): give them node's.
    banner: { js: 'import { createRequire as __isol8CreateRequire } from "node:module";\nconst require = __isol8CreateRequire(import.meta.url);' },
    esbuildOptions(options) {
      // @isol8/core's bare import of its own helper chunk (it has no side effects).
      options.logOverride = { "ignored-bare-import": "silent" };
    },
    // The image builds (isol8 setup, isol8 build) compile the executor from its source, found by
    // walking up from the bundled @isol8/core code: dist/executor/ (inside the package's "files").
    async onSuccess() {
      const core = dirname(createRequire(import.meta.url).resolve("@isol8/core/package.json"));
      cpSync(join(core, "executor", "isol8-executor.c"), join(outDir, "executor", "isol8-executor.c"));
    },
  },
]);
