import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { readFile, writeFile } from "node:fs/promises";
import { extname } from "node:path";
import { createEngine, InvalidOptionsError, type EngineOptions, type ExecutionRequest, type Isol8Engine, Isol8Error } from "@isol8/core";
import type { RemoteIsol8 } from "@isol8/remote";
import { loadCliConfig } from "../cli-config.js";
import { mark, traceDockerCalls } from "../profile.js";

mark("run command's modules loaded");

export interface RunFlags {
  eval?: string;
  runtime?: string;
  /** Instead of code: a shell command (request.cmd). */
  cmd?: string;
  /** Instead of code: a URL the engine's host fetches it from (request.codeUrl), pinned by codeHash. */
  codeUrl?: string;
  codeHash?: string;
  /** request.setupScript */
  setup?: string;
  /** request.workdir */
  workdir?: string;
  /** request.installPackages */
  install?: string[];
  /** Filtered-network rules: networkFilter.whitelist / blacklist (network "filtered"). */
  allow?: string[];
  deny?: string[];
  persistent?: boolean;
  timeout?: number;
  memory?: number;
  cpu?: number;
  pidsLimit?: number;
  net?: string;
  secret?: Record<string, string>;
  env?: Record<string, string>;
  /** Data for the program's stdin; "-" reads the CLI's own stdin. */
  stdin?: string;
  stdinFile?: string;
  maxOutput?: number;
  out?: string;
  image?: string;
  sandboxSize?: number;
  tmpSize?: number;
  config?: string;
  debug?: boolean;
  /** Run on an `isol8 serve` server at this URL instead of the local Docker engine. */
  host?: string;
  key?: string;
  sessionId?: string;
}

/** Engine options that only make sense for a local engine: not sent to a server (a session is its persistent mode there). */
const LOCAL_ONLY: readonly (keyof EngineOptions)[] = ["poolSize", "warmStart", "debug", "mode", "endWithProcess"];

/** The FILTERED network mode --allow and --deny imply. */
const FILTERED = "filtered";

/** The client of an isol8 server; its module is loaded only for --host / --session-id. */
async function remoteEngine(flags: RunFlags, overrides: EngineOptions, sessionId: string | undefined): Promise<RemoteIsol8> {
  if (!flags.host) {
    throw new InvalidOptionsError(
      "--session-id: a named session outlives this process, so it lives on an isol8 server: pass --host <url> (isol8 serve); locally, --persistent keeps one sandbox for this run only",
    );
  }
  const apiKey = flags.key ?? process.env.ISOL8_API_KEY;
  if (!apiKey) throw new InvalidOptionsError("--host needs an API key: pass --key or set ISOL8_API_KEY");
  const options = Object.fromEntries(Object.entries(overrides).filter(([key]) => !LOCAL_ONLY.includes(key as keyof EngineOptions))) as EngineOptions;
  const { RemoteIsol8 } = await import("@isol8/remote");
  return new RemoteIsol8({ host: flags.host, apiKey, ...(sessionId !== undefined && { sessionId }) }, options);
}

/** The network options of --net, --allow and --deny; a rule needs the filtered mode. */
function networkOverrides(flags: RunFlags, configured: EngineOptions["networkFilter"], remote: boolean): EngineOptions {
  const rules = flags.allow !== undefined || flags.deny !== undefined;
  if (!rules) return flags.net !== undefined ? { network: flags.net } : {};
  if (flags.net !== undefined && flags.net !== FILTERED) {
    const flag = flags.allow !== undefined ? "--allow" : "--deny";
    throw new InvalidOptionsError(`${flag}: host rules apply to the filtered network: expected --net ${FILTERED} or no --net, got --net ${flags.net}`);
  }
  // Locally the rules add to the config's filter; a server bounds them by its operator's filter itself.
  const base = remote ? undefined : configured;
  return {
    network: FILTERED,
    networkFilter: {
      ...base,
      whitelist: [...(base?.whitelist ?? []), ...(flags.allow ?? [])],
      blacklist: [...(base?.blacklist ?? []), ...(flags.deny ?? [])],
    },
  };
}

/** `isol8 run`: runs code from -e, a file, standard input, --cmd or --code-url; the program's exit code becomes ours. */
export async function runCommand(file: string | undefined, flags: RunFlags): Promise<number> {
  const config = await loadCliConfig(flags.config);
  mark("config loaded");
  const isRemote = flags.host !== undefined || flags.sessionId !== undefined;
  const overrides: EngineOptions = {
    // One execution per process: a warm pool would only create containers to throw away, and a
    // warm start (the interpreter started ahead, one more round trip) has no later run to pay off.
    poolSize: { clean: 0, dirty: 0 },
    warmStart: false,
    // The container ends with this process (Docker removes it once the connection closes, the
    // process killed included): the run returns without waiting for the removal. Not when the
    // config keeps containers after the engine stops (persist).
    endWithProcess: config.defaults.persist !== true,
    ...(flags.persistent && { mode: "persistent" }),
    ...(flags.timeout !== undefined && { timeoutMs: flags.timeout }),
    ...(flags.memory !== undefined && { memoryLimit: flags.memory }),
    ...(flags.cpu !== undefined && { cpuLimit: flags.cpu }),
    ...(flags.pidsLimit !== undefined && { pidsLimit: flags.pidsLimit }),
    ...networkOverrides(flags, config.defaults.networkFilter, isRemote),
    ...(flags.secret && { secrets: { ...config.defaults.secrets, ...flags.secret } }),
    ...(flags.maxOutput !== undefined && { maxOutputSize: flags.maxOutput }),
    ...(flags.image !== undefined && { image: flags.image }),
    ...(flags.sandboxSize !== undefined && { sandboxSize: flags.sandboxSize }),
    ...(flags.tmpSize !== undefined && { tmpSize: flags.tmpSize }),
    ...(flags.debug && { debug: true }),
  };
  if (flags.install?.length && !isRemote) {
    const network = overrides.network ?? config.defaults.network ?? "none";
    if (network === "none") {
      throw new InvalidOptionsError(
        `--install: the network is "none", so no package registry can be reached: add --net host, or --net ${FILTERED} with --allow '<registry host regex>'`,
      );
    }
  }
  // --persistent with --host and no --session-id: a new session, kept after the run (its id printed below).
  const newSession = flags.persistent && flags.host !== undefined && flags.sessionId === undefined ? `cli-${randomUUID()}` : undefined;
  const sessionId = flags.sessionId ?? newSession;
  const remote = isRemote ? await remoteEngine(flags, overrides, sessionId) : undefined;
  // Locally the engine runs the code; remotely it only knows the runtimes (a file's runtime from its extension).
  const engine = remote ? createEngine(config) : createEngine(config, overrides);
  traceDockerCalls(engine.docker.docker);
  mark("engine constructed");

  const source = await readSource(file, flags, engine.kit.runtimes.values());
  const stdin = await programStdin(flags);
  const request: ExecutionRequest = {
    ...source,
    ...(flags.setup !== undefined && { setupScript: flags.setup }),
    ...(flags.workdir !== undefined && { workdir: flags.workdir }),
    ...(flags.install?.length && { installPackages: flags.install }),
    ...(flags.env && { env: flags.env }),
    ...(stdin !== undefined && { stdin }),
    // The program's bytes, unchanged (text would turn a non-UTF-8 byte into U+FFFD).
    outputEncoding: "base64",
  };
  // Ctrl-C stops the local engine (its container ends) before the process ends.
  const interruption = remote ? undefined : stopOnSignals(() => engine.stop());
  try {
    const exitCode = await streamTo(remote ?? engine, request, flags.out);
    return interruption?.exitCode ?? exitCode;
  } catch (error) {
    // The run failed because the signal stopped it: the signal's status, not an error of isol8's.
    if (interruption?.exitCode !== undefined) return interruption.exitCode;
    throw error;
  } finally {
    interruption?.dispose();
    // A named session outlives the run (the next `run --session-id` continues it).
    if (remote) await (sessionId !== undefined ? remote.close() : remote.stop());
    else await (interruption?.stopping ?? engine.stop());
    mark("engine stopped (its container ends with the connection)");
    if (newSession)
      process.stderr.write(`isol8: the session ${newSession} is kept on ${flags.host}: continue it with --host ${flags.host} --session-id ${newSession}\n`);
  }
}

/** Exit status after a signal: 128 + its number, as a shell shows a program the signal ended. */
const SIGNAL_EXIT: Readonly<Record<"SIGINT" | "SIGTERM", number>> = { SIGINT: 130, SIGTERM: 143 };

/**
 * On the first SIGINT or SIGTERM, calls `stop` (which ends the run) instead of dying with the
 * container still running; `exitCode` is then the signal's status. A second signal ends the
 * process at once (Node's default, the listeners being gone).
 */
function stopOnSignals(stop: () => Promise<unknown>): {
  readonly exitCode: number | undefined;
  readonly stopping: Promise<unknown> | undefined;
  dispose(): void;
} {
  let exitCode: number | undefined;
  let stopping: Promise<unknown> | undefined;
  const signals = Object.keys(SIGNAL_EXIT) as (keyof typeof SIGNAL_EXIT)[];
  const dispose = () => signals.forEach((signal) => process.off(signal, onSignal));
  function onSignal(signal: NodeJS.Signals) {
    dispose();
    exitCode = SIGNAL_EXIT[signal as keyof typeof SIGNAL_EXIT];
    stopping = stop().catch((error: unknown) => process.stderr.write(`isol8: stopping after ${signal} failed: ${String(error)}\n`));
  }
  signals.forEach((signal) => process.once(signal, onSignal));
  return {
    get exitCode() {
      return exitCode;
    },
    get stopping() {
      return stopping;
    },
    dispose,
  };
}

/** What runs: code (with its runtime and extension), a command, or a URL; exactly one. */
type Source = Pick<ExecutionRequest, "code" | "cmd" | "codeUrl" | "codeHash" | "runtime" | "fileExtension">;

/** A runtime as the CLI picks it from an extension. */
interface RuntimeInfo {
  name: string;
  extensions: readonly string[];
}

/** The request's source from -e, a file, --cmd, --code-url or standard input (in that order of flags; one only). */
async function readSource(file: string | undefined, flags: RunFlags, runtimes: readonly RuntimeInfo[]): Promise<Source> {
  const given = [
    flags.eval !== undefined && "-e/--eval",
    file && "a file",
    flags.cmd !== undefined && "--cmd",
    flags.codeUrl !== undefined && "--code-url",
  ].filter((x): x is string => typeof x === "string");
  if (given.length > 1) throw new InvalidOptionsError(`isol8 run: give one of -e/--eval, a file, --cmd or --code-url, not ${given.join(" and ")}`);
  if (flags.codeHash !== undefined && flags.codeUrl === undefined)
    throw new InvalidOptionsError("--code-hash: goes with --code-url (it is the SHA-256 of the code at that URL)");
  const codeFromStdin = given.length === 0;
  if (flags.stdin !== undefined && flags.stdinFile !== undefined) throw new InvalidOptionsError("isol8 run: give either --stdin or --stdin-file, not both");
  if (flags.stdin === STDIN_DASH && codeFromStdin) {
    throw new InvalidOptionsError(
      "isol8 run: --stdin -: standard input already carries the code; give the code with -e or a file, or the program's input with --stdin-file <path>",
    );
  }
  const byExtension = (ext: string, what: string): { runtime: string; fileExtension?: string } => {
    const runtime = flags.runtime ?? runtimes.find((r) => r.extensions.includes(ext))?.name;
    if (!runtime) {
      const known = runtimes.map((r) => `${r.extensions.join("/")} → ${r.name}`).join(", ");
      throw new InvalidOptionsError(`isol8 run: cannot tell the runtime of ${what} from "${ext}" (${known}); pass --runtime`);
    }
    const fileExtension = ext && runtimes.find((r) => r.name === runtime)?.extensions.includes(ext) ? ext : undefined;
    return { runtime, ...(fileExtension && { fileExtension }) };
  };

  // Code and stdin travel as bytes: a file's or a pipe's exact bytes reach the program. (-e comes
  // from argv as a JS string: Node has already decoded it, so a non-UTF-8 byte there is lost.)
  if (flags.eval !== undefined) return { code: flags.eval, runtime: flags.runtime ?? "python" };
  if (flags.cmd !== undefined) return { cmd: flags.cmd, runtime: flags.runtime ?? "python" };
  if (flags.codeUrl !== undefined) {
    if (flags.codeHash === undefined)
      throw new InvalidOptionsError("--code-url: needs --code-hash <sha256> (64 hex digits): code from a URL runs only when its hash matches");
    let path: string;
    try {
      path = new URL(flags.codeUrl).pathname;
    } catch {
      throw new InvalidOptionsError(`--code-url: expected an http:// or https:// URL, got ${JSON.stringify(flags.codeUrl)}`);
    }
    const ext = extname(path).toLowerCase();
    const picked = flags.runtime !== undefined || ext ? byExtension(ext, flags.codeUrl) : { runtime: "python" };
    return { codeUrl: flags.codeUrl, codeHash: flags.codeHash, ...picked };
  }
  if (file) {
    const code = await readFile(file).catch((error: NodeJS.ErrnoException) => {
      throw new InvalidOptionsError(`isol8 run: cannot read ${file}: ${error.code === "ENOENT" ? "no such file" : error.message}`);
    });
    return { code, ...byExtension(extname(file).toLowerCase(), file) };
  }
  if (!process.stdin.isTTY) return { code: await readStdin(), runtime: flags.runtime ?? "python" };
  throw new InvalidOptionsError("isol8 run: give the code with -e/--eval, a file, --cmd, --code-url, or on standard input (e.g. echo 'print(1)' | isol8 run)");
}

/** `--stdin -` reads the CLI's own standard input. */
const STDIN_DASH = "-";

/** The program's stdin: --stdin's text, the CLI's own stdin (--stdin -), or --stdin-file's bytes. */
async function programStdin(flags: RunFlags): Promise<string | Buffer | undefined> {
  if (flags.stdin === STDIN_DASH) return readStdin();
  if (flags.stdinFile !== undefined) {
    const path = flags.stdinFile;
    return readFile(path).catch((error: NodeJS.ErrnoException) => {
      throw new InvalidOptionsError(`--stdin-file: cannot read ${path}: ${error.code === "ENOENT" ? "no such file" : error.message}`);
    });
  }
  return flags.stdin;
}

/**
 * Streams the program's output to ours as it arrives (or stdout to --out), byte for byte (the
 * request asks for base64 output), and returns its exit code.
 */
async function streamTo(engine: Isol8Engine, request: ExecutionRequest, out: string | undefined): Promise<number> {
  const captured: Buffer[] = [];
  const stdout = new Output(process.stdout);
  mark("request ready; executing");
  for await (const event of engine.executeStream(request)) {
    mark(`event: ${event.type}`);
    switch (event.type) {
      case "stdout": {
        const bytes = Buffer.from(event.data, "base64");
        if (out) captured.push(bytes);
        // The reader of our stdout went away (`| head`): stop the program (leaving the loop ends
        // the run), as SIGPIPE would have stopped it outside a sandbox.
        else if (!(await stdout.write(bytes))) return SIGPIPE_EXIT;
        break;
      }
      case "stderr":
        if (!process.stderr.write(Buffer.from(event.data, "base64"))) await once(process.stderr, "drain");
        break;
      case "exit":
        if (out) await writeFile(out, Buffer.concat(captured));
        if (event.result.truncated)
          process.stderr.write("isol8: the program's output went over the output limit (--max-output) and was cut; the rest was dropped\n");
        return event.result.exitCode;
      case "error":
        throw new Isol8Error((event.code as Isol8Error["code"]) ?? "ISOL8_ERR_EXECUTION", withFlagNames(event.data));
    }
  }
  throw new Isol8Error("ISOL8_ERR_EXECUTION", "the execution ended without an exit status");
}

/** The flag that sets each request field: an error about `request.workdir` names `--workdir` too. */
const FIELD_FLAGS: Readonly<Record<string, string>> = {
  cmd: "--cmd",
  codeUrl: "--code-url",
  codeHash: "--code-hash",
  setupScript: "--setup",
  workdir: "--workdir",
  installPackages: "--install",
  env: "--env",
};

/** "request.workdir: ..." → "--workdir (request.workdir): ...", for the fields a flag sets. */
function withFlagNames(message: string): string {
  return message.replace(/\brequest\.([A-Za-z]+)(?:\[\d+\])?/g, (whole, field: string) => (FIELD_FLAGS[field] ? `${FIELD_FLAGS[field]} (${whole})` : whole));
}

/** Exit status when the reader of our stdout closed it early: 128 + SIGPIPE, as a shell shows a program SIGPIPE ended. */
const SIGPIPE_EXIT = 141;

/**
 * Our stdout, written with back-pressure; notices a reader that went away (EPIPE) instead of
 * crashing on it. Its error listener stays for the process's life: an EPIPE can still arrive
 * after the last write.
 */
class Output {
  #gone = false;

  constructor(private readonly stream: NodeJS.WriteStream) {
    stream.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code !== "EPIPE") throw error;
      this.#gone = true;
    });
  }

  /** Writes, waiting while the stream's buffer is full (a fast program does not pile up in memory); false once the reader is gone. */
  async write(bytes: Buffer): Promise<boolean> {
    if (this.#gone) return false;
    if (!this.stream.write(bytes)) {
      await Promise.race([once(this.stream, "drain"), once(this.stream, "close")]).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== "EPIPE") throw error;
      });
    }
    return !this.#gone;
  }
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
