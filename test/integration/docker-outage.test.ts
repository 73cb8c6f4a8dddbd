/**
 * The engine losing its Docker engine, simulated without stopping the dockerd everyone uses: the
 * engine talks to Docker through a test-local socket proxy (test/fixtures/docker-socket-proxy.ts)
 * that the test cuts and restores.
 */
import { afterEach, describe, expect, test } from "vitest";
import Docker from "dockerode";
import { DockerIsol8, Isol8Error, defaultPlugins, type StopReport } from "isol8";
import { startDockerSocketProxy, type DockerSocketProxy } from "../fixtures/docker-socket-proxy.js";
import { isol8Containers } from "../helpers.js";

const realDocker = new Docker();
let proxy: DockerSocketProxy | undefined;
let engine: DockerIsol8 | undefined;

afterEach(async () => {
  await proxy?.restore();
  await engine?.stop();
  const id = engine?.id;
  engine = undefined;
  await proxy?.close();
  proxy = undefined;
  // Each test checks what it leaves; this removes what a failing one left (through the real socket).
  const left = id ? await isol8Containers(id) : [];
  await Promise.allSettled(left.map((c) => realDocker.getContainer(c).remove({ force: true })));
});

async function engineBehindProxy(options: ConstructorParameters<typeof DockerIsol8>[0] = {}): Promise<DockerIsol8> {
  proxy = await startDockerSocketProxy();
  engine = new DockerIsol8({ timeoutMs: 60_000, ...options }, { plugins: defaultPlugins(), docker: new Docker({ socketPath: proxy.socketPath }) });
  await engine.start();
  return engine;
}

/** Whether a container of the engine runs the program `sleep 60` (seen through the real socket). */
async function runningSleep(engineId: string): Promise<boolean> {
  for (const id of await isol8Containers(engineId)) {
    const top = await realDocker
      .getContainer(id)
      .top()
      .catch(() => undefined);
    if (top?.Processes?.some((row: string[]) => row.join(" ").includes("sleep 60"))) return true;
  }
  return false;
}

/** Starts a long run; resolves once the program has printed, with its outcome (the last event) to await. */
async function startLongRun(e: DockerIsol8): Promise<{ outcome: Promise<unknown> }> {
  const stream = e.executeStream({ runtime: "bash", code: "echo running; sleep 60" })[Symbol.asyncIterator]();
  const first = await stream.next();
  expect(first.value).toEqual({ type: "stdout", data: "running\n" });
  const outcome = (async () => {
    for (let next = await stream.next(); !next.done; next = await stream.next()) {
      if (next.value.type === "error") return next.value;
      if (next.value.type === "exit") return next.value;
    }
    return undefined;
  })();
  return { outcome };
}

describe("Docker stops answering mid-execution", () => {
  test("a streamed execution ends with ISOL8_ERR_DOCKER_UNAVAILABLE saying the Docker engine stopped answering, not blaming the container", async () => {
    const e = await engineBehindProxy();
    // Positive control: through the proxy, a run works.
    expect((await e.execute({ runtime: "bash", code: "echo ok" })).stdout).toBe("ok\n");
    expect(proxy!.accepted).toBeGreaterThan(0);

    const { outcome } = await startLongRun(e);
    await proxy!.cut();
    const event = (await outcome) as { type: string; data: string; code?: string };
    // The run failed because Docker went away (not after the program's 60 s).
    expect(event.type).toBe("error");
    expect(event.code).toBe("ISOL8_ERR_DOCKER_UNAVAILABLE");
    expect(event.data).toMatch(/Docker engine is not reachable \(it stopped answering/);
    expect(event.data).not.toMatch(/^the executor's connection/);

    await proxy!.restore();
    expect(await e.stop()).toEqual({ notRemoved: [] });
    expect(await isol8Containers(e.id)).toEqual([]);
  });

  test("execute() rejects with a DockerUnavailableError (ISOL8_ERR_DOCKER_UNAVAILABLE)", async () => {
    const e = await engineBehindProxy();
    // Settled as soon as it fails (the handler is attached now, not after the cut).
    const run = e.execute({ runtime: "bash", code: "echo running; sleep 60" }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    // Positive control: the program is running (seen through the real socket).
    await expect.poll(() => runningSleep(e.id), { timeout: 30_000 }).toBe(true);
    await proxy!.cut();
    const error = await run;
    expect(Isol8Error.isInstance(error), String(error)).toBe(true);
    expect((error as Isol8Error).code).toBe("ISOL8_ERR_DOCKER_UNAVAILABLE");
    expect((error as Error).message).toMatch(/Docker engine is not reachable \(it stopped answering/);
  });
});

describe("containers whose removal failed while Docker was down", () => {
  test("are removed by stop() once Docker answers again, and stop() reports nothing left", async () => {
    // Persistent: one container, so the test knows which one the run used.
    const e = await engineBehindProxy({ mode: "persistent" });
    const { outcome } = await startLongRun(e);
    const [running, ...others] = await isol8Containers(e.id);
    expect(others).toEqual([]);
    expect(running).toBeDefined();
    await proxy!.cut();
    expect(await outcome).toMatchObject({ type: "error" }); // the code is the first test's subject
    // The engine could not remove it: it is still there (seen through the real socket).
    expect(await isol8Containers(e.id)).toContain(running);
    await proxy!.restore();
    const report: StopReport = await e.stop();
    expect(await isol8Containers(e.id)).toEqual([]);
    expect(report).toEqual({ notRemoved: [] });
  });

  test("are removed on the next Docker call that succeeds, before stop()", async () => {
    // Persistent: one container, so the test knows which one the run used.
    const e = await engineBehindProxy({ mode: "persistent" });
    const { outcome } = await startLongRun(e);
    const [running, ...others] = await isol8Containers(e.id);
    expect(others).toEqual([]);
    await proxy!.cut();
    expect(await outcome).toMatchObject({ type: "error" }); // the code is the first test's subject
    expect(await isol8Containers(e.id)).toContain(running);
    await proxy!.restore();
    // Positive control of the engine working again, and the trigger of the retry.
    expect((await e.execute({ runtime: "bash", code: "echo back" })).stdout).toBe("back\n");
    await expect.poll(async () => (await isol8Containers(e.id)).includes(running!), { timeout: 30_000 }).toBe(false);
    expect(await e.stop()).toEqual({ notRemoved: [] });
    expect(await isol8Containers(e.id)).toEqual([]);
  });

  test("stop() while Docker is still down reports the containers it could not remove", async () => {
    // Persistent: one container, so the test knows which one the run used.
    const e = await engineBehindProxy({ mode: "persistent" });
    const { outcome } = await startLongRun(e);
    const [running, ...others] = await isol8Containers(e.id);
    expect(others).toEqual([]);
    await proxy!.cut();
    expect(await outcome).toMatchObject({ type: "error" }); // the code is the first test's subject
    const report = await e.stop();
    expect(report.notRemoved).toEqual([running]);
    expect(await isol8Containers(e.id)).toEqual([running]);
  });
});
