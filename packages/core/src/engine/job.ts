import type { ExecContext, ResolvedEngineOptions, RuntimeDefinition, StdinSource, ValidatedRequest } from "@isol8/kit";
import { checkInstall, type PackageInstall } from "./packages.js";
import { programOf } from "./program.js";
import { packTar, resolveSandboxPath, type TarEntry } from "./sandbox-files.js";
import { runtimeEnv } from "./sandboxes.js";

/** Where a request's stdin is unpacked for the program to read. */
export const STDIN_PATH = "/tmp/.isol8-stdin";

/** One execution, ready to run: the request after beforeExec, its argv and its payload. */
export interface RunJob {
  request: ValidatedRequest;
  coldStart: boolean;
  runtimeEnv: Readonly<Record<string, string>>;
  argv: string[];
  /** argv of the request's setupScript, run first in the same sandbox (the "setup" phase). */
  setupArgv?: string[];
  payload: Buffer;
  outputPaths: string[];
  install?: PackageInstall;
  ctx: ExecContext;
  /** Interactive stdin (ExecuteOptions.stdin), sent while the program runs. */
  stdinSource?: StdinSource;
}

/**
 * The parts of a run that need no container: the program (code file and the runtime's command,
 * or cmd; the setup; the workdir), the payload (code or scripts, request files, stdin) as a tar,
 * the output paths resolved, the install checked. Path and package errors fail here, before a
 * container is taken.
 */
export async function prepareJob(
  runtime: RuntimeDefinition,
  request: ValidatedRequest,
  options: ResolvedEngineOptions,
): Promise<Pick<RunJob, "runtimeEnv" | "argv" | "setupArgv" | "payload" | "outputPaths" | "install">> {
  const program = programOf(runtime, request);
  const entries: TarEntry[] = [...program.entries];
  for (const [path, content] of Object.entries(request.files ?? {})) entries.push({ path: resolveSandboxPath(path, `request.files["${path}"]`), content });
  if (request.stdin !== undefined) entries.push({ path: STDIN_PATH, content: request.stdin, mode: 0o600 });
  const outputPaths = (request.outputPaths ?? []).map((p, i) => resolveSandboxPath(p, `request.outputPaths[${i}]`));
  const install = request.installPackages?.length ? checkInstall(runtime, request.installPackages, options) : undefined;
  return {
    runtimeEnv: runtimeEnv(runtime),
    argv: program.argv,
    ...(program.setupArgv && { setupArgv: program.setupArgv }),
    payload: await packTar(entries),
    outputPaths,
    install,
  };
}
