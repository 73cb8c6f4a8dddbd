import { readFile } from "node:fs/promises";
import { afterEach, expect, test } from "vitest";
import { CONTAINER_LABELS, ExecutorLauncher, executorProtocol, type StreamEvent } from "@isol8/core";
import { DockerIsol8 } from "isol8";
import { isol8Containers } from "../helpers.js";

// Each sandbox runs as a uid of its own, from a range no host account uses, so per-user kernel
// limits (here: inotify instances) are per sandbox: one sandbox exhausting its limit cannot stop
// another, or a host user. Runs on the launcher ISOL8_LAUNCHER selects.

const { SANDBOX_UID_RANGE } = executorProtocol;
const engines: DockerIsol8[] = [];

afterEach(async () => {
  for (const engine of engines.splice(0)) {
    await engine.stop();
    expect(await isol8Containers(engine.id)).toEqual([]);
  }
});

/** inotify_init through libc (no package needed): the fd, or -errno. */
const INOTIFY = `
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def inotify_init():
    fd = libc.inotify_init()
    return fd if fd >= 0 else -ctypes.get_errno()
`;

/** Takes inotify instances until the kernel refuses one, says how many it holds, then waits. */
const HOLD = `${INOTIFY}
limit = int(open("/proc/sys/fs/inotify/max_user_instances").read())
held = []
while True:
    fd = inotify_init()
    if fd < 0:
        break
    held.append(fd)
print(f"uid={os.getuid()} limit={limit} held={len(held)} refused={-fd}", flush=True)
import time
time.sleep(300)
`;

const PROBE = `${INOTIFY}
import pwd
fd = inotify_init()
print(f"uid={os.getuid()} inotify={'ok' if fd >= 0 else f'errno {-fd}'} name={pwd.getpwuid(os.getuid()).pw_name} home={os.path.expanduser('~')}")
`;

test("a sandbox holding every inotify instance its user may have does not stop inotify_init in another sandbox: each sandbox has its own uid, from a range no host account uses", async () => {
  const holder = new DockerIsol8({ timeoutMs: 120_000 });
  const other = new DockerIsol8({ timeoutMs: 60_000 });
  engines.push(holder, other);

  // The first sandbox takes every instance it can, and keeps them while the second one runs.
  const events = holder.executeStream({ runtime: "python", code: HOLD })[Symbol.asyncIterator]();
  let line = "";
  while (!line.includes("\n")) {
    const next = await events.next();
    expect(next.done, `the holder ended early: ${line}`).toBe(false);
    const event: StreamEvent = next.value;
    expect(["stdout", "stderr"], JSON.stringify(event)).toContain(event.type);
    if (event.type === "stdout") line += event.data;
  }
  const held = /^uid=(\d+) limit=(\d+) held=(\d+) refused=(\d+)\n$/.exec(line);
  expect(held, line).not.toBeNull();
  const [, holderUid, limit, count, refused] = held!.map(Number);
  // Positive control: the first sandbox did reach its user's limit (EMFILE: 24).
  expect(refused).toBe(24);
  expect(count).toBeGreaterThan(0);
  expect(count).toBeLessThanOrEqual(limit!);

  try {
    const probe = await other.execute({ runtime: "python", code: PROBE });
    expect(probe.exitCode, probe.stderr).toBe(0);
    const seen = /^uid=(\d+) inotify=(\S+(?: \d+)?) name=(\S+) home=(\S+)\n$/.exec(probe.stdout);
    expect(seen, probe.stdout).not.toBeNull();
    const [, probeUid, inotify, name, home] = seen!;
    expect(inotify).toBe("ok");
    expect(Number(probeUid)).not.toBe(holderUid);
    // The code still has a user name and home (its uid has a passwd entry).
    expect([name, home]).toEqual(["sandbox", "/sandbox"]);
    for (const uid of [holderUid!, Number(probeUid)]) {
      expect(uid).toBeGreaterThanOrEqual(SANDBOX_UID_RANGE.min);
      expect(uid).toBeLessThanOrEqual(SANDBOX_UID_RANGE.max);
    }
    // No account of this host has either uid.
    const hostUids = (await readFile("/etc/passwd", "utf8")).split("\n").map((line) => Number(line.split(":")[2]));
    expect(hostUids.length).toBeGreaterThan(1);
    expect(hostUids).not.toContain(holderUid);
    expect(hostUids).not.toContain(Number(probeUid));
    // The container carries its uid on a label.
    const container = await other.docker.inspectContainer(probe.containerId!);
    expect(container?.Config.Labels[CONTAINER_LABELS.uid]).toBe(probeUid);
  } finally {
    // Stop consuming: the engine kills the holder's run.
    await events.return?.();
  }
});

test("the executor refuses a sandbox uid outside the range (0, a host-like 1000, a non-number) and says which it takes", async () => {
  const engine = new DockerIsol8({});
  engines.push(engine);
  const { EXECUTOR_PATH, EXECUTOR_CAPABILITIES } = executorProtocol;
  const start = async (uid: string) => {
    const launcher = new ExecutorLauncher(engine.driver);
    const id = await engine.docker.startContainer(
      {
        Image: engine.imageFor("bash"),
        Cmd: [EXECUTOR_PATH],
        Env: [`ISOL8_SANDBOX_UID=${uid}`],
        User: "0:0",
        OpenStdin: true,
        StdinOnce: false,
        AttachStdin: true,
        AttachStdout: true,
        AttachStderr: true,
        Labels: { [CONTAINER_LABELS.managed]: "true", [CONTAINER_LABELS.engine]: engine.id },
        HostConfig: { CapDrop: ["ALL"], CapAdd: [...EXECUTOR_CAPABILITIES], SecurityOpt: ["no-new-privileges"], LogConfig: { Type: "none", Config: {} } },
      },
      { beforeStart: (id) => launcher.attach(id) },
    );
    try {
      return await launcher.ready(id).then(
        (hello) => hello.uid,
        (error: Error) => error.message,
      );
    } finally {
      launcher.detach(id);
      await engine.docker.removeContainer(id);
    }
  };
  // Positive control: a uid in the range starts, and the executor reports it.
  expect(await start(String(SANDBOX_UID_RANGE.min + 7))).toBe(SANDBOX_UID_RANGE.min + 7);
  for (const uid of ["0", "1000", "abc", String(SANDBOX_UID_RANGE.max + 1)]) {
    expect(await start(uid)).toMatch(/could not start: the executor takes the sandbox uid in ISOL8_SANDBOX_UID, from 1000000000 to 1999999999/);
  }
});
