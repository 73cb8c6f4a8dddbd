import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { CONTAINER_LABELS, DockerDriver } from "@isol8/core";

const run = promisify(execFile);

export const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));
export const CLI = fileURLToPath(new URL("../packages/cli/dist/bin.js", import.meta.url));

/** Containers of one engine (or of every isol8 engine), running or not. */
export async function isol8Containers(engineId?: string): Promise<string[]> {
  const driver = new DockerDriver();
  const list = await driver.listContainers(engineId ? { [CONTAINER_LABELS.engine]: engineId } : { [CONTAINER_LABELS.managed]: "true" });
  return list.map((c) => c.Id);
}

export interface CliResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs the built CLI (`isol8 ...`) and returns its output and exit code, whatever the code. */
export async function isol8Cli(args: string[], options: { input?: string; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [CLI, ...args],
      { cwd: options.cwd ?? REPO_ROOT, env: { ...process.env, ...options.env }, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ stdout, stderr, code });
      },
    );
    if (options.input !== undefined) child.stdin!.end(options.input);
    else child.stdin!.end();
  });
}

export async function docker(...args: string[]): Promise<string> {
  const { stdout } = await run("docker", args);
  return stdout;
}
