/**
 * Engine option endWithProcess against the real Docker engine: the executor's sandboxes end with
 * the engine's connection (Docker removes them: StdinOnce, AutoRemove), so stop() does not wait for
 * their removal; the exec launcher's sandboxes are removed by stop() as ever; persist is refused.
 */
import { describe, expect, test } from "vitest";
import { DockerIsol8, InvalidOptionsError, defaultPlugins } from "isol8";
import { dieExitCodes, docker, isol8Containers } from "../helpers.js";

const CODE = "import time; print('up', flush=True); time.sleep(60)";

/** Resolves once the program printed "up" (its container runs), with the execution still going. */
function running(engine: DockerIsol8): { up: Promise<string>; done: Promise<unknown> } {
  let resolveUp!: (id: string) => void;
  const up = new Promise<string>((resolve) => (resolveUp = resolve));
  const done = (async () => {
    for await (const event of engine.executeStream({ runtime: "python", code: CODE })) {
      if (event.type === "stdout" && String(event.data).includes("up")) resolveUp((await isol8Containers(engine.id))[0]!);
    }
  })().catch((error: unknown) => error);
  return { up, done };
}

describe("endWithProcess", () => {
  test("executor sandboxes: created to remove themselves; stop() closes the connection and returns, then the executor exits 0 and Docker removes the container", async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    const engine = new DockerIsol8({ endWithProcess: true, launcher: "executor", poolSize: 0, timeoutMs: 90_000 }, { plugins: defaultPlugins() });
    const run = running(engine);
    const container = await run.up;
    const info = JSON.parse(await docker("inspect", container))[0];
    expect(info.HostConfig.AutoRemove).toBe(true);
    expect(info.Config.StdinOnce).toBe(true);
    await engine.stop();
    await run.done;
    await expect.poll(() => isol8Containers(engine.id), { timeout: 30_000, interval: 100 }).toEqual([]);
    expect(await dieExitCodes(container, since)).toEqual(["0"]);
  });

  test("exec launcher sandboxes (no executor to see the connection end): stop() removes them itself, as without the option", async () => {
    const engine = new DockerIsol8({ endWithProcess: true, launcher: "exec", poolSize: 0, timeoutMs: 90_000 }, { plugins: defaultPlugins() });
    const run = running(engine);
    const container = await run.up;
    const info = JSON.parse(await docker("inspect", container))[0];
    expect(info.HostConfig.AutoRemove).toBe(false);
    await engine.stop();
    await run.done;
    // Checked at once, not polled: stop() removed it.
    expect(await isol8Containers(engine.id)).toEqual([]);
  });

  test("with persist: refused at construction, naming both options (persist alone is accepted)", () => {
    expect(() => new DockerIsol8({ endWithProcess: true, persist: true })).toThrow(InvalidOptionsError);
    expect(() => new DockerIsol8({ endWithProcess: true, persist: true })).toThrow(/endWithProcess and persist/);
    expect(() => new DockerIsol8({ persist: true })).not.toThrow();
  });
});
