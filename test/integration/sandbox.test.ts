import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { DockerIsol8 } from "isol8";
import { isol8Containers } from "../helpers.js";

// One engine for the file: every execution gets a fresh hardened container (no pool configured).
let engine: DockerIsol8;

beforeAll(async () => {
  engine = new DockerIsol8({ timeoutMs: 20_000, secrets: { API_TOKEN: "tok-4f9a8b7c6d5e" } });
  await engine.start();
});

afterAll(async () => {
  await engine.stop();
  expect(await isol8Containers(engine.id)).toEqual([]);
});

describe("containers are hardened", () => {
  test("code runs as the unprivileged sandbox user, with no capabilities", async () => {
    const result = await engine.execute({ runtime: "bash", code: "id -u; id -g; stat -c '%u %g' /sandbox; grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status" });
    expect(result.exitCode).toBe(0);
    const [uid, gid, owner, ...caps] = result.stdout.trim().split("\n");
    // The sandbox user, the owner of /sandbox; not root.
    expect(`${uid} ${gid}`).toBe(owner);
    expect(uid).not.toBe("0");
    expect(caps).toHaveLength(3);
    for (const line of caps) expect(line).toMatch(/:\s+0000000000000000$/);
  });

  test("the root filesystem is read-only, /sandbox and /tmp are writable", async () => {
    const result = await engine.execute({
      runtime: "bash",
      code: "echo x > /x 2>/dev/null && echo root-writable || echo root-readonly; echo ok > /sandbox/f && cat /sandbox/f; echo ok > /tmp/f && cat /tmp/f",
    });
    expect(result.stdout).toBe("root-readonly\nok\nok\n");
  });

  test("no new privileges, no network, limits applied: read from the container's own view", async () => {
    const result = await engine.execute({
      runtime: "bash",
      code: [
        "grep NoNewPrivs /proc/self/status",
        "ls /sys/class/net | tr '\\n' ' '; echo",
        "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
      ].join("\n"),
    });
    const [nnp, nets, pids, memory] = result.stdout.trim().split("\n");
    expect(nnp).toMatch(/NoNewPrivs:\s+1/);
    expect(nets!.trim()).toBe("lo");
    expect(pids).toBe("64");
    expect(Number(memory)).toBe(512 * 1024 * 1024);
  });

  test("every container carries isol8's labels", async () => {
    // persist: true leaves the container running after the execution, for inspection.
    const kept = new DockerIsol8({ persist: true });
    const result = await kept.execute({ runtime: "bash", code: "true" });
    try {
      const info = await kept.docker.inspectContainer(result.containerId!);
      expect(info!.Config.Labels).toMatchObject({ "isol8.managed": "true", "isol8.engine": kept.id, "isol8.runtime": "bash", "isol8.mode": "ephemeral" });
      expect(info!.HostConfig).toMatchObject({ ReadonlyRootfs: true, CapDrop: ["ALL"], NetworkMode: "none", Init: true });
      // no-new-privileges, and the strict seccomp profile (the default plugin set has it).
      expect(info!.HostConfig.SecurityOpt![0]).toBe("no-new-privileges");
      expect(info!.HostConfig.SecurityOpt!.some((o: string) => o.startsWith("seccomp=") && o.includes("SCMP_ARCH_X86_64"))).toBe(true);
      expect(info!.HostConfig.MemorySwap).toBe(info!.HostConfig.Memory);
    } finally {
      await kept.stop();
      await kept.docker.removeContainer(result.containerId!);
    }
  });
});

describe("input and output", () => {
  test("stdin reaches the program and env reaches it", async () => {
    const result = await engine.execute({
      runtime: "python",
      code: "import os, sys\nprint(sys.stdin.read().upper(), end='')\nprint(os.environ['GREETING'])",
      stdin: "hello from stdin\n",
      env: { GREETING: "hi there" },
    });
    expect(result.stdout).toBe("HELLO FROM STDIN\nhi there\n");
  });

  test("files arrive and outputPaths come back byte-exact, binary included", async () => {
    const binary = Buffer.from(Array.from({ length: 256 * 4 }, (_, i) => i % 256));
    const result = await engine.execute({
      runtime: "python",
      code: [
        "data = open('/sandbox/in/data.bin', 'rb').read()",
        "open('/sandbox/out.bin', 'wb').write(bytes(reversed(data)))",
        "open('/tmp/note.txt', 'w').write(open('notes.txt').read() + ' back')",
      ].join("\n"),
      files: { "/sandbox/in/data.bin": binary, "notes.txt": "héllo ✓" },
      outputPaths: ["/sandbox/out.bin", "/tmp/note.txt", "/sandbox/never-written"],
    });
    expect(result.exitCode).toBe(0);
    expect(Buffer.from(result.files!["/sandbox/out.bin"]!, "base64").equals(Buffer.from(binary).reverse())).toBe(true);
    expect(Buffer.from(result.files!["/tmp/note.txt"]!, "base64").toString()).toBe("héllo ✓ back");
    expect(result.files).not.toHaveProperty("/sandbox/never-written");
  });

  test("10 MB of output is cut at maxOutputSize with truncated: true", async () => {
    const small = new DockerIsol8({ maxOutputSize: 64 * 1024 });
    try {
      const result = await small.execute({
        runtime: "python",
        code: "import sys\nfor _ in range(10 * 1024):\n    sys.stdout.write('é' * 512)\nprint('done', file=sys.stderr)",
      });
      expect(result.truncated).toBe(true);
      expect(Buffer.byteLength(result.stdout)).toBeLessThanOrEqual(64 * 1024);
      expect(Buffer.byteLength(result.stdout)).toBeGreaterThan(64 * 1024 - 4);
      expect(result.stdout).not.toContain("\uFFFD"); // cut at a character boundary
      expect(result.stderr).toBe("done\n");
      expect(result.exitCode).toBe(0);
    } finally {
      await small.stop();
    }
  });

  test("a secret never appears in stdout or stderr, even written in pieces", async () => {
    const result = await engine.execute({
      runtime: "python",
      code: [
        "import os, sys, time",
        "s = os.environ['API_TOKEN']",
        "print('plain', s)",
        "print('stderr', s, file=sys.stderr)",
        // Written one character at a time with flushes: the secret crosses many output chunks.
        "for ch in s:",
        "    sys.stdout.write(ch); sys.stdout.flush(); time.sleep(0.01)",
        "print()",
      ].join("\n"),
    });
    expect(result.stdout).not.toContain("tok-4f9a8b7c6d5e");
    expect(result.stderr).not.toContain("tok-4f9a8b7c6d5e");
    expect(result.stdout).toBe("plain ***\n***\n");
    expect(result.stderr).toBe("stderr ***\n");
  });
});

describe("limits", () => {
  test("a 1 s timeout on sleep 30 with a background child ends the run and leaves no process", async () => {
    const result = await engine.execute({ runtime: "bash", code: "sleep 30 & (setsid sleep 31 &) ; sleep 30", timeoutMs: 1000 });
    expect(result.timedOut).toBe(true);
    expect(result.exitCode).toBe(137);
    expect(result.stderr).toMatch(/timed out after 1000 ms/);
    // The container is never reused: it is destroyed (the pool may do it just after the result), and with it every process.
    await expect.poll(() => engine.docker.inspectContainer(result.containerId!), { timeout: 15_000, interval: 250 }).toBeUndefined();
  });

  test("leftover background processes are killed when the program ends, so it returns without waiting for them", async () => {
    // The leftover would outlive the engine's time limit: a result that is not a timeout means the
    // engine did not wait for it.
    const result = await engine.execute({ runtime: "bash", code: "sleep 600 & echo started", timeoutMs: 60_000 });
    expect(result.stdout).toBe("started\n");
    expect(result.exitCode).toBe(0);
    expect(result.timedOut).toBe(false);
  });

  test("a memory hog is killed and reported", async () => {
    const small = new DockerIsol8({ memoryLimit: "64m" });
    try {
      const result = await small.execute({ runtime: "python", code: "blocks = []\nwhile True:\n    blocks.append(bytearray(8 * 1024 * 1024))" });
      expect(result.oomKilled).toBe(true);
      expect(result.exitCode).toBe(137);
      expect(result.stderr).toMatch(/out of memory/);
    } finally {
      await small.stop();
    }
  });

  test("exit codes propagate", async () => {
    expect((await engine.execute({ runtime: "bash", code: "exit 3" })).exitCode).toBe(3);
    expect((await engine.execute({ runtime: "python", code: "import sys; sys.exit(7)" })).exitCode).toBe(7);
  });
});
