import { createHash, randomBytes } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { InvalidRequestError } from "@isol8/core";
import { DockerIsol8 } from "isol8";
import { isol8Containers } from "../helpers.js";

/**
 * Hostile input against the real engine. Every blocked case stands beside a positive control
 * (the same program doing the allowed thing succeeds), so a case cannot pass because the program
 * was broken; after each case the engine must still run code.
 */
const SECRET = "sk-live-5f3c9e1a7b2d";
let engine: DockerIsol8;

beforeAll(async () => {
  engine = new DockerIsol8({ timeoutMs: 15_000, sandboxSize: "16m", tmpSize: "16m", secrets: { API_SECRET: SECRET } });
  await engine.start();
});

afterEach(async () => {
  const healthy = await engine.execute({ runtime: "bash", code: "echo healthy" });
  expect(healthy.stdout).toBe("healthy\n");
});

afterAll(async () => {
  await engine.stop();
  expect(await isol8Containers(engine.id)).toEqual([]);
});

describe("resource exhaustion", () => {
  test("a fork bomb hits the pids limit and is ended by the time limit", async () => {
    const control = await engine.execute({ runtime: "bash", code: "for i in 1 2 3; do sleep 0.1 & done; wait; echo forked" });
    expect(control.stdout).toBe("forked\n");
    const result = await engine.execute({ runtime: "bash", code: ":(){ :|:& };:; sleep 5", timeoutMs: 3000 });
    expect(result.timedOut || result.exitCode !== 0).toBe(true);
  });

  test("a memory bomb is killed by the memory limit and reported", async () => {
    const small = new DockerIsol8({ memoryLimit: "96m" });
    try {
      const control = await small.execute({ runtime: "python", code: "b = bytearray(32 * 1024 * 1024); print(len(b))" });
      expect(control.stdout).toBe(`${32 * 1024 * 1024}\n`);
      const result = await small.execute({ runtime: "python", code: "x = []\nwhile True: x.append(bytearray(16 * 1024 * 1024))" });
      expect(result.oomKilled).toBe(true);
    } finally {
      await small.stop();
    }
  });

  test("filling /sandbox and /tmp stops at their size", async () => {
    const control = await engine.execute({ runtime: "bash", code: "head -c 1048576 /dev/zero > /sandbox/ok && head -c 1048576 /dev/zero > /tmp/ok && echo wrote" });
    expect(control.stdout).toBe("wrote\n");
    for (const dir of ["/sandbox", "/tmp"]) {
      const result = await engine.execute({ runtime: "bash", code: `head -c 100000000 /dev/zero > ${dir}/big; echo "status $?"; du -m ${dir}/big | cut -f1` });
      expect(result.stderr).toMatch(/No space left on device/);
      const [status, megabytes] = result.stdout.trim().split("\n");
      expect(status).not.toBe("status 0");
      expect(Number(megabytes)).toBeLessThanOrEqual(16);
    }
  });

  test("1 GB of output is cut at the cap and the call returns", async () => {
    const result = await engine.execute({ runtime: "bash", code: "head -c 1073741824 /dev/zero | tr '\\0' a; echo done >&2", timeoutMs: 60_000 });
    expect(result.truncated).toBe(true);
    expect(Buffer.byteLength(result.stdout)).toBe(1024 * 1024);
    // Far past the cap the program is stopped instead of draining a gigabyte.
    expect(result.stderr).toMatch(/output went far past the limit.*stopped/);
  });

  test("a CPU hog is killed at the time limit", async () => {
    const result = await engine.execute({ runtime: "python", code: "while True: pass", timeoutMs: 1000 });
    expect(result.timedOut).toBe(true);
    expect(result.durationMs).toBeLessThan(5000);
  });

  test("a timeout also ends double-forked and setsid children", async () => {
    const result = await engine.execute({
      runtime: "bash",
      code: "(sleep 100 &) ; setsid sleep 101 & nohup sleep 102 >/dev/null 2>&1 & echo spawned; sleep 100",
      timeoutMs: 1000,
    });
    expect(result.stdout).toBe("spawned\n");
    expect(result.timedOut).toBe(true);
  });
});

describe("escaping the sandbox", () => {
  test("host files and the Docker socket are not there", async () => {
    const control = await engine.execute({ runtime: "bash", code: "cat /etc/hostname >/dev/null && echo readable" });
    expect(control.stdout).toBe("readable\n");
    const result = await engine.execute({
      runtime: "bash",
      code: "cat /etc/shadow 2>&1 | head -c 60; echo; ls -la /var/run/docker.sock /run/docker.sock 2>&1; ls /proc/1/root 2>&1 | head -1",
    });
    expect(result.stdout).toMatch(/Permission denied/);
    expect(result.stdout).toMatch(/docker\.sock'?: No such file or directory/);
    expect(result.stdout).not.toMatch(/root:\$/);
  });

  test("the root filesystem cannot be written", async () => {
    const control = await engine.execute({ runtime: "bash", code: "touch /sandbox/ok && echo ok" });
    expect(control.stdout).toBe("ok\n");
    const result = await engine.execute({ runtime: "bash", code: "for f in /etc/x /usr/bin/x /x /var/x; do touch $f 2>&1; done" });
    expect(result.stdout.match(/Read-only file system|Permission denied/g)?.length).toBe(4);
  });

  test("setuid escalation gets nowhere", async () => {
    const control = await engine.execute({ runtime: "bash", code: "id -u" });
    expect(control.stdout).toBe("1000\n");
    const result = await engine.execute({
      runtime: "python",
      code: [
        "import os, subprocess",
        "try:\n    os.setuid(0); print('setuid ok')\nexcept PermissionError as e: print('setuid refused')",
        "r = subprocess.run(['su', '-c', 'id -u', 'root'], input='', capture_output=True, text=True)",
        "print('su uid0' if r.stdout.strip() == '0' else 'su refused')",
        "setuid_files = subprocess.run(['find', '/', '-xdev', '-perm', '-4000', '-type', 'f'], capture_output=True, text=True).stdout.split()",
        "print('setuid binaries', len(setuid_files) >= 0)",
      ].join("\n"),
    });
    expect(result.stdout).toContain("setuid refused");
    expect(result.stdout).toContain("su refused");
  });

  test("under network none: no raw socket, no DNS, no route out; loopback works", async () => {
    const result = await engine.execute({
      runtime: "python",
      code: [
        "import socket",
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b'x', ('127.0.0.1', 9)); print('loopback udp ok')",
        "try:\n    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); print('raw ok')\nexcept PermissionError: print('raw refused')",
        "try:\n    socket.getaddrinfo('dns-probe.isol8.test', 80); print('dns ok')\nexcept socket.gaierror: print('dns failed')",
        "try:\n    socket.create_connection(('192.0.2.1', 80), timeout=2); print('connect ok')\nexcept OSError: print('connect failed')",
      ].join("\n"),
    });
    expect(result.stdout).toBe("loopback udp ok\nraw refused\ndns failed\nconnect failed\n");
  });
});

describe("paths", () => {
  test("traversal in files and outputPaths is refused before anything runs", async () => {
    const control = await engine.execute({ runtime: "bash", code: "cat data/in.txt", files: { "data/in.txt": "fine" } });
    expect(control.stdout).toBe("fine");
    const cases: Record<string, string>[] = [{ "../etc/cron.d/x": "x" }, { "/etc/passwd": "x" }, { "/sandbox/../../etc/x": "x" }, { "/proc/1/x": "x" }];
    for (const files of cases) {
      await expect(engine.execute({ runtime: "bash", code: "true", files }), JSON.stringify(files)).rejects.toThrow(InvalidRequestError);
    }
    for (const outputPaths of [["/etc/passwd"], ["../etc/passwd"], ["/sandbox/../etc/shadow"]]) {
      await expect(engine.execute({ runtime: "bash", code: "true", outputPaths }), outputPaths[0]).rejects.toThrow(InvalidRequestError);
    }
  });

  test("a symlink planted by the program is not followed by outputPaths", async () => {
    const result = await engine.execute({
      runtime: "bash",
      code: "echo mine > /sandbox/real.txt; ln -s /etc/passwd /sandbox/out.txt; ln -s /etc /sandbox/etc",
      outputPaths: ["/sandbox/real.txt", "/sandbox/out.txt", "/sandbox/etc/passwd"],
    });
    expect(Object.keys(result.files ?? {})).toEqual(["/sandbox/real.txt"]);
  });

  test("a planted directory symlink cannot steer injected files outside (persistent mode)", async () => {
    const persistent = new DockerIsol8({ mode: "persistent" });
    try {
      await persistent.execute({ runtime: "bash", code: "ln -s /etc /sandbox/conf" });
      const result = await persistent.execute({ runtime: "bash", code: "ls /etc/isol8-slip 2>&1; echo end", files: { "/sandbox/conf/isol8-slip": "x" } }).catch((e) => e);
      // Either the injection fails, or it lands nowhere outside the sandbox.
      if (result instanceof Error) expect(result.message).toMatch(/deliver|unpack|Read-only|Permission/i);
      else expect(result.stdout).toMatch(/No such file or directory/);
      await expect(persistent.putFile("/sandbox/conf/isol8-slip", "x")).rejects.toThrow(/outside|symbolic link/);
    } finally {
      await persistent.stop();
    }
  });

  test("a 200 MB files payload arrives intact", async () => {
    const big = new DockerIsol8({ sandboxSize: "300m", memoryLimit: "768m", timeoutMs: 120_000 });
    try {
      const data = randomBytes(200 * 1024 * 1024);
      const result = await big.execute({
        runtime: "python",
        code: "import hashlib\nh = hashlib.sha256()\nwith open('/sandbox/big.bin', 'rb') as f:\n    for block in iter(lambda: f.read(1 << 20), b''): h.update(block)\nprint(h.hexdigest())",
        files: { "/sandbox/big.bin": data },
      });
      expect(result.stdout.trim()).toBe(createHash("sha256").update(data).digest("hex"));
    } finally {
      await big.stop();
    }
  }, 240_000);
});

describe("secrets", () => {
  test("a secret printed plainly or in pieces is masked; base64 of it is not (documented limit)", async () => {
    const result = await engine.execute({
      runtime: "python",
      code: [
        "import os, sys, base64",
        "s = os.environ['API_SECRET']",
        "print(s)",
        "print(s, file=sys.stderr)",
        "for part in (s[:5], s[5:11], s[11:]):\n    sys.stdout.write(part); sys.stdout.flush()",
        "print()",
        "print(base64.b64encode(s.encode()).decode())",
      ].join("\n"),
    });
    expect(result.stdout).not.toContain(SECRET);
    expect(result.stderr).not.toContain(SECRET);
    const lines = result.stdout.trim().split("\n");
    expect(lines.slice(0, 2)).toEqual(["***", "***"]);
    // Masking matches the literal value only: an encoded form passes. The README says so.
    expect(lines[2]).toBe(Buffer.from(SECRET).toString("base64"));
  });

  test("a secret in an error message is masked too", async () => {
    const events = [];
    for await (const event of engine.executeStream({ runtime: "bash", code: `echo "${SECRET}" >&2; exit 1` })) events.push(event);
    expect(JSON.stringify(events)).not.toContain(SECRET);
  });
});
