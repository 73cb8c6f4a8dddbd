import { expect } from "vitest";
import { execFile } from "node:child_process";
import { request } from "node:http";
import { createServer as createNetServer, type AddressInfo } from "node:net";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { CONTAINER_LABELS, DockerDriver } from "@isol8/core";

const run = promisify(execFile);

export const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));
export const CLI = fileURLToPath(new URL("../packages/cli/dist/bin.js", import.meta.url));

/** Containers of one engine, running or not. */
export async function isol8Containers(engineId: string): Promise<string[]> {
  const list = await new DockerDriver().listContainers({ [CONTAINER_LABELS.engine]: engineId });
  return list.map((c) => c.Id);
}

/** Process ids of every CLI run so far, so a test can look for containers those runs left. */
export const cliPids = new Set<number>();

/** Containers made by engines in the given processes (owner-pid label), running or not. */
export async function containersOfProcesses(pids: Iterable<number>): Promise<string[]> {
  const wanted = new Set([...pids].map(String));
  const list = await new DockerDriver().listContainers({ [CONTAINER_LABELS.managed]: "true" });
  return list.filter((c) => wanted.has(c.Labels[CONTAINER_LABELS.ownerPid] ?? "")).map((c) => c.Id);
}

/**
 * Waits until no container of the given processes is left: a one-shot CLI run's container ends
 * with its connection and Docker removes it just after the CLI exits (engine option endWithProcess).
 */
export async function expectNoContainersOfProcesses(pids: Iterable<number>): Promise<void> {
  // waitFor, not expect.poll: this runs in afterAll hooks too, where expect.poll is not allowed.
  const list = [...pids];
  expect(
    await waitFor(
      () => containersOfProcesses(list),
      (left) => left.length === 0,
      30_000,
    ),
  ).toEqual([]);
}

/** A loopback port nothing listens on (bound, read, released): the target of "unreachable" probes. */
export async function closedLoopbackPort(): Promise<number> {
  const probe = createNetServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** Polls until `check` holds or the deadline passes; returns the last value either way. */
export async function waitFor<T>(read: () => Promise<T>, check: (value: T) => boolean, timeoutMs = 20_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!check(value) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, everyMs));
    value = await read();
  }
  return value;
}

/**
 * The exit codes Docker reported for a container's main process (its `die` events) since a Unix
 * time in seconds: "0" for one that ended by itself, "137" for one killed (a force removal).
 */
export async function dieExitCodes(container: string, sinceSeconds: number): Promise<string[]> {
  const until = Math.ceil(Date.now() / 1000) + 1;
  const out = await docker(
    "events",
    "--since",
    String(sinceSeconds),
    "--until",
    String(until),
    "--filter",
    `container=${container}`,
    "--filter",
    "event=die",
    "--format",
    "{{.Actor.Attributes.exitCode}}",
  );
  return out.split("\n").filter(Boolean);
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
    if (child.pid) cliPids.add(child.pid);
    if (options.input !== undefined) child.stdin!.end(options.input);
    else child.stdin!.end();
  });
}

export async function docker(...args: string[]): Promise<string> {
  const { stdout } = await run("docker", args);
  return stdout;
}

/** GET a URL on this machine (a test's own server or container), body as text; 3 s without a byte is an error. */
export function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: 3_000, agent: false }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve(body));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

/**
 * The process rows of `docker top` for a container, or none when it went away after it was listed
 * (removed or stopped: 404, 409, or the 500 runc or containerd give for one being torn down:
 * "container does not exist", "is not running", "ttrpc: closed" when its shim has just exited, as
 * CI saw once). Any other error is thrown.
 */
export async function topRows(driver: DockerDriver, containerId: string): Promise<string[][]> {
  try {
    return ((await driver.docker.getContainer(containerId).top()).Processes ?? []) as string[][];
  } catch (error) {
    const { statusCode, message } = error as { statusCode?: number; message?: string };
    if (statusCode === 404 || statusCode === 409 || (statusCode === 500 && /container does not exist|is not running|ttrpc: closed/.test(message ?? "")))
      return [];
    throw error;
  }
}
