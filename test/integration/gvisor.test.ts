import { afterAll, beforeAll, expect, test } from "vitest";
import { DockerDriver, InvalidOptionsError } from "@isol8/core";
import { DockerIsol8 } from "isol8";

/**
 * Stronger isolation: the sandboxes under gVisor (runsc), a user-space kernel between the code
 * and the host's. scripts/ensure-docker.sh installs Debian's runsc and registers it for network
 * "none" whenever it provisions the engine, so it is there wherever this suite runs.
 */
const MEMORY_LIMIT_MIB = 384;
const SANDBOX_MIB = 48;
let engine: DockerIsol8;
beforeAll(async () => {
  const runtimes = Object.keys((await new DockerDriver().docker.info()).Runtimes ?? {});
  expect(runtimes, "runsc is not registered with Docker: run scripts/ensure-docker.sh on an engine it provisions").toContain("runsc");
  engine = new DockerIsol8({ ociRuntime: "runsc", network: "none", timeoutMs: 60_000, memoryLimit: `${MEMORY_LIMIT_MIB}m`, sandboxSize: `${SANDBOX_MIB}m` });
  await engine.start();
});
afterAll(async () => {
  await engine?.stop();
});

test("code runs under gVisor's kernel, not the host's, with the same results", async () => {
  const result = await engine.execute({
    runtime: "python",
    code: "import os, platform\nprint(platform.release())\nprint(os.getuid(), os.stat('/sandbox').st_uid)\nprint(sum(range(10)))",
  });
  expect(result.exitCode, result.stderr).toBe(0);
  const [release, uid, sum] = result.stdout.trim().split("\n");
  // gVisor reports its own kernel version; the host's kernel is different.
  expect(release).toBe("4.4.0");
  // The sandbox user (not root), the owner of /sandbox.
  const [programUid, sandboxOwner] = uid!.split(" ");
  expect(programUid).toBe(sandboxOwner);
  expect(programUid).not.toBe("0");
  expect(sum).toBe("45");
});

test("the hardening holds under gVisor: read-only root, no network, limits", async () => {
  // gVisor hides /sys/class/net and the cgroup files; its /proc/net/dev and /proc/meminfo show the
  // sandbox's own view: the interfaces it has, and the memory limit as the machine's memory.
  const result = await engine.execute({
    runtime: "bash",
    code: [
      "uname -r",
      "touch /x 2>/dev/null && echo root-writable || echo root-readonly",
      "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ' '; echo",
      "grep MemTotal /proc/meminfo",
      "df -k --output=size /sandbox | tail -n 1 | tr -d ' '",
      "head -c 100000000 /dev/zero > /sandbox/big 2>/dev/null && echo sandbox-unbounded || echo sandbox-full",
      "echo ok > /tmp/f && cat /tmp/f",
    ].join("\n"),
  });
  expect(result.exitCode, result.stderr).toBe(0);
  const [release, root, interfaces, memTotal, sandboxKiB, fill, tmp] = result.stdout.trim().split("\n");
  expect(release, "gVisor's kernel").toBe("4.4.0");
  expect(root).toBe("root-readonly");
  expect(interfaces!.trim(), "network interfaces").toBe("lo");
  expect(memTotal).toMatch(new RegExp(`^MemTotal:\\s+${MEMORY_LIMIT_MIB * 1024} kB$`));
  expect(Number(sandboxKiB)).toBe(SANDBOX_MIB * 1024);
  expect(fill).toBe("sandbox-full");
  expect(tmp).toBe("ok");
});

test("a time limit still kills the program", async () => {
  const result = await engine.execute({ runtime: "bash", code: "sleep 30", timeoutMs: 1500 });
  expect(result.timedOut).toBe(true);
});

test("an OCI runtime Docker does not know is refused at start, naming what to do", async () => {
  const bad = new DockerIsol8({ ociRuntime: "no-such-runtime" });
  const error = await bad.start().catch((e) => e);
  expect(error).toBeInstanceOf(InvalidOptionsError);
  expect(error.message).toMatch(/no OCI runtime "no-such-runtime".*runsc/);
});
