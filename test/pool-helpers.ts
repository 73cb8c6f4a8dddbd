import { afterAll, afterEach, expect } from "vitest";
import { CONTAINER_LABELS, type EngineOptions, type ExecutionResult, type Isol8Plugin, type Logger } from "@isol8/core";
import { DockerIsol8 } from "isol8";
import { waitFor } from "./helpers.js";

/**
 * The engines of one pool strategy's test file. Each test's engines are stopped after it and must
 * leave no container; after the file, no error-level entry may have been logged (failure tests
 * expect warnings; an error means background work failed unexpectedly).
 */
export function poolEngines(poolStrategy: string, plugins: () => Isol8Plugin[]) {
  const engines: DockerIsol8[] = [];
  const { logger, entries } = recordingLogger();
  afterEach(async () => {
    for (const engine of engines.splice(0)) {
      await engine.stop();
      expect(await engineContainers(engine)).toEqual([]);
    }
  });
  afterAll(() => {
    expect(entries.filter((e) => e.level === "error")).toEqual([]);
  });
  /** An engine of this strategy (30 s time limit unless `options` says otherwise), stopped after the test. */
  return function makeEngine(options: EngineOptions = {}): DockerIsol8 {
    const engine = new DockerIsol8({ poolStrategy, timeoutMs: 30_000, ...options }, { plugins: plugins(), logger });
    engines.push(engine);
    return engine;
  };
}

/** Kills a container of the engine out of band, as a crash would. */
export async function killContainer(engine: DockerIsol8, id: string): Promise<void> {
  await engine.docker.docker.getContainer(id).kill();
}

/**
 * Polls until the container is gone (the engine removed it, not left it stopped), then inspects
 * it once more: undefined when it is gone.
 */
export async function inspectAfterRemoval(engine: DockerIsol8, id: string): ReturnType<DockerIsol8["docker"]["inspectContainer"]> {
  await waitFor(
    () => engine.docker.inspectContainer(id),
    (info) => info === undefined,
  );
  return engine.docker.inspectContainer(id);
}

/**
 * Stops `engine` while creates are in flight: starts it with a prewarm of python and node, waits
 * for its first container, starts a cold bash execution, then calls stop(). Resolves once stop()
 * has, with what the prewarm and the execution ended with (an error each, when stop() cut them).
 */
export async function stopWhileCreating(engine: DockerIsol8): Promise<{ starting: Promise<void | Error>; running: Promise<ExecutionResult | Error> }> {
  const starting = engine.start({ prewarm: { runtimes: ["python", "node"] } }).catch((error: Error) => error);
  await waitFor(
    () => engineContainers(engine),
    (list) => list.length >= 1,
    20_000,
    20,
  );
  const running = engine.execute({ runtime: "bash", code: "sleep 5" }).catch((error: Error) => error);
  await new Promise((resolve) => setTimeout(resolve, 50));
  await engine.stop();
  return { starting, running };
}

/** Containers carrying the engine's id label, running or not (only ever this engine's own). */
export async function engineContainers(engine: DockerIsol8): Promise<{ id: string; runtime: string; state: string }[]> {
  const list = await engine.docker.listContainers({ [CONTAINER_LABELS.engine]: engine.id });
  return list.map((c) => ({ id: c.Id, runtime: c.Labels[CONTAINER_LABELS.runtime] ?? "", state: c.State }));
}

/** Samples the engine's container count until stopped; `max` is the highest count seen. */
export function sampleContainers(engine: DockerIsol8, everyMs = 100) {
  let running = true;
  const sampler = { max: 0, samples: 0, stop: async () => {} };
  const loop = (async () => {
    while (running) {
      const n = (await engineContainers(engine).catch(() => [])).length;
      sampler.max = Math.max(sampler.max, n);
      sampler.samples++;
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  })();
  sampler.stop = async () => {
    running = false;
    await loop;
  };
  return sampler;
}

/** A logger that keeps what the engine and its pool report (warnings are expected in failure tests, errors never). */
export function recordingLogger() {
  const entries: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
  const logger: Logger = {
    debug: () => {},
    info: () => {},
    warn: (message, fields) => void entries.push({ level: "warn", message, fields }),
    error: (message, fields) => void entries.push({ level: "error", message, fields }),
  };
  return { logger, entries };
}

/**
 * Python run as execution B: reports every process of the sandbox user (its own uid) that is not
 * B itself or one of its ancestors (the engine's runner), what /sandbox, /tmp and /dev/shm
 * hold, and the environment variables execution A set.
 */
export const INSPECT_PY = String.raw`
import json, os
ancestors = set()
pid = os.getpid()
while pid > 1:
    ancestors.add(pid)
    with open(f"/proc/{pid}/stat") as f:
        pid = int(f.read().rsplit(")", 1)[1].split()[1])
procs = []
for entry in os.listdir("/proc"):
    if not entry.isdigit() or int(entry) in ancestors:
        continue
    try:
        with open(f"/proc/{entry}/status") as f:
            uid = next(line.split()[1] for line in f if line.startswith("Uid:"))
        with open(f"/proc/{entry}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode().strip()
    except (OSError, StopIteration):
        continue
    if uid == str(os.getuid()):
        procs.append(cmd)
print(json.dumps({
    "procs": procs,
    "sandbox": sorted(os.listdir("/sandbox")),
    "tmp": sorted(os.listdir("/tmp")),
    "shm": sorted(os.listdir("/dev/shm")),
    "env": {k: v for k, v in os.environ.items() if k.startswith("LEAK") or k == "A_ONLY"},
}))
`;

/**
 * Python run as execution A: leaves what it can behind. A background sleep in its own session
 * (setsid + nohup: the runner's kill must get it, and the wipe again), files in every writable
 * place, and environment set every way a later program could pick it up.
 */
export const LEAVE_TRACES_PY = String.raw`
import os, subprocess
subprocess.Popen("setsid nohup sleep 100 >/dev/null 2>&1 < /dev/null &", shell=True).wait()
subprocess.Popen(["sh", "-c", "trap '' HUP TERM INT; exec sleep 101"], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for path in ["/sandbox/a.txt", "/tmp/a.txt", "/dev/shm/a.txt", "/sandbox/.profile", "/sandbox/.bashrc"]:
    with open(path, "w") as f:
        f.write("export LEAK_FILE=1\n")
os.makedirs("/sandbox/dir/nested", exist_ok=True)
open("/sandbox/dir/nested/b.bin", "wb").write(os.urandom(1024))
os.makedirs("/tmp/.hidden", exist_ok=True)
os.environ["LEAK_ENV"] = "1"
os.putenv("LEAK_PUTENV", "1")
import time
time.sleep(0.3)
sleeps = []
for entry in os.listdir("/proc"):
    if entry.isdigit():
        try:
            cmd = open(f"/proc/{entry}/cmdline", "rb").read().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "sleep 10" in cmd:
            sleeps.append(cmd.strip())
print("sleeping:", len(sleeps))
`;
