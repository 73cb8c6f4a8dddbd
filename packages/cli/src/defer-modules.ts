import { createRequire } from "node:module";

/**
 * Parts of the Docker client's dependencies that a run over the local socket never calls, each
 * a module that exports one function, loaded at its first call instead of at start-up:
 * dockerode's BuildKit session (gRPC and protobufjs, about 110 files: only `buildImage` with
 * `version: "2"` calls it) and docker-modem's SSH transport (ssh2: only DOCKER_HOST=ssh://).
 * Together they are a third of the files and about 100 ms of every `isol8 run`'s start-up.
 */
const DEFERRED: readonly { request: string; parent: RegExp }[] = [
  { request: "./session", parent: /[\\/]dockerode[\\/]lib[\\/]docker\.js$/ },
  { request: "./ssh", parent: /[\\/]docker-modem[\\/]lib[\\/]modem\.js$/ },
];

/** The CommonJS loader's entry point every require() goes through (node:module's Module._load). */
type Load = (request: string, parent: { filename?: string } | undefined, isMain: boolean) => unknown;

let installed = false;

/**
 * Makes the CommonJS loader hand out a stand-in for each DEFERRED module: a function that loads
 * the real one at its first call and passes the call on. Only those exact (request, parent)
 * pairs; a dependency update that renames them only makes start-up slower again, never wrong.
 */
export function deferUnusedModules(): void {
  if (installed) return;
  installed = true;
  const Module = createRequire(import.meta.url)("node:module") as { _load?: Load };
  const load = Module._load;
  if (typeof load !== "function") return;
  Module._load = function (this: unknown, request, parent, isMain) {
    const filename = parent?.filename;
    if (filename && DEFERRED.some((d) => d.request === request && d.parent.test(filename))) {
      let real: ((...args: unknown[]) => unknown) | undefined;
      return function (this: unknown, ...args: unknown[]) {
        real ??= load.call(Module, request, parent, isMain) as (...args: unknown[]) => unknown;
        return real.apply(this, args);
      };
    }
    return load.call(this, request, parent, isMain);
  };
}
