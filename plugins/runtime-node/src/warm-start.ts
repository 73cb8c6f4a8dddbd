import { createHash } from "node:crypto";
import { JS_WARM_START_READ_GO } from "@isol8/kit";

/** Where the node image keeps the warm-start preload (outside /sandbox and /tmp: nothing a program can change). */
export const NODE_WARM_START_PATH = "/usr/local/lib/isol8/node-warm-start.cjs";

/** The main file a warm start can run: the one `command(file)` names for code given inline (`.js`, the first extension). */
const NODE_WARM_MAIN = "/sandbox/main.js";

/**
 * The standby (packages/core/executor/PROTOCOL.md, "The standby"): a real `node /sandbox/main.js`
 * whose start-up stops in a `--require` preload, before the main module is read. Node computes
 * the main entry and runs preloads in the same start-up as `node main.js`, so after the preload
 * returns, everything (module resolution from /sandbox, CommonJS or ESM by syntax or
 * package.json "type", `require.main`, stack traces, uncaught errors, unhandled rejections,
 * exit codes) is node's own path for `node /sandbox/main.js`. stdin is /dev/null from the start
 * (a fresh run without stdin has it); the stdin pipe the executor gave stays on fd 62 for a run
 * that execs instead. The control and ready pipes move to fds 60 and 61 (bash: dash takes only
 * one digit), so node's own descriptors get the numbers a fresh start gives them, and the
 * program's first open() the same number too.
 */
export const NODE_WARM_START_COMMAND = ["bash", "-c", `exec node -r ${NODE_WARM_START_PATH} ${NODE_WARM_MAIN} 60<&3 3<&- 61<&4 4<&- 62<&0 </dev/null`];

/**
 * The preload. It waits on fd 3 for the GO message; with the warm flag, no stdin, and the
 * request's argv `node /sandbox/main.js`, it applies the request's environment and working
 * directory, removes its own traces (require.cache, the resolution cache, `process.execArgv`,
 * fds 60-62) and returns: node goes on to load the main module. Anything else is exec'd (through
 * bash, which puts stdin in place: node cannot dup2), so it runs as a cold start would.
 *
 * In a worker thread (which loads `--require` preloads too) it only removes itself.
 */
export const NODE_WARM_START = String.raw`"use strict";
(function isol8WarmStart() {
  const Module = require("module");
  const forget = () => {
    delete require.cache[__filename];
    for (const key of Object.keys(Module._pathCache)) if (Module._pathCache[key] === __filename) delete Module._pathCache[key];
    process.execArgv = [];
  };
  if (!require("worker_threads").isMainThread) return forget();
  ${JS_WARM_START_READ_GO}
  const { flags, argv, cwd, stdinPath } = go;
  const env = {};
  for (const entry of go.envEntries) {
    const eq = entry.indexOf("=");
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  const warm = flags & 2 && !(flags & 4) && !stdinPath && argv.length === 2 && argv[0] === "node" && argv[1] === process.argv[1];
  try {
    process.chdir(cwd);
  } catch (error) {
    fs.writeSync(2, "isol8: " + cwd + ": " + error.message + "\n");
    process.exit(126);
  }
  if (!warm) {
    // As the executor would start it: stdin from the file, the run's pipe, or /dev/null (fd 0
    // already); nothing more open; the request's environment only (env from an empty one).
    const start = 's=$1 k=$2; shift 2; if [ -n "$s" ]; then exec <"$s" || exit 1; elif [ "$k" = 1 ]; then exec <&62; fi; exec 62<&-; exec -c /usr/bin/env -- "$@"';
    const entries = Object.entries(env).map(([name, value]) => name + "=" + value);
    process.execve("/bin/bash", ["bash", "-c", start, "bash", stdinPath, flags & 4 ? "1" : "0", ...entries, ...argv], {});
  }
  fs.closeSync(62);
  for (const name of Object.keys(process.env)) delete process.env[name];
  Object.assign(process.env, env);
  forget();
})();
`;

/** Part of the image's version: a changed preload is a new image. */
export const NODE_WARM_START_HASH = createHash("sha256").update(NODE_WARM_START).digest("hex").slice(0, 12);
