import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { DockerDriver, ExecutorLauncher, InvalidOptionsError, baseSandboxSpec, executorMainProcess, executorProtocol, type ExecutionResult } from "@isol8/core";
import { DockerIsol8 } from "isol8";
import { isol8Containers } from "../helpers.js";

// The in-container executor (packages/core/executor): these tests force it (launcher
// "executor"), so they test it whatever ISOL8_LAUNCHER says.
const { EXECUTOR_PATH, EXECUTOR_CAPABILITIES, EXECUTOR_LABEL, EXECUTOR_PROTOCOL_VERSION, FrameType, encodeExit, encodeFrame } = executorProtocol;

/** One persistent engine per runtime, one container each for the whole file: the executor must survive every test. */
let engine: DockerIsol8;
let py: DockerIsol8;
const bash = (code: string, extra: { timeoutMs?: number } = {}) => engine.execute({ runtime: "bash", code, ...extra });

/** Finds the executor's pid from inside the sandbox (cmdline is world-readable). */
const FIND_EXECUTOR = `exe=; for p in /proc/[0-9]*; do case "$(tr '\\0' ' ' < $p/cmdline 2>/dev/null)" in "${EXECUTOR_PATH} "*) exe=\${p#/proc/};; esac; done; [ -n "$exe" ] || { echo "executor not found"; exit 99; }`;

/** Builds `FROM base` plus labels with the docker CLI (Dockerfile on stdin, no context); returns the tag. */
async function buildLabelled(base: string, labels: Record<string, string>): Promise<string> {
  const dockerfile = `FROM ${base}\n${Object.entries(labels)
    .map(([k, v]) => `LABEL ${k}=${JSON.stringify(v)}`)
    .join("\n")}\n`;
  const tag = `isol8-test/no-executor:${createHash("sha256").update(dockerfile).digest("hex").slice(0, 12)}`;
  await new Promise<void>((resolve, reject) => {
    const child = spawn("docker", ["build", "-q", "-t", tag, "-"], { stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.once("error", reject);
    child.once("close", (code) => (code === 0 ? resolve() : reject(new Error(`docker build failed (${code}): ${stderr}`))));
    child.stdin.end(dockerfile);
  });
  return tag;
}

/** The executor still serves: a normal execution in the same container gets its normal result. */
async function stillServes(containerId: string, on: DockerIsol8 = engine): Promise<void> {
  const next =
    on === engine
      ? await bash('echo alive; echo "$(id -u) $(stat -c %u /sandbox)"')
      : await on.execute({ runtime: "python", code: "import os; print('alive'); print(os.getuid(), os.stat('/sandbox').st_uid)" });
  const [alive, ids] = next.stdout.split("\n");
  expect(alive).toBe("alive");
  // The sandbox user (the owner of /sandbox), not root.
  const [uid, owner] = ids!.split(" ");
  expect(uid).toBe(owner);
  expect(uid).not.toBe("0");
  expect(next.exitCode).toBe(0);
  expect(next.containerId).toBe(containerId);
}

beforeAll(async () => {
  engine = new DockerIsol8({ mode: "persistent", launcher: "executor", timeoutMs: 20_000 });
  py = new DockerIsol8({ mode: "persistent", launcher: "executor", timeoutMs: 20_000 });
  await Promise.all([engine.start(), py.start()]);
});

afterAll(async () => {
  await Promise.all([engine.stop(), py.stop()]);
  expect(await isol8Containers(engine.id)).toEqual([]);
  expect(await isol8Containers(py.id)).toEqual([]);
});

describe("the container and the program", () => {
  test("the executor is the main process, uid 0 with exactly SETUID, SETGID and SETPCAP; no log driver", async () => {
    const result = await bash("true");
    const info = (await engine.docker.inspectContainer(result.containerId!))!;
    expect(info.Config.Cmd).toEqual([EXECUTOR_PATH]);
    expect(info.Config.User).toBe("0:0");
    expect(info.Config.Labels["isol8.launcher"]).toBe("executor");
    expect(info.Config.Labels[EXECUTOR_LABEL]).toBe(String(EXECUTOR_PROTOCOL_VERSION));
    expect(info.Config).toMatchObject({ OpenStdin: true, StdinOnce: false, Tty: false });
    expect(info.HostConfig).toMatchObject({ CapDrop: ["ALL"], ReadonlyRootfs: true, Init: true });
    expect(info.HostConfig.SecurityOpt).toContain("no-new-privileges");
    expect([...(info.HostConfig.CapAdd ?? [])].sort()).toEqual([...EXECUTOR_CAPABILITIES].sort());
    // Program output never lands in Docker's log files on the host.
    expect(info.HostConfig.LogConfig).toMatchObject({ Type: "none" });
    expect(info.LogPath ?? "").toBe("");
  });

  test("the program runs as the sandbox user with no capability in any set, no_new_privs, in its own session", async () => {
    const result = await bash(
      [
        "id -u; id -g; id -G; stat -c %u /sandbox",
        "grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs)' /proc/self/status",
        // Its own session and process group: bash is the session leader.
        'read -r -a stat < /proc/$$/stat; echo "pgid=$((stat[4] == $$)) sid=$((stat[5] == $$))"',
        "pwd; echo HOME=$HOME",
      ].join("\n"),
    );
    expect(result.exitCode).toBe(0);
    const lines = result.stdout.trim().split("\n");
    // uid, gid and groups: the sandbox user's alone (the owner of /sandbox), not root.
    const [uid, gid, groups, owner] = lines;
    expect(uid).toBe(owner);
    expect(uid).not.toBe("0");
    expect(groups).toBe(gid);
    expect(lines).toHaveLength(4 + 5 + 1 + 3);
    for (const line of lines.slice(4, 9)) expect(line).toMatch(/:\s+0000000000000000$/);
    expect(lines[9]).toMatch(/NoNewPrivs:\s+1/);
    expect(lines.slice(10)).toEqual(["pgid=1 sid=1", "/sandbox", "HOME=/sandbox"]);
  });

  test("the executor refuses to work without its capabilities (and says so)", async () => {
    const driver = new DockerDriver();
    const launcher = new ExecutorLauncher(driver);
    const image = engine.imageFor("bash");
    const id = await driver.startContainer(
      {
        Image: image,
        Cmd: [EXECUTOR_PATH],
        User: "0:0",
        OpenStdin: true,
        StdinOnce: false,
        AttachStdin: true,
        AttachStdout: true,
        AttachStderr: true,
        Labels: { "isol8.managed": "true", "isol8.engine": engine.id },
        HostConfig: { CapDrop: ["ALL"], CapAdd: ["SETUID", "SETGID"], SecurityOpt: ["no-new-privileges"], LogConfig: { Type: "none", Config: {} } },
      },
      { beforeStart: (id) => launcher.attach(id) },
    );
    try {
      await expect(launcher.ready(id)).rejects.toThrow(/could not start: the executor needs uid 0 with CAP_SETUID, CAP_SETGID and CAP_SETPCAP/);
    } finally {
      launcher.detach(id);
      await driver.removeContainer(id);
    }
  });
});

describe("the sandbox cannot reach the executor", () => {
  test("kill -9 (and -STOP) of the executor's pid and of PID 1 is refused; the run and the next one get their real results", async () => {
    const result = await bash(
      [
        FIND_EXECUTOR,
        'kill -9 "$exe" 2>/dev/null && echo "killed executor" || echo "kill executor refused"',
        'kill -STOP "$exe" 2>/dev/null && echo "stopped executor" || echo "stop executor refused"',
        "kill -9 1 2>/dev/null && echo 'killed init' || echo 'kill init refused'",
        // Everything the sandbox user may kill: only its own processes.
        "kill -9 -1 2>/dev/null; echo after-kill-all",
        "exit 7",
      ].join("\n"),
    );
    expect(result.stdout).toBe("kill executor refused\nstop executor refused\nkill init refused\nafter-kill-all\n");
    expect(result.exitCode).toBe(7);
    await stillServes(result.containerId!);
  });

  test("its descriptors, memory and environment cannot be read, nor traced", async () => {
    const result = await py.execute({
      runtime: "python",
      code: [
        "import ctypes, glob, os",
        "exe = next(p.split('/')[2] for p in glob.glob('/proc/[0-9]*/cmdline') if open(p,'rb').read().split(b'\\0')[0] == b'" + EXECUTOR_PATH + "')",
        "def attempt(label, fn):",
        "    try:",
        "        fn()",
        "        print(label, 'ALLOWED')",
        "    except OSError as e:",
        "        print(label, 'refused', e.errno)",
        "attempt('listdir fd', lambda: os.listdir(f'/proc/{exe}/fd'))",
        "for fd in range(0, 12):",
        "    attempt(f'open fd {fd}', lambda: open(f'/proc/{exe}/fd/{fd}', 'rb').read(1))",
        "attempt('mem', lambda: open(f'/proc/{exe}/mem', 'rb').read(16))",
        "attempt('environ', lambda: open(f'/proc/{exe}/environ', 'rb').read())",
        "attempt('maps', lambda: open(f'/proc/{exe}/maps', 'rb').read())",
        "libc = ctypes.CDLL(None, use_errno=True)",
        "rc = libc.ptrace(16, int(exe), 0, 0)  # PTRACE_ATTACH",
        "print('ptrace', 'ALLOWED' if rc == 0 else 'refused')",
        "print('done')",
      ].join("\n"),
    });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/^listdir fd refused/m);
    expect(result.stdout).not.toContain("ALLOWED");
    expect(result.stdout).toContain("ptrace refused");
    expect(result.stdout.endsWith("done\n")).toBe(true);
    await stillServes(result.containerId!, py);
  });

  test("writing to PID 1's or the executor's stdout (or into its stdin) is refused", async () => {
    const result = await bash(
      [
        FIND_EXECUTOR,
        "for target in /proc/1/fd/1 /proc/1/fd/2 /proc/$exe/fd/1 /proc/$exe/fd/0; do",
        '  (printf "\\204\\0\\0\\0\\074forged" > "$target") 2>/dev/null && echo "$target WRITTEN" || echo "$target refused"',
        "done",
      ].join("\n"),
    );
    expect(result.stdout).not.toContain("WRITTEN");
    expect(result.stdout.trim().split("\n")).toHaveLength(4);
    expect(result.exitCode).toBe(0);
    await stillServes(result.containerId!);
  });

  test("a program that prints fake frames (EXIT, HELLO, DONE for every likely id) gets them back as output, and its real exit", async () => {
    const fakes = Buffer.concat([
      ...Array.from({ length: 200 }, (_, id) => encodeExit(id, { exitStatus: 0, timedOut: false, killed: false, startFailed: false, outputCut: false })),
      encodeFrame(FrameType.Hello, 0, Buffer.alloc(30)),
      ...Array.from({ length: 50 }, (_, id) => encodeFrame(FrameType.Done, id)),
    ]);
    // Docker's own multiplexing header, too: stdout is just bytes to the engine.
    const dockerHeader = Buffer.from([1, 0, 0, 0, 0, 0, 0, 5]);
    const payload = Buffer.concat([dockerHeader, Buffer.from("MARK1"), fakes, Buffer.from("MARK2")]);
    const result = await py.execute({
      runtime: "python",
      code: [
        "import sys, time",
        "data = open('/sandbox/fakes.bin', 'rb').read()",
        "sys.stdout.buffer.write(data); sys.stdout.flush()",
        "sys.stderr.buffer.write(data)",
        "time.sleep(0.2)",
        "sys.exit(3)",
      ].join("\n"),
      files: { "/sandbox/fakes.bin": payload },
    });
    expect(result.exitCode).toBe(3);
    expect(result.timedOut).toBe(false);
    expect(result.stdout).toContain("MARK1");
    expect(result.stdout.endsWith("MARK2")).toBe(true);
    expect(result.stderr.endsWith("MARK2")).toBe(true);
    // Every byte arrived (as text: the invalid UTF-8 bytes became U+FFFD, one per byte at most).
    expect(Buffer.byteLength(result.stdout)).toBeGreaterThanOrEqual(payload.length);
    await stillServes(result.containerId!, py);
  });
});

describe("time limits and leftovers", () => {
  test("a timeout with background, double-forked and setsid children kills everything; the container survives", async () => {
    const result = await bash("sleep 30 & (setsid sleep 31 &); (sleep 32 & ) ; setsid bash -c 'sleep 33 & sleep 34' & sleep 35", { timeoutMs: 1000 });
    expect(result.timedOut).toBe(true);
    expect(result.exitCode).toBe(137);
    expect(result.stderr).toMatch(/timed out after 1000 ms/);
    // The container survived (the executor killed everything itself), and nothing is left in it.
    expect((await engine.docker.inspectContainer(result.containerId!))?.State?.Running).toBe(true);
    const ps = await bash("for p in /proc/[0-9]*; do [ \"${p#/proc/}\" = $$ ] || echo \"$(stat -c %u $p) $(tr '\\0' ' ' < $p/cmdline)\"; done");
    expect(ps.containerId).toBe(result.containerId);
    const others = ps.stdout
      .trim()
      .split("\n")
      .filter((line) => line.trim());
    // Left: Docker's init and the executor (uid 0), and the listing's own subshells.
    expect(others.filter((line) => line.includes("sleep"))).toEqual([]);
    // (The executor's arguments, e.g. the container's sandbox uid, are left out.)
    const rootProcesses = others
      .filter((line) => line.startsWith("0 "))
      .map((line) =>
        line
          .slice(2)
          .trim()
          .replace(/ --uid \d+$/, ""),
      );
    expect(rootProcesses.sort()).toEqual(["/sbin/docker-init -- /usr/local/bin/isol8-executor", EXECUTOR_PATH].sort());
  });

  test("output of a run never appears in the next one, even from a setsid'd writer that never stops", async () => {
    // The late writer waits for a file the next run creates (an event, not a time window): if it
    // survived the end of its run, it would write into the next one.
    const first = await bash(
      [
        "( trap '' HUP; exec bash -c 'until [ -e /tmp/late-go ]; do sleep 0.05; done; echo LEAKED-LATE; echo LEAKED-LATE >&2' late-writer ) &",
        "setsid bash -c 'while :; do echo LEAKED-FLOOD; done' flood &",
        'until [ -n "$(grep -l late-writer /proc/[0-9]*/cmdline 2>/dev/null)" ]; do sleep 0.05; done',
        "echo first",
      ].join("\n"),
    );
    // The flood's output until the kill belongs to this run; the late writer never got to write.
    expect(first.stdout).toContain("first\n");
    expect(first.stdout).not.toContain("LEAKED-LATE");
    expect(first.stderr).not.toContain("LEAKED-LATE");
    // The next run lets the late writer go, then lists its user's processes (a control sleep among them).
    const second = await bash(
      "touch /tmp/late-go; sleep 71 & for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done | grep -E 'sleep 71|late-writer|flood' | grep -v grep; kill $!; rm /tmp/late-go; echo second",
    );
    expect(second.containerId).toBe(first.containerId);
    expect(second.stdout).toBe("sleep 71 \nsecond\n");
    expect(second.stderr).toBe("");
  });

  test("when the executor cannot answer (its container frozen), the engine's watchdog ends the run and removes the container", async () => {
    const frozen = new DockerIsol8({ mode: "persistent", launcher: "executor", timeoutMs: 1000 });
    try {
      const { containerId } = await frozen.execute({ runtime: "bash", code: "true" });
      const running = frozen.execute({ runtime: "bash", code: "exec sleep 30" });
      // Frozen once the program runs (seen in the container), not after a guessed delay.
      await expect
        .poll(async () => JSON.stringify((await frozen.docker.docker.getContainer(containerId!).top()).Processes ?? []), { timeout: 60_000, interval: 100 })
        .toContain("sleep 30");
      await frozen.docker.docker.getContainer(containerId!).pause();
      const result = await running;
      // The time limit, then KILL_GRACE_MS (2 s) for the kill, then the container is destroyed.
      expect(result.timedOut).toBe(true);
      expect(result.exitCode).toBe(137);
      await expect.poll(() => frozen.docker.inspectContainer(containerId!), { timeout: 30_000, interval: 200 }).toBeUndefined();
    } finally {
      await frozen.stop();
    }
  });

  test("a fork bomb under the pids limit is still cleared by the time limit", async () => {
    const result = await bash("bomb() { bomb | bomb & }; bomb; sleep 30", { timeoutMs: 1500 });
    expect(result.timedOut).toBe(true);
    expect(result.exitCode).toBe(137);
    const after = await bash("echo ok");
    expect(after.stdout).toBe("ok\n");
  });
});

describe("usage from the executor", () => {
  let measured: DockerIsol8;
  beforeAll(async () => {
    measured = new DockerIsol8({ mode: "persistent", launcher: "executor", resourceUsage: true, memoryLimit: "512m" });
  });
  afterAll(async () => {
    await measured.stop();
  });

  test("a 100 MB allocation shows a peak near 100 MB; CPU time is counted; nothing on the network", async () => {
    const result: ExecutionResult = await measured.execute({
      runtime: "python",
      code: "b = bytearray(100 * 1024 * 1024)\nfor i in range(0, len(b), 4096): b[i] = 1\nx = 0\nfor i in range(1_000_000): x += i\nprint('ok')",
    });
    expect(result.stdout).toBe("ok\n");
    expect(result.stderr).toBe("");
    const peakMiB = result.resourceUsage!.peakMemoryBytes / 1024 / 1024;
    expect(peakMiB).toBeGreaterThan(100);
    expect(peakMiB).toBeLessThan(140);
    expect(result.resourceUsage!.cpuTimeMs).toBeGreaterThan(20);
    expect(result.resourceUsage).toMatchObject({ networkBytesIn: 0, networkBytesOut: 0 });
    const idle = await measured.execute({ runtime: "python", code: "pass" });
    expect(idle.resourceUsage!.peakMemoryBytes).toBeLessThan(result.resourceUsage!.peakMemoryBytes);
    expect(idle.resourceUsage!.cpuTimeMs).toBeLessThan(result.resourceUsage!.cpuTimeMs);
  });
});

describe("the executor protocol directly", () => {
  let driver: DockerDriver;
  let launcher: ExecutorLauncher;
  let id: string;

  beforeAll(async () => {
    driver = new DockerDriver();
    launcher = new ExecutorLauncher(driver);
    // A sandbox exactly as the engine makes one for the executor (its base spec), driven by our own launcher.
    const uid = 1_500_000_000;
    const spec = baseSandboxSpec(engine.options, engine.imageFor("python"), uid, executorMainProcess(uid));
    id = await driver.create(
      { ...spec, labels: { ...spec.labels, "isol8.managed": "true", "isol8.engine": engine.id } },
      { beforeStart: (id) => launcher.attach(id) },
    );
    await launcher.ready(id);
  });

  afterAll(async () => {
    launcher.detach(id);
    await driver.removeContainer(id);
  });

  const collect = () => {
    const out = { stdout: "", stderr: "" };
    return { out, onOutput: (stream: "stdout" | "stderr", chunk: Buffer) => void (out[stream] += chunk.toString()) };
  };

  test("the executor's own time limit: the exit says timed out, killed by signal 9", async () => {
    const { out, onOutput } = collect();
    const outcome = await launcher.run(id, {
      argv: ["sh", "-c", "echo begin; sleep 30 & setsid sleep 31 & sleep 32"],
      env: {},
      payload: Buffer.alloc(0),
      timeoutMs: 500,
      onOutput,
    });
    expect(out.stdout).toBe("begin\n");
    expect(outcome.exit).toMatchObject({ signal: 9, timedOut: true, killed: false });
    expect(outcome.exitCode).toBe(137);
  });

  test("stdin bytes are piped to the program; env and cwd apply; argv[0] is found in PATH", async () => {
    const { out, onOutput } = collect();
    const outcome = await launcher.run(id, {
      argv: ["python3", "-c", "import os, sys; print(sys.stdin.read()[::-1], os.environ['X7'], os.getcwd())"],
      env: { X7: "from env" },
      cwd: "/tmp",
      payload: Buffer.alloc(0),
      stdin: Buffer.from("olleh"),
      onOutput,
    });
    expect(outcome.exitCode).toBe(0);
    expect(out.stdout).toBe("hello from env /tmp\n");
  });

  test("a program that does not exist: 127 and a message; a bad files tar: 125, start failed", async () => {
    const missing = collect();
    expect((await launcher.run(id, { argv: ["no-such-program"], env: {}, payload: Buffer.alloc(0), onOutput: missing.onOutput })).exitCode).toBe(127);
    expect(missing.out.stderr).toMatch(/no-such-program: No such file or directory/);
    const bad = collect();
    const outcome = await launcher.run(id, { argv: ["true"], env: {}, payload: Buffer.from("this is not a tar archive".repeat(40)), onOutput: bad.onOutput });
    expect(outcome.exitCode).toBe(125);
    expect(outcome.exit?.startFailed).toBe(true);
    expect(bad.out.stderr).toContain("isol8: could not unpack the request files");
  });

  test("round trips: PING, and `true` many times in a row", async () => {
    await launcher.ping(id);
    for (let i = 0; i < 20; i++) {
      const outcome = await launcher.run(id, { argv: ["true"], env: {}, payload: Buffer.alloc(0), onOutput: () => {} });
      expect(outcome.exitCode).toBe(0);
    }
  });
});

describe("launcher selection", () => {
  let plainImage: string;
  beforeAll(async () => {
    // A "user's custom image": the runtime image with the executor label blanked.
    plainImage = await buildLabelled(engine.imageFor("bash"), { [EXECUTOR_LABEL]: "" });
  });
  afterAll(async () => {
    await engine.docker.docker
      .getImage(plainImage)
      .remove()
      .catch(() => undefined);
  });

  test('"auto" takes the exec path for an image without the executor, and "executor" refuses it clearly', async () => {
    const auto = new DockerIsol8({ image: plainImage, launcher: "auto", persist: false });
    try {
      const result = await auto.execute({
        runtime: "bash",
        code: 'echo via-exec; [ "$(id -u)" = "$(stat -c %u /sandbox)" ] && [ "$(id -u)" != 0 ] && echo sandbox-user',
      });
      expect(result.stdout).toBe("via-exec\nsandbox-user\n");
    } finally {
      await auto.stop();
    }
    const forced = new DockerIsol8({ image: plainImage, launcher: "executor" });
    try {
      const error = await forced.execute({ runtime: "bash", code: "true" }).catch((e) => e);
      expect(error).toBeInstanceOf(InvalidOptionsError);
      expect(error.message).toMatch(/launcher "executor": the image .* has no isol8 executor \(no isol8\.executor label\)/);
    } finally {
      await forced.stop();
    }
    expect(await isol8Containers(forced.id)).toEqual([]);
  });

  test("ISOL8_LAUNCHER overrides auto (not an explicit option); a bad value is refused", async () => {
    const saved = process.env.ISOL8_LAUNCHER;
    try {
      process.env.ISOL8_LAUNCHER = "exec";
      const viaEnv = new DockerIsol8({ persist: true });
      const explicit = new DockerIsol8({ persist: true, launcher: "executor" });
      const [a, b] = [await viaEnv.execute({ runtime: "bash", code: "true" }), await explicit.execute({ runtime: "bash", code: "true" })];
      try {
        expect((await viaEnv.docker.inspectContainer(a.containerId!))!.Config.Labels["isol8.launcher"]).toBe("exec");
        expect((await explicit.docker.inspectContainer(b.containerId!))!.Config.Labels["isol8.launcher"]).toBe("executor");
      } finally {
        await Promise.all([viaEnv.stop(), explicit.stop()]);
        await Promise.all([viaEnv.docker.removeContainer(a.containerId!), explicit.docker.removeContainer(b.containerId!)]);
      }
      process.env.ISOL8_LAUNCHER = "docker";
      expect(() => new DockerIsol8()).toThrow(/ISOL8_LAUNCHER: expected "auto", "exec" or "executor", got "docker"/);
    } finally {
      if (saved === undefined) delete process.env.ISOL8_LAUNCHER;
      else process.env.ISOL8_LAUNCHER = saved;
    }
  });
});
