#!/usr/bin/env node
import nodeModule from "node:module";
import { Command, CommanderError } from "commander";
import { Isol8Error } from "@isol8/kit/errors";
import { MIN_MEMORY_BYTES } from "@isol8/kit/sizes";
import type { BuildFlags } from "./commands/build.js";
import type { CleanupFlags } from "./commands/cleanup.js";
import type { McpFlags } from "./commands/mcp.js";
import type { RunFlags } from "./commands/run.js";
import type { ServeFlags } from "./commands/serve.js";
import type { SetupFlags } from "./commands/setup.js";
import { collect, keyValue, portNumber, positiveInt, positiveNumber, regexList, sha256Hex, size } from "./flags.js";
import { deferUnusedModules } from "./defer-modules.js";
import { mark, profiling } from "./profile.js";

mark("bin loaded (commander, flags)");
// Node 22.1 and later keep V8's compiled code of the modules a command loads between runs (in the
// OS temp dir), so a later `isol8 run` skips most of their compilation; older Node has no such call.
(nodeModule as { enableCompileCache?: () => unknown }).enableCompileCache?.();
if (profiling) process.once("exit", () => mark("process exits"));

// Each command's module (the engine and Docker client, the server, MCP) is imported inside its
// action: `isol8 --version` and `--help` load commander and the flag parsers only.

declare const __PACKAGE_VERSION__: string;

/** Exit status for isol8's own failures (bad input, Docker down), as `docker run` uses 125. */
const ISOL8_FAILURE = 125;

/** The global --config flag, as every command receives it. */
const configFlag = (command: Command): string | undefined => command.optsWithGlobals<{ config?: string }>().config;

const program = new Command()
  .name("isol8")
  .description("Run untrusted code in locked-down Docker containers")
  .version(typeof __PACKAGE_VERSION__ === "string" ? __PACKAGE_VERSION__ : "dev")
  .option("-c, --config <path>", "config file (default: search for isol8.config.ts and friends)")
  .showHelpAfterError()
  // Commander's usage errors (unknown option, missing argument) throw instead of exiting 1, so they
  // exit 125 below like every other failure of isol8's own (1 stays the program's). Set before the
  // subcommands are added: they copy it.
  .exitOverride();

program
  .command("run")
  .description("run code from -e, a file (runtime from its extension), standard input, --cmd or --code-url")
  .argument("[file]", "file to run: .py python, .js/.mjs/.cjs node, .ts bun, .mts deno, .sh bash")
  // The same run, on a server.
  .option("--host <url>", "run on an isol8 server (isol8 serve) at this URL, e.g. http://127.0.0.1:3000")
  .option("--key <key>", "API key for --host (default: ISOL8_API_KEY)")
  .option("--session-id <id>", "with --host: run in this persistent session (created on first use, kept after the run)")
  .option("--persistent", "persistent mode; with --host, in a new server session kept after the run (its id is printed)")
  .option("-e, --eval <code>", "code to run (python unless --runtime says otherwise)")
  .option("-r, --runtime <name>", "runtime to use")
  .option("--cmd <command>", "instead of code: a shell command run with bash in the runtime's image (python unless --runtime)")
  .option("--code-url <url>", "instead of code: fetch it from this URL on the engine's host (the config's defaults.codeUrl must enable it)")
  .option("--code-hash <sha256>", "the SHA-256 of the code at --code-url (64 hex digits): checked before anything runs", sha256Hex("--code-hash"))
  .option("--setup <script>", "bash script run before the code in the same sandbox; if it fails, its exit code ends the run")
  .option("--workdir <dir>", "the program's working directory, inside /sandbox or /tmp (relative: from /sandbox)")
  .option("--install <package>", "install this package before the code (repeatable; the network must reach the registry)", collect)
  .option("-t, --timeout <ms>", "time limit in milliseconds", positiveInt("--timeout"))
  .option("-m, --memory <size>", "memory limit, e.g. 512m", size("--memory", { bytes: MIN_MEMORY_BYTES, why: "Docker's minimum memory limit" }))
  .option("--cpu <cpus>", "CPU limit, e.g. 0.5", positiveNumber("--cpu"))
  .option("--pids-limit <n>", "maximum number of processes", positiveInt("--pids-limit"))
  .option("--net <mode>", "network mode: none, host, or a mode a plugin adds")
  .option("--allow <regex>", "filtered network: allow host names matching this regex (repeatable; implies --net filtered)", regexList("--allow"))
  .option("--deny <regex>", "filtered network: block host names matching this regex (repeatable; implies --net filtered)", regexList("--deny"))
  .option("--secret <KEY=VALUE>", "secret env var, masked as *** in output (repeatable)", keyValue("--secret"))
  .option("--env <KEY=VALUE>", "env var for the program (repeatable)", keyValue("--env"))
  .option("--stdin <data>", "data for the program's standard input; \"-\" reads the CLI's own standard input (with -e or a file)")
  .option("--stdin-file <path>", "file whose bytes are the program's standard input (any size)")
  .option("--max-output <bytes>", "cap on stdout and on stderr, e.g. 1m", size("--max-output"))
  .option("-o, --out <file>", "write the program's stdout to this file instead of the terminal")
  .option("--image <image>", "run in this image instead of the runtime's")
  .option("--sandbox-size <size>", "size of /sandbox", size("--sandbox-size"))
  .option("--tmp-size <size>", "size of /tmp", size("--tmp-size"))
  .option("--debug", "log engine internals to stderr")
  .action(async (file: string | undefined, flags: Omit<RunFlags, "config">, command: Command) => {
    deferUnusedModules();
    const { runCommand } = await import("./commands/run.js");
    process.exitCode = await runCommand(file, { ...flags, config: configFlag(command) });
  });

program
  .command("setup")
  .description("build the image of every registered runtime (skips up-to-date ones)")
  .option("-f, --force", "rebuild even if up to date")
  .option("-r, --runtime <name>", "build only this runtime (repeatable or comma-separated)", collect)
  .option("-v, --verbose", "show every build output line")
  .option("--push <registry>", "then push each image to <host[:port]/path> and record it by digest (for the Kubernetes driver)")
  .option("--registry-auth <user:password>", "credentials for --push (default: the Docker config's auths entry or credential helper)")
  .option("--push-manifest <file>", "where --push writes the image references (default: isol8-images.json)")
  .action(async (flags: Omit<SetupFlags, "config">, command: Command) => {
    const { setupCommand } = await import("./commands/setup.js");
    process.exitCode = await setupCommand({ ...flags, config: configFlag(command) });
  });

program
  .command("build")
  .description("build a one-off image from a runtime's: Debian packages, pip/npm packages, files, a setup script (prints its tag)")
  .requiredOption("-r, --runtime <name>", "the runtime whose image it starts from, e.g. python")
  .requiredOption("-t, --tag <name>", "the image's tag, e.g. my-python:1 (run it with isol8 run --image <name>)")
  .option("--apt <package>", "Debian package to install (repeatable)", collect)
  .option("--pip <package>", "pip package to install, python only (repeatable; the python plugin's index)", collect)
  .option("--npm <package>", "npm package to install, node or bun (repeatable; the plugin's registry)", collect)
  .option("--file <src:dest>", "copy a host file or directory to an absolute path in the image (repeatable)", collect)
  .option("--setup <script>", "bash run as root at build time, after packages and files")
  .option("--build-network <mode>", 'the build\'s network: "default" or "host" (reaches registries on 127.0.0.1)')
  .option("-f, --force", "rebuild even if up to date")
  .option("-v, --verbose", "show every build output line")
  .action(async (flags: Omit<BuildFlags, "config">, command: Command) => {
    const { buildCommand } = await import("./commands/build.js");
    process.exitCode = await buildCommand({ ...flags, config: configFlag(command) });
  });

program
  .command("config")
  .description("print the resolved config (JSON), the file it came from, and where each option came from")
  .option("--json", "print JSON (the only format: accepted for scripts written for isol8 0.20)")
  .action(async (flags: { json?: boolean }, command: Command) => {
    const { configCommand } = await import("./commands/config.js");
    process.exitCode = await configCommand({ ...flags, config: configFlag(command) });
  });

program
  .command("serve")
  .description("run the HTTP API: multi-tenant, sessions, streaming (keys: --key, ISOL8_API_KEY or the config's server.keys)")
  .option("-p, --port <port>", "port to listen on, 0 for any free one (default: ISOL8_PORT, the config's server.port, else 3000)", portNumber("--port"))
  .option("-k, --key <key>", 'API key of the tenant "default" (default: ISOL8_API_KEY)')
  .option("--bind <address>", "address to listen on (default: the config's server.host, else 127.0.0.1)")
  .option(
    "--node-id <id>",
    "this node's id behind a load balancer, in every response's X-Isol8-Node header and /metrics (default: ISOL8_NODE_ID, the config's server.nodeId, else the host name)",
  )
  .option("--ui", "serve the web playground, notebook and operator view at /ui/ (default: the config's server.ui, else off)")
  .action(async (flags: Omit<ServeFlags, "config">, command: Command) => {
    const { serveCommand } = await import("./commands/serve.js");
    process.exitCode = await serveCommand({ ...flags, config: configFlag(command) });
  });

program
  .command("mcp")
  .description("serve the Model Context Protocol over stdio (for MCP clients: tools run_code, sessions, files)")
  .option("--debug", "log engine internals to stderr")
  .action(async (flags: Omit<McpFlags, "config">, command: Command) => {
    const { mcpCommand } = await import("./commands/mcp.js");
    process.exitCode = await mcpCommand({ ...flags, config: configFlag(command) });
  });

program
  .command("cleanup")
  .description("remove every container and network isol8 made (only what carries isol8's labels)")
  .option("-f, --force", "do not ask for confirmation")
  .option("--images", "also remove isol8's images (rebuild them with isol8 setup)")
  .option("--driver <name>", 'the sandbox driver to clean up through, e.g. "kubernetes" (its plugin and options from the config; default: docker)')
  .action(async (flags: Omit<CleanupFlags, "config">, command: Command) => {
    const { cleanupCommand } = await import("./commands/cleanup.js");
    process.exitCode = await cleanupCommand({ ...flags, config: configFlag(command) });
  });

// `isol8` alone prints the help and succeeds (commander would print it as an error, exit 1).
const parsed = process.argv.length <= 2 ? Promise.resolve(program.outputHelp()) : program.parseAsync(process.argv);
parsed.catch((error: unknown) => {
  if (error instanceof CommanderError) {
    // Commander has already printed the message (and the help after it). --help and --version end here with 0.
    process.exitCode = error.exitCode === 0 ? 0 : ISOL8_FAILURE;
    return;
  }
  if (Isol8Error.isInstance(error)) {
    process.stderr.write(`isol8: ${error.message} [${error.code}]\n`);
  } else {
    process.stderr.write(`isol8: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  }
  process.exitCode = ISOL8_FAILURE;
});
