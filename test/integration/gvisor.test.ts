import { afterAll, beforeAll, expect, test } from "vitest";
import { DockerDriver, InvalidOptionsError } from "@isol8/core";
import { DockerIsol8 } from "isol8";

/**
 * Stronger isolation: the sandboxes under gVisor (runsc), a user-space kernel between the code
 * and the host's. scripts/ensure-docker.sh installs Debian's runsc and registers it for network
 * "none" whenever it provisions the engine, so it is there wherever this suite runs.
 */
let engine: DockerIsol8;
beforeAll(async () => {
  const runtimes = Object.keys((await new DockerDriver().docker.info()).Runtimes ?? {});
  expect(runtimes, "runsc is not registered with Docker: run scripts/ensure-docker.sh on an engine it provisions").toContain("runsc");
  engine = new DockerIsol8({ ociRuntime: "runsc", network: "none", timeoutMs: 60_000 });
  await engine.start();
});
afterAll(async () => {
  await engine?.stop();
});

test("code runs under gVisor's kernel, not the host's, with the same results", async () => {
  const result = await engine.execute({ runtime: "python", code: "import os, platform\nprint(platform.release())\nprint(os.getuid())\nprint(sum(range(10)))" });
  expect(result.exitCode, result.stderr).toBe(0);
  const [release, uid, sum] = result.stdout.trim().split("\n");
  // gVisor reports its own kernel version; the host's kernel is different.
  expect(release).toBe("4.4.0");
  expect(uid).toBe("1000");
  expect(sum).toBe("45");
});

test("the hardening holds under gVisor: read-only root, no network, limits", async () => {
  const result = await engine.execute({
    runtime: "bash",
    code: "touch /x 2>/dev/null && echo writable || echo read-only; ls /sys/class/net 2>/dev/null | tr '\\n' ' '; echo; echo ok > /sandbox/f && cat /sandbox/f",
  });
  expect(result.stdout.split("\n")[0]).toBe("read-only");
  expect(result.stdout).toMatch(/ok\n$/);
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
