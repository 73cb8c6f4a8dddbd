/**
 * A persistent engine's lifecycle against the real Docker engine: stop() really stops it (nothing
 * queued runs or creates a container afterwards), and a session container killed from outside
 * gives a typed error, is removed, and is replaced by the next execution.
 */
import { afterEach, describe, expect, test } from "vitest";
import Docker from "dockerode";
import { DockerIsol8, Isol8Error, defaultPlugins, type ExecutionResult } from "isol8";
import { definePlugin } from "@isol8/core";
import { isol8Containers } from "../helpers.js";

const docker = new Docker();
const engines: DockerIsol8[] = [];

function persistentEngine(): DockerIsol8 {
  const engine = new DockerIsol8({ mode: "persistent", timeoutMs: 60_000 });
  engines.push(engine);
  return engine;
}

afterEach(async () => {
  const ids = engines.map((e) => e.id);
  await Promise.allSettled(engines.splice(0).map((e) => e.stop()));
  for (const id of ids) expect(await isol8Containers(id)).toEqual([]);
});

/** The code of an Isol8Error a promise rejects with (fails the test when it resolves). */
async function rejectionCode(promise: Promise<unknown>): Promise<string | undefined> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, "expected a rejection").toBeDefined();
  expect(Isol8Error.isInstance(error), `expected an Isol8Error, got ${String(error)}`).toBe(true);
  return (error as Isol8Error).code;
}

describe("stop() of a persistent engine", () => {
  test("executions queued behind the running one reject with ISOL8_ERR_ENGINE_STOPPED and create no container", async () => {
    const engine = persistentEngine();
    const stream = engine.executeStream({ runtime: "bash", code: "echo started; sleep 2; echo done" })[Symbol.asyncIterator]();
    // The first execution is running (positive control: the engine did create its container).
    const first = await stream.next();
    expect(first.value).toEqual({ type: "stdout", data: "started\n" });
    expect(await isol8Containers(engine.id)).toHaveLength(1);
    const queued = [engine.execute({ runtime: "bash", code: "echo second" }), engine.execute({ runtime: "bash", code: "echo third" })];
    const settled = Promise.allSettled(queued);
    await engine.stop();
    const drain = (async () => {
      for (let e = await stream.next(); !e.done; e = await stream.next());
    })();
    await drain;
    const outcomes = await settled;
    expect(outcomes.map((o) => o.status)).toEqual(["rejected", "rejected"]);
    for (const queuedRun of queued) expect(await rejectionCode(queuedRun)).toBe("ISOL8_ERR_ENGINE_STOPPED");
    // Nothing is created once they have settled, nor a moment later.
    expect(await isol8Containers(engine.id)).toEqual([]);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await isol8Containers(engine.id)).toEqual([]);
  });

  test("execute() after stop() rejects with ISOL8_ERR_ENGINE_STOPPED instead of restarting; start() again restarts", async () => {
    const engine = persistentEngine();
    expect((await engine.execute({ runtime: "bash", code: "echo before" })).stdout).toBe("before\n");
    await engine.stop();
    expect(await rejectionCode(engine.execute({ runtime: "bash", code: "echo after" }))).toBe("ISOL8_ERR_ENGINE_STOPPED");
    const events: string[] = [];
    for await (const event of engine.executeStream({ runtime: "bash", code: "echo after" }))
      events.push(`${event.type}:${event.type === "error" ? event.code : ""}`);
    expect(events).toEqual(["error:ISOL8_ERR_ENGINE_STOPPED"]);
    expect(await isol8Containers(engine.id)).toEqual([]);
    // The way to use it again is start().
    await engine.start();
    expect((await engine.execute({ runtime: "bash", code: "echo restarted" })).stdout).toBe("restarted\n");
  });
});

describe("a persistent container killed from outside", () => {
  test("the next execute() rejects with ISOL8_ERR_SANDBOX_GONE, the dead container is removed, and the one after starts fresh", async () => {
    const engine = persistentEngine();
    const first: ExecutionResult = await engine.execute({ runtime: "bash", code: "echo kept > /sandbox/state; cat /sandbox/state" });
    expect(first.stdout).toBe("kept\n");
    const killed = first.containerId!;
    await docker.getContainer(killed).kill();

    const error = await engine.execute({ runtime: "bash", code: "cat /sandbox/state" }).then(
      () => undefined,
      (e: unknown) => e as Isol8Error,
    );
    expect(error?.code).toBe("ISOL8_ERR_SANDBOX_GONE");
    expect(error?.message).toMatch(/container .* is gone/);
    expect(error?.message).toMatch(/files it held are lost/);
    // The dead container is removed (not left Exited until the process ends).
    await expect.poll(() => isol8Containers(engine.id), { timeout: 30_000 }).not.toContain(killed);

    const next = await engine.execute({ runtime: "bash", code: "cat /sandbox/state 2>&1 || echo missing" });
    expect(next.containerId).not.toBe(killed);
    expect(next.coldStart).toBe(true);
    expect(next.stdout).toMatch(/missing/);
  });
});

describe("an execution aborted while it waits for the persistent container", () => {
  test("rejects with ISOL8_ERR_EXECUTION and never runs, while the one after it does run", async () => {
    const engine = persistentEngine();
    const stream = engine.executeStream({ runtime: "bash", code: "echo started; sleep 2; echo done" })[Symbol.asyncIterator]();
    expect((await stream.next()).value).toEqual({ type: "stdout", data: "started\n" });
    // Queued behind the running one, then aborted before its turn comes.
    const abort = new AbortController();
    const queued = engine.execute({ runtime: "bash", code: "touch /sandbox/aborted-ran" }, { signal: abort.signal });
    abort.abort();
    // The running execution holds the container until its stream is read to the end.
    for (let e = await stream.next(); !e.done; e = await stream.next());
    expect(await rejectionCode(queued)).toBe("ISOL8_ERR_EXECUTION");
    // Positive control on the same container: an execution that is not aborted runs, and sees
    // what it left; the aborted one left nothing.
    const after = await engine.execute({ runtime: "bash", code: "touch /sandbox/control-ran; ls /sandbox" });
    expect(after.exitCode).toBe(0);
    expect(after.stdout).toContain("control-ran");
    expect(after.stdout).not.toContain("aborted-ran");
  });
});

describe("stop() while an ephemeral execution waits for its container", () => {
  test("the execution rejects with ISOL8_ERR_ENGINE_STOPPED (an isol8 error, not a bare AbortError) and no container is left", async () => {
    const engineRef: { current?: DockerIsol8 } = {};
    let stopping: Promise<unknown> | undefined;
    // stop() is called the moment the execution is admitted, so it lands while the pool is still
    // creating the execution's container (the engine starts with an empty pool).
    const stopOnAdmission = definePlugin({
      name: "test:stop-on-admission",
      setup: () => (kit) => {
        kit.hooks.beforeAcquire.tapPromise("test:stop-on-admission", async () => {
          stopping = engineRef.current!.stop();
          return undefined;
        });
      },
    });
    const engine = new DockerIsol8({}, { plugins: defaultPlugins(stopOnAdmission()) });
    engineRef.current = engine;
    engines.push(engine);
    await engine.start();
    const error = await engine.execute({ runtime: "bash", code: "echo ran" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(stopping, "the hook fired").toBeDefined();
    await stopping;
    expect(Isol8Error.isInstance(error), `expected an Isol8Error, got ${String(error)}`).toBe(true);
    expect((error as Isol8Error).code).toBe("ISOL8_ERR_ENGINE_STOPPED");
    expect(await isol8Containers(engine.id)).toEqual([]);
  });
});
