import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CONTAINER_LABELS, DockerDriver } from "@isol8/core";
import { CLI, REPO_ROOT, serve, type Served } from "./serve-process.js";

const KEY = "cli-remote-key-0123456789";

function isol8(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, env: { ...process.env, ISOL8_API_KEY: "", ...env } }, (error, stdout, stderr) =>
      resolve({ stdout, stderr, code: error ? (typeof error.code === "number" ? error.code : 1) : 0 }),
    );
    child.stdin!.end();
  });
}

let dir: string;
let served: Served;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "isol8-cli-remote-"));
  served = await serve(dir, KEY, { defaults: { poolSize: { clean: 1, dirty: 1 } }, server: { policy: { maxMemory: "512m" } } });
});
afterAll(async () => {
  served.child.kill("SIGTERM");
  expect((await served.exited).code).toBe(0);
  expect(await new DockerDriver().listContainers({ [CONTAINER_LABELS.ownerPid]: String(served.child.pid) })).toEqual([]);
  await rm(dir, { recursive: true, force: true });
});

describe("isol8 run --host", () => {
  test("runs remotely with the same flags: output, exit code, stdin, env, secrets, a file's runtime", async () => {
    const result = await isol8([
      "run",
      "--host",
      served.url,
      "--key",
      KEY,
      "-e",
      "import sys, os; print(sys.stdin.read(), os.environ['X'], os.environ['S']); sys.exit(4)",
      "--stdin",
      "in",
      "--env",
      "X=y",
      "--secret",
      "S=hidden-value",
    ]);
    expect(result).toMatchObject({ stdout: "in y ***\n", code: 4 });
    const file = join(dir, "hello.sh");
    await writeFile(file, "echo from-bash");
    expect(await isol8(["run", "--host", served.url, file], { ISOL8_API_KEY: KEY })).toMatchObject({ stdout: "from-bash\n", code: 0 });
  });

  test("the server's policy applies: over a ceiling fails naming the field", async () => {
    const result = await isol8(["run", "--host", served.url, "--key", KEY, "--memory", "2g", "-e", "print(1)"]);
    expect(result.code).toBe(125);
    expect(result.stderr).toMatch(/options\.memoryLimit: 2\.0 GiB is over this server's limit of 512 MiB; ask for less \[ISOL8_ERR_POLICY\]/);
  });

  test("--session-id keeps state across runs; auth and flag errors are clear", async () => {
    const host = ["run", "--host", served.url, "--key", KEY, "--session-id", "cli-s1", "--runtime", "bash"];
    expect(await isol8([...host, "-e", "echo kept > /sandbox/f"])).toMatchObject({ code: 0 });
    expect(await isol8([...host, "-e", "cat /sandbox/f"])).toMatchObject({ stdout: "kept\n", code: 0 });

    const wrong = await isol8(["run", "--host", served.url, "--key", "wrong-key-000", "-e", "print(1)"]);
    expect(wrong.code).toBe(125);
    expect(wrong.stderr).toMatch(/Invalid API key \[ISOL8_ERR_FORBIDDEN\]/);
    const noKey = await isol8(["run", "--host", served.url, "-e", "print(1)"]);
    expect(noKey.stderr).toMatch(/--host needs an API key/);
    const noHost = await isol8(["run", "--session-id", "x", "-e", "print(1)"]);
    expect(noHost.stderr).toMatch(/--session-id: a named session outlives this process, so it lives on an isol8 server: pass --host/);
  });
});
