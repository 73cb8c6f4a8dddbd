import { describe, expect, test } from "vitest";
import { ExecutionError } from "@isol8/core";
import { defaultPlugins } from "isol8";
import { fastPool } from "../src/index.js";
import {
  INSPECT_PY,
  LEAVE_TRACES_PY,
  engineContainers,
  inspectAfterRemoval,
  killContainer,
  poolEngines,
  sampleContainers,
  stopWhileCreating,
} from "../../../test/pool-helpers.js";
import { waitFor } from "../../../test/helpers.js";

// Every engine a test makes is stopped after its test, and must leave no container.
const makeEngine = poolEngines("fast", () => defaultPlugins(fastPool()));

describe("isolation across reuse", () => {
  test("execution B in A's container sees none of A's processes, files or environment", async () => {
    // clean: 0 keeps no fresh container aside: B must get A's container, wiped.
    const engine = makeEngine({ poolSize: { clean: 0, dirty: 1 } });
    await engine.start();
    const a = await engine.execute({ runtime: "python", code: LEAVE_TRACES_PY, env: { A_ONLY: "1" } });
    expect(a.exitCode, a.stderr).toBe(0);
    expect(a.stdout).toBe("sleeping: 2\n"); // A's leftovers were running when A ended

    const b = await engine.execute({ runtime: "python", code: INSPECT_PY });
    expect(b.exitCode, b.stderr).toBe(0);
    expect(b.containerId).toBe(a.containerId);
    expect(b.coldStart).toBe(false);
    expect(JSON.parse(b.stdout)).toEqual({ procs: [], sandbox: ["main.py"], tmp: [], shm: [], env: {} });
  });

  test("the same holds on a pool with clean containers: B reuses A's container once the worker wiped it", async () => {
    const engine = makeEngine({ poolSize: { clean: 1, dirty: 1 } });
    await engine.start({ prewarm: { runtimes: ["python"] } });
    const a = await engine.execute({ runtime: "python", code: LEAVE_TRACES_PY, env: { A_ONLY: "1" } });
    expect(a.stdout).toBe("sleeping: 2\n");
    // Execute until A's container comes round again (clean pool of 1: at most a few runs).
    let b = await engine.execute({ runtime: "python", code: INSPECT_PY });
    for (let i = 0; i < 6 && b.containerId !== a.containerId; i++) b = await engine.execute({ runtime: "python", code: INSPECT_PY });
    expect(b.containerId).toBe(a.containerId);
    expect(JSON.parse(b.stdout)).toEqual({ procs: [], sandbox: ["main.py"], tmp: [], shm: [], env: {} });
  });
});

/** What the core's wipe (DockerIsol8#wipe) must clear beyond files and processes. */
describe("the wipe leaves nothing of A for B", () => {
  test("a directory A made read-only (chmod 500) is emptied", async () => {
    const engine = makeEngine({ poolSize: { clean: 0, dirty: 1 } });
    await engine.start();
    const a = await engine.execute({
      runtime: "python",
      code: [
        "import os",
        "for d in ['/sandbox/ro', '/tmp/ro', '/dev/shm/ro']:",
        "    os.makedirs(d)",
        "    open(d + '/secret', 'w').write('from A')",
        "    os.chmod(d, 0o500)",
        "print('ok')",
      ].join("\n"),
    });
    expect(a.stdout).toBe("ok\n");
    const b = await engine.execute({ runtime: "python", code: "import os\nprint([os.path.exists(d) for d in ['/sandbox/ro', '/tmp/ro', '/dev/shm/ro']])" });
    expect(b.containerId).toBe(a.containerId);
    expect(b.stdout).toBe("[False, False, False]\n");
  });

  test("System V IPC objects (a message queue, a shared memory segment) A created are removed", async () => {
    const engine = makeEngine({ poolSize: { clean: 0, dirty: 1 } });
    await engine.start();
    const a = await engine.execute({ runtime: "bash", code: "ipcmk -Q >/dev/null && ipcmk -M 4096 >/dev/null && echo ok" });
    expect(a.stdout).toBe("ok\n");
    const b = await engine.execute({ runtime: "bash", code: "ipcs -q -m | grep -c sandbox" });
    expect(b.containerId).toBe(a.containerId);
    expect(b.stdout).toBe("0\n");
  });
});

describe("warm pool", () => {
  // Warm vs cold latency is a figure, not a property: `pnpm bench` measures it (sections "latency",
  // on a warm pool, and "cold").
  test("50 sequential python executions: none is a cold start, every output is right, the containers are reused", async () => {
    const engine = makeEngine({ poolSize: { clean: 2, dirty: 2 } });
    await engine.start({ prewarm: { runtimes: ["python"] } });
    const containers = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const result = await engine.execute({ runtime: "python", code: `import sys\nprint(${i} * 3, sys.argv[0])` });
      expect(result.exitCode, result.stderr).toBe(0);
      expect(result.stdout).toBe(`${i * 3} /sandbox/main.py\n`);
      expect(result.coldStart, `execution ${i}`).toBe(false);
      containers.add(result.containerId!);
    }
    // Containers are reused: the pool never grew past its sizes plus the one in use.
    expect(containers.size).toBeLessThanOrEqual(2 + 2 + 1);
  }, 400_000);

  test("20 concurrent executions with poolSize 2 all succeed; at rest the engine holds at most clean + dirty", async () => {
    const engine = makeEngine({ poolSize: 2 });
    await engine.start({ prewarm: { runtimes: ["python"] } });
    const sampler = sampleContainers(engine, 50);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => engine.execute({ runtime: "python", code: `import time\ntime.sleep(0.2)\nprint(${i} ** 2)` })),
    );
    results.forEach((result, i) => {
      expect(result.exitCode, result.stderr).toBe(0);
      expect(result.stdout).toBe(`${i ** 2}\n`);
    });
    const duringRun = sampler.max;
    const atRest = await waitFor(
      () => engineContainers(engine),
      (list) => list.length <= 4,
    );
    await new Promise((resolve) => setTimeout(resolve, 500)); // settled: nothing more comes or goes
    const settled = await engineContainers(engine);
    await sampler.stop();
    console.log(
      `[pool-fast] 20 concurrent, poolSize 2: max containers seen during the run ${duringRun} (${sampler.samples} samples), ` +
        `at rest ${settled.length}; cold starts ${results.filter((r) => r.coldStart).length}/20`,
    );
    expect(atRest.length).toBeLessThanOrEqual(4);
    expect(settled.length).toBeLessThanOrEqual(4);
    expect(settled.every((c) => c.state === "running")).toBe(true);
    // Everything left is usable: a further round reuses it.
    const again = await engine.execute({ runtime: "python", code: "print('again')" });
    expect(again).toMatchObject({ stdout: "again\n", coldStart: false });
  }, 300_000);
});

describe("failures", () => {
  test("a clean container killed out of band is replaced, not handed out", async () => {
    const engine = makeEngine({ poolSize: { clean: 1, dirty: 1 } });
    await engine.start({ prewarm: { runtimes: ["python"] } });
    const prewarmed = await engineContainers(engine);
    expect(prewarmed).toHaveLength(1);
    const victim = prewarmed[0];
    await killContainer(engine, victim!.id);
    const result = await engine.execute({ runtime: "python", code: "print('alive')" });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toBe("alive\n");
    expect(result.containerId).not.toBe(victim!.id);
    // The dead container is removed, not left behind stopped.
    expect(await inspectAfterRemoval(engine, victim!.id)).toBeUndefined();
  });

  test("a clean container removed out of band is replaced", async () => {
    const engine = makeEngine({ poolSize: { clean: 2, dirty: 1 } });
    await engine.start({ prewarm: { runtimes: ["python"] } });
    const victims = await engineContainers(engine);
    expect(victims).toHaveLength(2);
    await Promise.all(victims.map((v) => engine.docker.removeContainer(v.id)));
    const result = await engine.execute({ runtime: "python", code: "print('alive')" });
    expect(result.stdout).toBe("alive\n");
    expect(victims.map((v) => v.id)).not.toContain(result.containerId);
  });

  test("a dirty container that died is replaced, not wiped and handed out", async () => {
    const engine = makeEngine({ poolSize: { clean: 0, dirty: 1 } });
    await engine.start();
    const a = await engine.execute({ runtime: "python", code: "print(1)" });
    await killContainer(engine, a.containerId!);
    const b = await engine.execute({ runtime: "python", code: "print(2)" });
    expect(b.stdout).toBe("2\n");
    expect(b.containerId).not.toBe(a.containerId);
  });
});

describe("prewarm and stop", () => {
  test("prewarm { runtimes: ['python', 'node'] } creates containers for those runtimes only", async () => {
    const engine = makeEngine({ poolSize: { clean: 2, dirty: 1 } });
    await engine.start({ prewarm: { runtimes: ["python", "node"] } });
    const list = await engineContainers(engine);
    expect(list.map((c) => c.runtime).sort()).toEqual(["node", "node", "python", "python"]);
    expect(list.every((c) => c.state === "running")).toBe(true);
  });

  test("stop() leaves no container, even with creates in flight", async () => {
    const engine = makeEngine({ poolSize: { clean: 3, dirty: 1 } });
    // A prewarm of 6 containers and a cold execution are under way when stop() comes.
    const { starting, running } = await stopWhileCreating(engine);
    expect(await engineContainers(engine)).toEqual([]);
    // The prewarm was cut short, saying why.
    const cut = await starting;
    expect(cut).toBeInstanceOf(ExecutionError);
    expect((cut as Error).message).toMatch(/pool was drained: the engine is stopping/);
    // The execution in flight did not complete (it rejected; which error is the engine's lifecycle to say).
    expect(await running).toBeInstanceOf(Error);
    // Nothing appears later either (a create that was in flight must not land after stop()).
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await engineContainers(engine)).toEqual([]);
  });
});
