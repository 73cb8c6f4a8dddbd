import { readFile, writeFile } from "node:fs/promises";
import { extname } from "node:path";
import { createEngine, InvalidOptionsError, type EngineOptions, type ExecutionRequest, type Isol8Engine, Isol8Error } from "@isol8/core";
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
  stdin?: string;
  maxOutput?: number;
  out?: string;
  image?: string;
  sandboxSize?: number;
  tmpSize?: number;
  config?: string;
  debug?: boolean;
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
  const engine = createEngine(config, overrides);

  let code: string;
  let runtime = flags.runtime;
  let fileExtension: string | undefined;
  if (flags.eval !== undefined) {
    if (file) throw new InvalidOptionsError("isol8 run: give either -e/--eval or a file, not both");
    code = flags.eval;
    runtime ??= "python";
  } else if (file) {
    code = await readFile(file, "utf8").catch((error: NodeJS.ErrnoException) => {
      throw new InvalidOptionsError(`isol8 run: cannot read ${file}: ${error.code === "ENOENT" ? "no such file" : error.message}`);
    });
    const ext = extname(file).toLowerCase();
    runtime ??= engine.kit.runtimes.values().find((r) => r.extensions.includes(ext))?.name;
    if (!runtime) {
      const known = engine.kit.runtimes.values().map((r) => `${r.extensions.join("/")} → ${r.name}`).join(", ");
      throw new InvalidOptionsError(`isol8 run: cannot tell the runtime of ${file} from "${ext}" (${known}); pass --runtime`);
    }
    if (ext && engine.kit.runtimes.has(runtime) && engine.kit.runtimes.get(runtime).extensions.includes(ext)) fileExtension = ext;
  } else if (!process.stdin.isTTY) {
    code = await readStdin();
    runtime ??= "python";
  } else {
    throw new InvalidOptionsError("isol8 run: give the code with -e/--eval, a file, or on standard input (e.g. echo 'print(1)' | isol8 run)");
  }

  const request: ExecutionRequest = {
    code,
    runtime,
    ...(fileExtension && { fileExtension }),
    ...(flags.env && { env: flags.env }),
    ...(flags.stdin !== undefined && { stdin: flags.stdin }),
  };
  try {
    return await streamTo(engine, request, flags.out);
  } finally {
    await engine.stop();
  }
}

/** Streams the program's output to ours as it arrives (or stdout to --out) and returns its exit code. */
async function streamTo(engine: Isol8Engine, request: ExecutionRequest, out: string | undefined): Promise<number> {
  const captured: string[] = [];
  for await (const event of engine.executeStream(request)) {
    switch (event.type) {
      case "stdout":
        if (out) captured.push(event.data);
        else process.stdout.write(event.data);
        break;
      case "stderr":
        process.stderr.write(event.data);
        break;
      case "exit":
        if (out) await writeFile(out, captured.join(""));
        return event.result.exitCode;
      case "error":
        throw new Isol8Error((event.code as Isol8Error["code"]) ?? "ISOL8_ERR_EXECUTION", event.data);
    }
  }
  throw new Isol8Error("ISOL8_ERR_EXECUTION", "the execution ended without an exit status");
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
