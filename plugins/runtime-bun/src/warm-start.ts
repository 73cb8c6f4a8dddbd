import { createHash } from "node:crypto";
import { JS_WARM_START_READ_GO } from "@isol8/kit";

/** Where the bun image keeps the warm-start preload (outside /sandbox and /tmp: nothing a program can change). */
export const BUN_WARM_START_PATH = "/usr/local/lib/isol8/bun-warm-start.js";

/** The command a warm start can run: `command(file)` for code given inline (`.ts`, the only extension). */
const BUN_WARM_ARGV = ["bun", "run", "/sandbox/main.ts"];
const BUN_WARM_MAIN = BUN_WARM_ARGV[2]!;

/**
 * The standby (packages/core/executor/PROTOCOL.md, "The standby"): a real `bun run
 * /sandbox/main.ts` with a `--preload` module that waits for the GO message. Bun evaluates
 * preloads after it has found the entry point but before it reads it, so after the preload the
 * program runs on bun's own path: `process.argv`, `Bun.main`, `import.meta.main`,
 * `require.main`, TypeScript, ESM and CommonJS, module resolution, stack traces, uncaught errors
 * and rejections, exit codes.
 *
 * Bun refuses to start when the entry point does not exist, and a pool's clean /sandbox is
 * empty: the shell makes an empty /sandbox/main.ts when there is none (noclobber: never over a
 * file a persistent sandbox kept) and keeps it open on fd 63, so the preload can tell whether
 * the request's files replaced it (the executor unlinks a file before writing it: the
 * placeholder's link count is then 0). bun starts with the environment the executor gave (env
 * removes what bash added to it). stdin is /dev/null from the start (as a fresh run without
 * stdin has it); the executor's stdin pipe waits on fd 62. The control and ready pipes move to
 * fds 60 and 61 (bash: dash takes only one digit), so bun's own descriptors get the numbers a
 * fresh start gives them.
 */
export const BUN_WARM_START_COMMAND = [
  "bash",
  "-c",
  `if [ ! -e ${BUN_WARM_MAIN} ] && [ ! -L ${BUN_WARM_MAIN} ]; then set -C; exec 63>${BUN_WARM_MAIN}; set +C; fi; exec /usr/bin/env -u PWD -u SHLVL -u _ ${BUN_WARM_ARGV.slice(0, 2).join(" ")} --preload ${BUN_WARM_START_PATH} ${BUN_WARM_MAIN} 60<&3 3<&- 61<&4 4<&- 62<&0 </dev/null`,
];

/**
 * The preload (plain CommonJS: nothing to transpile). It waits on fd 60 for the GO message. With
 * the warm flag, the request's argv equal to the standby's, the working directory the one bun
 * started in (/sandbox: bun reads bunfig.toml and .env files from there at start-up), the
 * request's own /sandbox/main.ts in place, and none of the files bun reads while it starts in
 * /sandbox (package.json, tsconfig.json, bunfig.toml, .env*: this bun looked for them when
 * /sandbox did not have them yet), and the environment bun started with (bun
 * keeps a copy of it that a program cannot change: `Bun.spawn`'s and a `Worker`'s default
 * environment), it puts stdin in place (the request's file or the stdin pipe, dup2 through bun:ffi), removes its own traces
 * (`process.execArgv`, its descriptors) and returns: bun goes on to read and run the main module. Anything else is exec'd (through bash,
 * which puts stdin in place), as the executor would start it, after removing the placeholder
 * main.ts if the request did not replace it.
 *
 * What differs for the program, besides /proc/self/cmdline: `require.cache` lists the preload's
 * path too (bun registers a preload after evaluating it; deleting the entry from the preload
 * does not hold).
 */
export const BUN_WARM_START = String.raw`"use strict";
(function isol8WarmStart() {
  // Bun keeps the environment it started with (Bun.spawn's and a Worker's default, Bun.which's PATH), not process.env.
  const startEnv = Object.entries(process.env).filter(([, value]) => value !== undefined).map(([name, value]) => name + "=" + value).sort();
  ${JS_WARM_START_READ_GO}
  const { flags, argv, envEntries, cwd, stdinPath } = go;
  // The placeholder main.ts the shell made (fd 63), if any: still linked means the request did not write its own.
  let placeholderLeft = false;
  try {
    placeholderLeft = fs.fstatSync(63).nlink > 0;
    fs.closeSync(63);
  } catch {}
  if (placeholderLeft) fs.unlinkSync(${JSON.stringify(BUN_WARM_MAIN)});
  const expected = ${JSON.stringify(BUN_WARM_ARGV)};
  const readAtStart = (name) => /^(package\.json|tsconfig\.json|jsconfig\.json|bunfig\.toml|\.bunfig\.toml|\.env.*)$/.test(name);
  const sameEnv = envEntries.length === startEnv.length && [...envEntries].sort().every((entry, i) => entry === startEnv[i]);
  // The request's stdin file, opened as the program's user (a file it cannot open: the exec'd command reports it as a cold start would).
  let stdinFd = -1;
  if (stdinPath) try { stdinFd = fs.openSync(stdinPath, "r"); } catch {}
  const warm = (flags & 2) !== 0 && sameEnv && (!stdinPath || stdinFd >= 0) && !placeholderLeft && cwd === process.cwd() && argv.length === expected.length && argv.every((arg, i) => arg === expected[i]) &&
    !fs.readdirSync("/sandbox").some(readAtStart);
  try {
    process.chdir(cwd);
  } catch (error) {
    fs.writeSync(2, "isol8: " + cwd + ": " + error.message + "\n");
    process.exit(126);
  }
  if (!warm) {
    if (stdinFd >= 0) fs.closeSync(stdinFd);
    // As the executor would start it: stdin from the file, the run's pipe, or /dev/null (fd 0
    // already); nothing more open; the request's environment only (env from an empty one).
    const start = 's=$1 k=$2; shift 2; if [ -n "$s" ]; then exec <"$s" || exit 1; elif [ "$k" = 1 ]; then exec <&62; fi; exec 62<&-; exec -c /usr/bin/env -- "$@"';
    process.execve("/bin/bash", ["bash", "-c", start, "bash", stdinPath, flags & 4 ? "1" : "0", ...envEntries, ...argv], {});
  }
  if (stdinFd >= 0 || flags & 4) {
    const { dlopen } = require("bun:ffi");
    const libc = dlopen("libc.so.6", { dup2: { args: ["i32", "i32"], returns: "i32" } });
    libc.symbols.dup2(stdinFd >= 0 ? stdinFd : 62, 0);
    libc.close();
    if (stdinFd >= 0) fs.closeSync(stdinFd);
  }
  fs.closeSync(62);
  delete require.cache["bun:ffi"];
  process.execArgv = [];
})();
`;

/** Part of the image's version: a changed preload is a new image. */
export const BUN_WARM_START_HASH = createHash("sha256").update(BUN_WARM_START).digest("hex").slice(0, 12);
