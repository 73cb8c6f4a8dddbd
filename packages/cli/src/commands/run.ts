import { once } from "node:events";
import { readFile, writeFile } from "node:fs/promises";
import { extname } from "node:path";
import { createEngine, InvalidOptionsError, type EngineOptions, type ExecutionRequest, type Isol8Engine, Isol8Error } from "@isol8/core";
import { RemoteIsol8 } from "@isol8/remote";
import { loadCliConfig } from "../cli-config.js";

export interface RunFlags {
  eval?: string;
  runtime?: string;
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

/** Engine options that only make sense for a local engine: not sent to a server. */
const LOCAL_ONLY: readonly (keyof EngineOptions)[] = ["poolSize", "debug"];

function remoteEngine(flags: RunFlags, overrides: EngineOptions): RemoteIsol8 {
  if (!flags.host) throw new InvalidOptionsError("--session-id needs --host: a session lives on a server");
  const apiKey = flags.key ?? process.env.ISOL8_API_KEY;
  if (!apiKey) throw new InvalidOptionsError("--host needs an API key: pass --key or set ISOL8_API_KEY");
  const options = Object.fromEntries(Object.entries(overrides).filter(([key]) => !LOCAL_ONLY.includes(key as keyof EngineOptions))) as EngineOptions;
  return new RemoteIsol8({ host: flags.host, apiKey, ...(flags.sessionId !== undefined && { sessionId: flags.sessionId }) }, options);
}

/** `isol8 run`: runs code from -e, a file, or standard input; the program's exit code becomes ours. */
export async function runCommand(file: string | undefined, flags: RunFlags): Promise<number> {
  const config = await loadCliConfig(flags.config);
  const overrides: EngineOptions = {
    // One execution per process: a warm pool would only create containers to throw away.
    poolSize: { clean: 0, dirty: 0 },
    ...(flags.timeout !== undefined && { timeoutMs: flags.timeout }),
    ...(flags.memory !== undefined && { memoryLimit: flags.memory }),
    ...(flags.cpu !== undefined && { cpuLimit: flags.cpu }),
    ...(flags.pidsLimit !== undefined && { pidsLimit: flags.pidsLimit }),
    ...(flags.net !== undefined && { network: flags.net }),
    ...(flags.secret && { secrets: { ...config.defaults.secrets, ...flags.secret } }),
    ...(flags.maxOutput !== undefined && { maxOutputSize: flags.maxOutput }),
    ...(flags.image !== undefined && { image: flags.image }),
    ...(flags.sandboxSize !== undefined && { sandboxSize: flags.sandboxSize }),
    ...(flags.tmpSize !== undefined && { tmpSize: flags.tmpSize }),
    ...(flags.debug && { debug: true }),
  };
  const remote = flags.host !== undefined || flags.sessionId !== undefined ? remoteEngine(flags, overrides) : undefined;
  // Locally the engine runs the code; remotely it only knows the runtimes (a file's runtime from its extension).
  const engine = remote ? createEngine(config) : createEngine(config, overrides);

  // Code and stdin travel as bytes: a file's or a pipe's exact bytes reach the program. (-e comes
  // from argv as a JS string: Node has already decoded it, so a non-UTF-8 byte there is lost.)
  let code: string | Buffer;
  let runtime = flags.runtime;
  let fileExtension: string | undefined;
  const codeFromStdin = flags.eval === undefined && !file;
  if (flags.stdin !== undefined && flags.stdinFile !== undefined) throw new InvalidOptionsError("isol8 run: give either --stdin or --stdin-file, not both");
  if (flags.stdin === STDIN_DASH && codeFromStdin) {
    throw new InvalidOptionsError(
      "isol8 run: --stdin -: standard input already carries the code; give the code with -e or a file, or the program's input with --stdin-file <path>",
    );
  }
  if (flags.eval !== undefined) {
    if (file) throw new InvalidOptionsError("isol8 run: give either -e/--eval or a file, not both");
    code = flags.eval;
    runtime ??= "python";
  } else if (file) {
    code = await readFile(file).catch((error: NodeJS.ErrnoException) => {
      throw new InvalidOptionsError(`isol8 run: cannot read ${file}: ${error.code === "ENOENT" ? "no such file" : error.message}`);
    });
    const ext = extname(file).toLowerCase();
    runtime ??= engine.kit.runtimes.values().find((r) => r.extensions.includes(ext))?.name;
    if (!runtime) {
      const known = engine.kit.runtimes
        .values()
        .map((r) => `${r.extensions.join("/")} → ${r.name}`)
        .join(", ");
      throw new InvalidOptionsError(`isol8 run: cannot tell the runtime of ${file} from "${ext}" (${known}); pass --runtime`);
    }
    if (ext && engine.kit.runtimes.has(runtime) && engine.kit.runtimes.get(runtime).extensions.includes(ext)) fileExtension = ext;
  } else if (!process.stdin.isTTY) {
    code = await readStdin();
    runtime ??= "python";
  } else {
    throw new InvalidOptionsError("isol8 run: give the code with -e/--eval, a file, or on standard input (e.g. echo 'print(1)' | isol8 run)");
  }

  const stdin = await programStdin(flags);
  const request: ExecutionRequest = {
    code,
    runtime,
    ...(fileExtension && { fileExtension }),
    ...(flags.env && { env: flags.env }),
    ...(stdin !== undefined && { stdin }),
    // The program's bytes, unchanged (text would turn a non-UTF-8 byte into U+FFFD).
    outputEncoding: "base64",
  };
  try {
    return await streamTo(remote ?? engine, request, flags.out);
  } finally {
    // A named session outlives the run (the next `run --session-id` continues it).
    if (remote) await (flags.sessionId !== undefined ? remote.close() : remote.stop());
    else await engine.stop();
  }
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
  for await (const event of engine.executeStream(request)) {
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
        throw new Isol8Error((event.code as Isol8Error["code"]) ?? "ISOL8_ERR_EXECUTION", event.data);
    }
  }
  throw new Isol8Error("ISOL8_ERR_EXECUTION", "the execution ended without an exit status");
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
