import { createHash, randomBytes } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { definePlugin, ExecutionError, InvalidRequestError } from "@isol8/core";
import { DockerIsol8, defaultPlugins } from "isol8";
import { docker, isol8Containers } from "../helpers.js";

/** getaddrinfo's "temporary failure in name resolution" (glibc EAI_AGAIN). */
const EAI_AGAIN = -3;

/**
 * Hostile input against the real engine. Every blocked case stands beside a positive control
 * (the same program doing the allowed thing succeeds), so a case cannot pass because the program
 * was broken; after each case the engine must still run code.
 */
const SECRET = "sk-live-5f3c9e1a7b2d";
/** Command lines (space-joined argv) of every process of the current user, one a line. */
const LIST_MY_PROCESSES = `(me=$(id -u); for p in /proc/[0-9]*; do [ "$(stat -c %u $p 2>/dev/null)" = "$me" ] && tr '\\0' ' ' < $p/cmdline 2>/dev/null && echo; done)`;
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
    // The limit itself: children that stay alive until fork() is refused with EAGAIN, below 64.
    const limit = await engine.execute({
      runtime: "python",
      code: [
        "import errno, os, time",
        "n = 0",
        "while n < 1000:",
        "    try:\n        pid = os.fork()\n    except OSError as e:\n        print('refused', errno.errorcode[e.errno], n); break",
        "    if pid == 0:\n        time.sleep(60); os._exit(0)",
        "    n += 1",
      ].join("\n"),
    });
    const [word, code, count] = limit.stdout.trim().split(" ");
    expect([word, code]).toEqual(["refused", "EAGAIN"]);
    expect(Number(count)).toBeGreaterThan(10);
    expect(Number(count)).toBeLessThan(64);
    // The bomb: it cannot grow past the limit, and the time limit ends it (the next run, in
    // afterEach, shows the engine still works).
    const result = await engine.execute({ runtime: "bash", code: ":(){ :|:& };:; sleep 30", timeoutMs: 3000 });
    expect(result.timedOut).toBe(true);
    expect(result.exitCode).toBe(137);
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
    const control = await engine.execute({
      runtime: "bash",
      code: "head -c 1048576 /dev/zero > /sandbox/ok && head -c 1048576 /dev/zero > /tmp/ok && echo wrote",
    });
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
    expect(result.exitCode).toBe(137);
  });

  test("a timeout also ends double-forked and setsid children", async () => {
    // Persistent: the container outlives the timed-out run, so the next run can look for survivors.
    const persistent = new DockerIsol8({ mode: "persistent", timeoutMs: 30_000 });
    try {
      const result = await persistent.execute({
        runtime: "bash",
        // Waits until the three children run (seen in the listing), then outlives the limit.
        code: `(sleep 100 >/dev/null 2>&1 &) ; setsid sleep 101 >/dev/null 2>&1 & nohup sleep 102 >/dev/null 2>&1 &
until [ "$(${LIST_MY_PROCESSES} | grep -c '^sleep 10[012] $')" = 3 ]; do sleep 0.05; done; echo spawned; sleep 100`,
        timeoutMs: 5000,
      });
      expect(result.stdout).toBe("spawned\n");
      expect(result.timedOut).toBe(true);
      // The same container: its sandbox user's processes are this run's listing and a control sleep.
      const next = await persistent.execute({ runtime: "bash", code: `sleep 77 & ${LIST_MY_PROCESSES}; kill $!` });
      expect(next.containerId).toBe(result.containerId);
      const processes = next.stdout.split("\n");
      expect(processes).toContain("sleep 77 ");
      expect(processes.filter((line) => /^sleep 10[012] /.test(line))).toEqual([]);
    } finally {
      await persistent.stop();
    }
  });
});

describe("escaping the sandbox", () => {
  test("host files and the Docker socket are not there", async () => {
    const result = await engine.execute({
      runtime: "bash",
      code: [
        'echo "hostname: $(cat /etc/hostname >/dev/null && echo readable)"',
        'echo "shadow: $(cat /etc/shadow 2>&1 | head -c 80)"',
        'for s in /var/run/docker.sock /run/docker.sock; do echo "socket: $(ls -la $s 2>&1)"; done',
        // /proc/<pid>/root: its own works (the control); PID 1's (the host-side init's view) does not.
        'echo "self root: $(ls /proc/self/root 2>&1 | grep -cx sandbox)"',
        'echo "init root: $(ls /proc/1/root 2>&1 | head -n 1)"',
      ].join("\n"),
    });
    expect(result.stdout.trim().split("\n")).toEqual([
      "hostname: readable",
      "shadow: cat: /etc/shadow: Permission denied",
      "socket: ls: cannot access '/var/run/docker.sock': No such file or directory",
      "socket: ls: cannot access '/run/docker.sock': No such file or directory",
      "self root: 1",
      "init root: ls: cannot access '/proc/1/root': Permission denied",
    ]);
  });

  test("the root filesystem cannot be written", async () => {
    const control = await engine.execute({ runtime: "bash", code: "touch /sandbox/ok && echo ok" });
    expect(control.stdout).toBe("ok\n");
    const result = await engine.execute({ runtime: "bash", code: "for f in /etc/x /usr/bin/x /x /var/x; do touch $f 2>&1; done" });
    expect(result.stdout.match(/Read-only file system|Permission denied/g)?.length).toBe(4);
  });

  test("setuid escalation gets nowhere", async () => {
    // The control: the program's uid is the sandbox user's (the owner of /sandbox), not root.
    const control = await engine.execute({ runtime: "bash", code: 'echo "$(id -u) $(stat -c %u /sandbox)"' });
    const [uid, owner] = control.stdout.trim().split(" ");
    expect(uid).toBe(owner);
    expect(uid).not.toBe("0");
    const result = await engine.execute({
      runtime: "python",
      code: [
        "import os, subprocess",
        "try:\n    os.setuid(0); print('setuid ok')\nexcept PermissionError as e: print('setuid refused')",
        "r = subprocess.run(['su', '-c', 'id -u', 'root'], input='', capture_output=True, text=True)",
        "print('su uid0' if r.stdout.strip() == '0' else 'su refused')",
      ].join("\n"),
    });
    expect(result.stdout).toBe("setuid refused\nsu refused\n");
  });

  describe("under network none", () => {
    // The target: a listener in a container on a network this test makes. The same probe runs in
    // an engine whose sandboxes join that network (the positive control: name resolves, connect
    // succeeds), then under network none, where it must fail with the specific errors.
    const run = `${process.pid}-${Date.now()}`;
    const network = `isol8-hostile-${run}`;
    const target = `isol8-hostile-target-${run}`;
    let targetIp = "";
    let joined: DockerIsol8;
    const PROBE = [
      "import errno, os, socket",
      "try:\n    print('dns', socket.gethostbyname(os.environ['TARGET_NAME']))\nexcept socket.gaierror as e:\n    print('dns failed', e.errno)",
      "try:\n    socket.create_connection((os.environ['TARGET_IP'], 8080), timeout=10).close(); print('connect ok')\nexcept OSError as e:\n    print('connect failed', errno.errorcode.get(e.errno, type(e).__name__))",
    ].join("\n");

    beforeAll(async () => {
      await docker("network", "create", "--label", "isol8-test=hostile", network);
      await docker(
        "run",
        "-d",
        "--rm",
        "--pull",
        "never",
        "--name",
        target,
        "--label",
        "isol8-test=hostile",
        "--network",
        network,
        "--user",
        "65534:65534",
        engine.imageFor("python"),
        "python3",
        "-c",
        "import socket\ns = socket.create_server(('0.0.0.0', 8080))\nwhile True: s.accept()[0].close()",
      );
      targetIp = (await docker("inspect", target, "--format", `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`)).trim();
      expect(targetIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      const testNetwork = definePlugin({
        name: "test:hostile-network",
        setup: () => (kit) =>
          kit.networkModes.register("test-joined", { shapeSpec: (spec) => ({ ...spec, network: { kind: "network", name: network } }) }, "test:hostile-network"),
      });
      joined = new DockerIsol8({ network: "test-joined", timeoutMs: 30_000 }, { plugins: defaultPlugins(testNetwork()) });
    });

    afterAll(async () => {
      try {
        await joined?.stop();
        await docker("rm", "-f", target);
      } finally {
        await docker("network", "rm", network);
      }
    });

    test("no DNS, no route out (a joined network reaches the same target); no raw socket; loopback works", async () => {
      const env = { TARGET_NAME: target, TARGET_IP: targetIp };
      const control = await joined.execute({ runtime: "python", code: PROBE, env });
      expect(control.stdout).toBe(`dns ${targetIp}\nconnect ok\n`);

      const result = await engine.execute({ runtime: "python", code: PROBE, env });
      // No resolver reachable: EAI_AGAIN ("temporary failure"), not "no such name"; no route: ENETUNREACH, not refused.
      expect(result.stdout).toBe(`dns failed ${EAI_AGAIN}\nconnect failed ENETUNREACH\n`);

      const local = await engine.execute({
        runtime: "python",
        code: [
          "import socket",
          "server = socket.create_server(('127.0.0.1', 0)); port = server.getsockname()[1]",
          "socket.create_connection(('127.0.0.1', port), timeout=5).close(); print('loopback ok')",
          "try:\n    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); print('raw ok')\nexcept PermissionError: print('raw refused')",
        ].join("\n"),
      });
      expect(local.stdout).toBe("loopback ok\nraw refused\n");
    });
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
    // Not pinned to a launcher: run it as is (the executor's unpacker) and with ISOL8_LAUNCHER=exec
    // (the runner script's GNU tar, which on its own follows a planted directory symlink).
    const persistent = new DockerIsol8({ mode: "persistent" });
    try {
      // The control: a real directory receives the file.
      await persistent.execute({ runtime: "bash", code: "mkdir /sandbox/real; ln -s /etc /sandbox/conf; ln -s /tmp /sandbox/t" });
      const control = await persistent.execute({ runtime: "bash", code: "cat /sandbox/real/isol8-slip", files: { "/sandbox/real/isol8-slip": "x" } });
      expect(control.stdout).toBe("x");
      // Through a link to a read-only place and to a writable one: refused, naming the link, before
      // anything is written; the write would not have been stopped by the read-only root in /tmp.
      for (const [link, target] of [
        ["conf", "/etc"],
        ["t", "/tmp"],
      ]) {
        const error = await persistent.execute({ runtime: "bash", code: "true", files: { [`/sandbox/${link}/isol8-slip`]: "x" } }).catch((e) => e);
        expect(error, link).toBeInstanceOf(ExecutionError);
        expect(error.message).toContain(`could not unpack the request files: not a directory (or a symbolic link): ${link}`);
        const after = await persistent.execute({ runtime: "bash", code: `ls ${target}/isol8-slip 2>&1` });
        expect(after.stdout).toBe(`ls: cannot access '${target}/isol8-slip': No such file or directory\n`);
      }
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
    // An error whose message quotes the request: a package name carrying the secret is refused,
    // and the refusal names the bad value.
    const events = [];
    for await (const event of engine.executeStream({ runtime: "python", code: "pass", installPackages: [`x ${SECRET}`] })) events.push(event);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: "error", code: "ISOL8_ERR_INVALID_REQUEST" });
    expect(events[0]!.data).toContain('"x ***"');
    expect(events[0]!.data).not.toContain(SECRET);
    // execute() throws the same error, masked the same way.
    const error = await engine.execute({ runtime: "python", code: "pass", installPackages: [`x ${SECRET}`] }).catch((e) => e);
    expect(error).toBeInstanceOf(InvalidRequestError);
    expect(error.message).toContain('"x ***"');
    expect(error.message).not.toContain(SECRET);
  });
});
