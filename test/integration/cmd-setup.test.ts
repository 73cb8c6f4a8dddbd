import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { InvalidRequestError, type ExecutionRequest, type StreamEvent } from "@isol8/core";
import { DockerIsol8 } from "isol8";

/**
 * cmd requests, setupScript and workdir on the real Docker engine, with whichever launcher is in
 * force (CI runs this file again with ISOL8_LAUNCHER=exec).
 */

let engine: DockerIsol8;
let session: DockerIsol8;
beforeAll(async () => {
  engine = new DockerIsol8({ timeoutMs: 60_000 });
  session = new DockerIsol8({ mode: "persistent", timeoutMs: 60_000 });
  await Promise.all([engine.start(), session.start()]);
}, 180_000);
afterAll(async () => {
  await Promise.all([engine?.stop(), session?.stop()]);
}, 120_000);

async function collect(on: DockerIsol8, request: ExecutionRequest): Promise<StreamEvent[]> {
  const events: StreamEvent[] = [];
  for await (const event of on.executeStream(request)) events.push(event);
  return events;
}

function exitOf(events: StreamEvent[]) {
  const last = events.at(-1);
  if (last?.type !== "exit") throw new Error(`expected an exit event last, got ${JSON.stringify(last)}`);
  return last.result;
}

describe("cmd", () => {
  test("runs with bash in the runtime's image: its interpreter and pip on PATH, the runtime's env and packages' runEnv set", async () => {
    const result = await engine.execute({
      runtime: "python",
      cmd: 'python3 -c \'print(6 * 7)\'; pip --version; echo "pythonpath=$PYTHONPATH unbuffered=$PYTHONUNBUFFERED"; echo "bash=$BASH_VERSION"',
    });
    expect(result.stderr).toBe("");
    expect(result.exitCode).toBe(0);
    const lines = result.stdout.split("\n");
    expect(lines[0]).toBe("42");
    expect(lines[1]).toMatch(/^pip \d+\.\d+/);
    expect(lines[2]).toBe("pythonpath=/sandbox/.isol8/python unbuffered=1");
    expect(lines[3]).toMatch(/^bash=5\./);
  });

  test("keeps its exit code, its stdin and its own output streams", async () => {
    const result = await engine.execute({ runtime: "python", cmd: 'read line; echo "got $line"; echo oops >&2; exit 3', stdin: "hello\n" });
    expect(result.exitCode).toBe(3);
    expect(result.stdout).toBe("got hello\n");
    expect(result.stderr).toBe("oops\n");
  });

  test("streams its output as it comes, without a phase when there is no setup", async () => {
    const events = await collect(engine, { runtime: "node", cmd: "node -e 'console.log(process.version)'; echo done" });
    expect(events.map((e) => e.type)).toEqual([...events.slice(0, -1).map(() => "stdout"), "exit"]);
    expect(events.length).toBeGreaterThanOrEqual(2);
    expect(events.some((e) => "phase" in e)).toBe(false);
    expect(exitOf(events).stdout).toMatch(/^v\d+\.\d+\.\d+\ndone\n$/);
  });

  test("works in a persistent session: what one cmd writes the next one reads", async () => {
    const first = await session.execute({ runtime: "python", cmd: "echo kept > /sandbox/cmd-state.txt" });
    expect(first.exitCode).toBe(0);
    const second = await session.execute({ runtime: "python", cmd: "cat /sandbox/cmd-state.txt" });
    expect(second.stdout).toBe("kept\n");
  });

  test("is refused together with code, or when neither is given, naming the fields", async () => {
    await expect(engine.execute({ runtime: "python", code: "print(1)", cmd: "echo 1" })).rejects.toThrow(
      /request\.cmd: expected exactly one of code, cmd or codeUrl: got code and cmd/,
    );
    await expect(engine.execute({ runtime: "python" } as ExecutionRequest)).rejects.toThrow(
      /request\.code: expected exactly one of code, cmd or codeUrl: none was given/,
    );
    await expect(engine.execute({ runtime: "python", cmd: "  " })).rejects.toBeInstanceOf(InvalidRequestError);
  });
});

describe("setupScript", () => {
  test("runs first in the same sandbox, as the same user, with the request's env; its output streamed before the code's, marked setup", async () => {
    const events = await collect(engine, {
      runtime: "python",
      env: { GREETING: "hi" },
      setupScript: 'echo "setup $GREETING"; id -u > /sandbox/setup-uid; echo "setup-err" >&2',
      code: "import os\nprint(open('/sandbox/setup-uid').read().strip() == str(os.getuid()), os.environ['GREETING'])",
    });
    const output = events.filter((e): e is Extract<StreamEvent, { type: "stdout" | "stderr" }> => e.type === "stdout" || e.type === "stderr");
    const phases = output.map((e) => e.phase);
    expect(phases.length).toBeGreaterThanOrEqual(3);
    // Every setup event comes before the first code event.
    expect(phases.lastIndexOf("setup")).toBeLessThan(phases.indexOf("code"));
    const text = (phase: string, type: string) =>
      output
        .filter((e) => e.phase === phase && e.type === type)
        .map((e) => e.data)
        .join("");
    expect(text("setup", "stdout")).toBe("setup hi\n");
    expect(text("setup", "stderr")).toBe("setup-err\n");
    expect(text("code", "stdout")).toBe("True hi\n");
    const result = exitOf(events);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe("True hi\n");
    expect(result.stderr).toBe("");
    expect(result.setup).toMatchObject({ stdout: "setup hi\n", stderr: "setup-err\n", exitCode: 0, truncated: false });
    expect(result.setup!.durationMs).toBeGreaterThanOrEqual(0);
  });

  test("a failing setup ends the execution with its exit code and the code never runs (the same code runs after a setup that succeeds)", async () => {
    const code = "open('/sandbox/code-ran-marker', 'w').close()\nprint('code ran')";
    const probe = "if [ -e /sandbox/code-ran-marker ]; then echo present; else echo absent; fi";
    const failed = await session.execute({ runtime: "python", setupScript: "echo preparing; exit 3", code });
    expect(failed.exitCode).toBe(3);
    expect(failed.stdout).toBe("");
    expect(failed.setup).toMatchObject({ stdout: "preparing\n", exitCode: 3 });
    expect(failed.setup!.stderr).toContain("[isol8] setupScript exited with 3; the code was not run");
    expect((await session.execute({ runtime: "python", cmd: probe })).stdout).toBe("absent\n");

    // Positive control: the same code, after a setup that succeeds, runs and leaves its marker.
    const succeeded = await session.execute({ runtime: "python", setupScript: "echo preparing", code });
    expect(succeeded.exitCode).toBe(0);
    expect(succeeded.stdout).toBe("code ran\n");
    expect(succeeded.setup).toMatchObject({ stdout: "preparing\n", exitCode: 0 });
    expect((await session.execute({ runtime: "python", cmd: probe })).stdout).toBe("present\n");
    await session.execute({ runtime: "python", cmd: "rm -f /sandbox/code-ran-marker" });
  });

  test("shares the request's time limit: a setup that outlives it is killed and the code never runs", async () => {
    const events = await collect(engine, { runtime: "bash", timeoutMs: 2_000, setupScript: "echo started; sleep 60", code: "echo code ran" });
    const result = exitOf(events);
    expect(result.timedOut).toBe(true);
    expect(result.exitCode).toBe(137);
    expect(result.setup!.exitCode).toBe(137);
    expect(result.setup!.stderr).toContain("[isol8] execution timed out after 2000 ms");
    expect(result.stdout).toBe("");
    expect(events.some((e) => e.type === "stdout" && e.phase === "code")).toBe(false);
  });

  test("its output has its own maxOutputSize cap: a setup past it is cut and flagged, the code's output is whole", async () => {
    const capped = new DockerIsol8({ maxOutputSize: 1024 });
    try {
      const result = await capped.execute({ runtime: "bash", setupScript: "head -c 5000 /dev/zero | tr '\\0' s", code: "printf 'code-%.0s' $(seq 100)" });
      expect(result.setup!.truncated).toBe(true);
      expect(result.setup!.stdout).toBe("s".repeat(1024));
      expect(result.truncated).toBe(false);
      expect(result.stdout).toBe("code-".repeat(100));
    } finally {
      await capped.stop();
    }
  }, 120_000);

  test("an empty setupScript is refused, naming the field", async () => {
    await expect(engine.execute({ runtime: "bash", code: "echo x", setupScript: "" })).rejects.toThrow(
      /request\.setupScript: expected a non-empty bash script/,
    );
  });
});

describe("workdir", () => {
  test("is the working directory of code, cmd and setup, created when missing", async () => {
    const code = await engine.execute({
      runtime: "python",
      workdir: "work/deep",
      files: { "work/deep/data.txt": "relative read" },
      code: "import os\nprint(os.getcwd())\nprint(open('data.txt').read())",
    });
    expect(code.stderr).toBe("");
    expect(code.stdout).toBe("/sandbox/work/deep\nrelative read\n");

    const cmd = await engine.execute({ runtime: "python", workdir: "/tmp/made/here", setupScript: "pwd", cmd: "pwd" });
    expect(cmd.setup!.stdout).toBe("/tmp/made/here\n");
    expect(cmd.stdout).toBe("/tmp/made/here\n");

    const root = await engine.execute({ runtime: "bash", workdir: "/tmp", code: "pwd" });
    expect(root.stdout).toBe("/tmp\n");
  });

  test("outside /sandbox and /tmp, or with '..', is refused before anything runs, naming the field", async () => {
    await expect(engine.execute({ runtime: "bash", code: "pwd", workdir: "/etc" })).rejects.toThrow(
      /request\.workdir: path "\/etc" is outside \/sandbox and \/tmp/,
    );
    await expect(engine.execute({ runtime: "bash", code: "pwd", workdir: "../etc" })).rejects.toThrow(/request\.workdir: path "\.\.\/etc" contains "\.\."/);
    await expect(engine.execute({ runtime: "bash", code: "pwd", workdir: "/sandbox/../etc" })).rejects.toThrow(/request\.workdir: .* contains "\.\."/);
    await expect(engine.execute({ runtime: "bash", code: "pwd", workdir: "" })).rejects.toThrow(/request\.workdir: expected a directory path/);
  });

  test("through a symbolic link is refused, like a file's path (a real directory made the same way is entered)", async () => {
    const made = await session.execute({
      runtime: "python",
      cmd: "mkdir -p /sandbox/real && ln -sfn /sandbox/real /sandbox/alias && ln -sfn /etc /sandbox/outside && echo made",
    });
    expect(made.stdout).toBe("made\n");
    // Positive control: the real directory works as a workdir.
    expect((await session.execute({ runtime: "python", workdir: "real", code: "import os\nprint(os.getcwd())" })).stdout).toBe("/sandbox/real\n");
    const refused = (workdir: string) => session.execute({ runtime: "python", workdir, code: "import os\nprint(os.getcwd())" });
    await expect(refused("alias")).rejects.toThrow(/request\.workdir: \/sandbox\/alias is a symbolic link or not a directory/);
    await expect(refused("outside")).rejects.toBeInstanceOf(InvalidRequestError);
    await expect(refused("alias/sub")).rejects.toThrow(/request\.workdir: \/sandbox\/alias is a symbolic link or not a directory/);
    // Nothing was created through the link.
    expect((await session.execute({ runtime: "python", cmd: "ls -A /sandbox/real" })).stdout).toBe("");
  });
});

describe("engine.runtimes()", () => {
  test("lists each registered runtime: name, its recipe's version, extensions, packages support, and whether it has contexts (python, node, bash; not bun or deno)", async () => {
    const runtimes = await engine.runtimes();
    expect(runtimes.map((r) => r.name).sort()).toEqual(engine.kit.runtimes.names().sort());
    expect(runtimes.find((r) => r.name === "python")).toEqual({
      name: "python",
      version: engine.kit.runtimes.get("python").image.version,
      extensions: [".py"],
      packages: true,
      contexts: true,
    });
    expect(runtimes.find((r) => r.name === "bash")).toMatchObject({
      name: "bash",
      packages: engine.kit.runtimes.get("bash").packages !== undefined,
      contexts: true,
    });
    expect(
      runtimes
        .filter((r) => r.contexts)
        .map((r) => r.name)
        .sort(),
    ).toEqual(["bash", "node", "python"]);
    expect(
      runtimes
        .filter((r) => !r.contexts)
        .map((r) => r.name)
        .sort(),
    ).toEqual(["bun", "deno"]);
    expect(runtimes.find((r) => r.name === "bash")!.extensions).toContain(".sh");
  });
});
