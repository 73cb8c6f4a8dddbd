import { afterEach, expect, test } from "vitest";
import { DockerIsol8 } from "isol8";
import { isol8Containers } from "../helpers.js";

// OOM kills are counted per execution (the memory cgroup's oom_kill counter, after − before),
// whatever the program's exit code, and a container with an OOM kill in an execution never goes
// back to the pool. Runs on the launcher ISOL8_LAUNCHER selects.

const engines: DockerIsol8[] = [];

afterEach(async () => {
  for (const engine of engines.splice(0)) {
    await engine.stop();
    expect(await isol8Containers(engine.id)).toEqual([]);
  }
});

/**
 * A grandchild (tail, in a subshell) holds an endless line until the OOM killer ends it; the
 * main program goes on and exits 0. The pipeline's status proves the kill (137 = SIGKILL).
 */
const GRANDCHILD_OOM = '( head -c 1G /dev/zero | tail -n 1 > /dev/null ); echo "pipeline $?"; exit 0';
/** Exit 137 for a reason that has nothing to do with memory. */
const SELF_KILL = "echo before; kill -9 $$";

test("a grandchild killed by the OOM killer is reported (oomKilled) although the program exits 0, and the container is not reused", async () => {
  // clean: 0, dirty: 1: the next execution reuses this container whenever it was returned to the pool.
  const engine = new DockerIsol8({ poolStrategy: "fast", poolSize: { clean: 0, dirty: 1 }, memoryLimit: "96m", timeoutMs: 60_000 });
  engines.push(engine);
  await engine.start();

  // Positive control of reuse on this pool: a plain execution's container comes back.
  const first = await engine.execute({ runtime: "bash", code: "echo ok" });
  const again = await engine.execute({ runtime: "bash", code: "echo ok" });
  expect(again.containerId).toBe(first.containerId);

  const oom = await engine.execute({ runtime: "bash", code: GRANDCHILD_OOM });
  expect(oom.stdout).toBe("pipeline 137\n");
  expect(oom.exitCode).toBe(0);
  expect(oom.oomKilled).toBe(true);
  expect(oom.containerId).toBe(first.containerId);

  const next = await engine.execute({ runtime: "bash", code: SELF_KILL });
  expect(next.exitCode).toBe(137);
  expect(next.oomKilled).toBe(false);
  expect(next.containerId).not.toBe(oom.containerId);
});

test("OOM kills are counted per execution: after an OOM in one execution, the next one in the same container that exits 137 by kill -9 is not oomKilled", async () => {
  // A persistent container is kept after an OOM: the count must still be this execution's own.
  const engine = new DockerIsol8({ mode: "persistent", memoryLimit: "96m", timeoutMs: 60_000 });
  engines.push(engine);

  const oom = await engine.execute({ runtime: "bash", code: GRANDCHILD_OOM });
  expect(oom.stdout).toBe("pipeline 137\n");
  expect(oom.exitCode).toBe(0);
  expect(oom.oomKilled).toBe(true);

  const next = await engine.execute({ runtime: "bash", code: SELF_KILL });
  expect(next.stdout).toBe("before\n");
  expect(next.exitCode).toBe(137);
  expect(next.oomKilled).toBe(false);
  expect(next.containerId).toBe(oom.containerId);
});
