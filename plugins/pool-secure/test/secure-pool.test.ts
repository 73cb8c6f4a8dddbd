import { describe, expect, test } from "vitest";
import { defaultPlugins } from "isol8";
import { securePool } from "../src/index.js";
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

const makeEngine = poolEngines("secure", () => defaultPlugins(securePool()));

describe("no container is ever used twice", () => {
  test("sequential executions each get a container no other execution used; B sees nothing of A", async () => {
    const engine = makeEngine({ poolSize: 2 });
    await engine.start({ prewarm: { runtimes: ["python"] } });
    const ids: string[] = [];
    let cold = 0;
    for (let i = 0; i < 8; i++) {
      const a = await engine.execute({ runtime: "python", code: LEAVE_TRACES_PY, env: { A_ONLY: "1" } });
      expect(a.stdout).toBe("sleeping: 2\n");
      const b = await engine.execute({ runtime: "python", code: INSPECT_PY });
      expect(b.containerId).not.toBe(a.containerId);
      expect(JSON.parse(b.stdout)).toEqual({ procs: [], sandbox: ["main.py"], tmp: [], shm: [], env: {} });
      ids.push(a.containerId!, b.containerId!);
      cold += Number(a.coldStart) + Number(b.coldStart);
    }
    expect(new Set(ids).size).toBe(ids.length);
    console.log(`[pool-secure] 16 sequential executions on a prewarmed pool of 2: cold starts ${cold}/16`);
    // Used containers are gone (destroyed on release), only ready ones remain.
    const left = await waitFor(
      () => engineContainers(engine),
      (list) => list.length <= 2,
    );
    for (const c of left) expect(ids).not.toContain(c.id);
  }, 300_000);

  test("concurrent executions never share a container", async () => {
    const engine = makeEngine({ poolSize: 2 });
    await engine.start({ prewarm: { runtimes: ["python"] } });
    const sampler = sampleContainers(engine, 50);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => engine.execute({ runtime: "python", code: `print(${i} * 7)` })));
    await sampler.stop();
    results.forEach((result, i) => {
      expect(result.exitCode, result.stderr).toBe(0);
      expect(result.stdout).toBe(`${i * 7}\n`);
    });
    expect(new Set(results.map((r) => r.containerId)).size).toBe(20);
    const atRest = await waitFor(
      () => engineContainers(engine),
      (list) => list.length <= 2,
    );
    console.log(
      `[pool-secure] 20 concurrent, poolSize 2: max containers seen ${sampler.max}, at rest ${atRest.length}, cold starts ${results.filter((r) => r.coldStart).length}/20`,
    );
    expect(atRest.length).toBeLessThanOrEqual(2);
  }, 300_000);

  test("a prewarmed container is handed out without a cold start; with none ready the execution waits for a create", async () => {
    const engine = makeEngine({ poolSize: { clean: 1, dirty: 0 } });
    await engine.start({ prewarm: { runtimes: ["python"] } });
    const [warm, cold] = await Promise.all([
      engine.execute({ runtime: "python", code: "print('w')" }),
      engine.execute({ runtime: "python", code: "print('c')" }),
    ]);
    expect([warm.coldStart, cold.coldStart].sort()).toEqual([false, true]);
    expect(warm.stdout).toBe("w\n");
    expect(cold.stdout).toBe("c\n");
  });
});

describe("failures, prewarm and stop", () => {
  test("a ready container killed out of band is replaced, not handed out", async () => {
    const engine = makeEngine({ poolSize: 1 });
    await engine.start({ prewarm: { runtimes: ["python"] } });
    const [victim] = await engineContainers(engine);
    await killContainer(engine, victim!.id);
    const result = await engine.execute({ runtime: "python", code: "print('alive')" });
    expect(result.stdout).toBe("alive\n");
    expect(result.containerId).not.toBe(victim!.id);
    expect(await inspectAfterRemoval(engine, victim!.id)).toBeUndefined();
  });

  test("prewarm { runtimes: ['python', 'node'] } creates containers for those runtimes only", async () => {
    const engine = makeEngine({ poolSize: { clean: 2, dirty: 5 } });
    await engine.start({ prewarm: { runtimes: ["python", "node"] } });
    const list = await engineContainers(engine);
    // size.dirty means nothing to this pool: only the clean count is kept ready.
    expect(list.map((c) => c.runtime).sort()).toEqual(["node", "node", "python", "python"]);
  });

  test("stop() leaves no container, even with creates in flight", async () => {
    const engine = makeEngine({ poolSize: 3 });
    const { starting, running } = await stopWhileCreating(engine);
    expect(await engineContainers(engine)).toEqual([]);
    expect(await starting).toBeInstanceOf(Error);
    await running;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await engineContainers(engine)).toEqual([]);
  });
});
