import { afterAll, expect, test } from "vitest";
import { CONTAINER_LABELS, DockerDriver } from "@isol8/core";
import { DockerIsol8 } from "isol8";
import { docker, isol8Cli } from "../helpers.js";

const driver = new DockerDriver();
const others: string[] = [];
afterAll(async () => {
  for (const id of others) await driver.removeContainer(id);
});

/** A container of "another program": no isol8 labels. */
async function foreignContainer(): Promise<string> {
  const id = (await docker("run", "-d", "--pull", "never", "--label", "purpose=not-isol8", "isol8/bash:latest", "sleep", "300")).trim();
  others.push(id);
  return id;
}

test("on start(), containers left by a dead engine are reaped; a live engine's and others' are not", async () => {
  // A container that claims an owner process that does not exist (as after a crash or kill -9).
  const orphan = (
    await docker(
      "run",
      "-d",
      "--pull",
      "never",
      "--label",
      `${CONTAINER_LABELS.managed}=true`,
      "--label",
      `${CONTAINER_LABELS.engine}=dead-engine`,
      "--label",
      `${CONTAINER_LABELS.ownerPid}=999999`,
      "--label",
      `${CONTAINER_LABELS.ownerHost}=${(await import("node:os")).hostname()}`,
      "isol8/bash:latest",
      "sleep",
      "300",
    )
  ).trim();
  const foreign = await foreignContainer();
  const live = new DockerIsol8({ mode: "persistent" });
  await live.execute({ runtime: "bash", code: "true" });
  const liveIds = (await driver.listContainers({ [CONTAINER_LABELS.engine]: live.id })).map((c) => c.Id);
  expect(liveIds).toHaveLength(1);

  const engine = new DockerIsol8();
  await engine.start();
  expect(await driver.inspectContainer(orphan)).toBeUndefined();
  expect((await driver.inspectContainer(foreign))?.State?.Running).toBe(true);
  for (const id of liveIds) expect((await driver.inspectContainer(id))?.State?.Running).toBe(true);
  await engine.stop();
  await live.stop();
});

test("DockerIsol8.cleanup() removes only isol8's containers, and reports what it did", async () => {
  const foreign = await foreignContainer();
  const kept = new DockerIsol8({ persist: true, mode: "persistent" });
  const result = await kept.execute({ runtime: "bash", code: "true" });
  await kept.stop(); // persist: the container stays
  expect((await driver.inspectContainer(result.containerId!))?.State?.Running).toBe(true);

  const report = await DockerIsol8.cleanup();
  expect(report.removed).toBeGreaterThanOrEqual(1);
  expect(report.failed).toBe(0);
  expect(report.errors).toEqual([]);
  expect(await driver.inspectContainer(result.containerId!)).toBeUndefined();
  expect((await driver.inspectContainer(foreign))?.State?.Running).toBe(true);
  expect(await driver.listContainers({ [CONTAINER_LABELS.engine]: true })).toEqual([]);
});

test("isol8 cleanup asks for --force without a terminal, then removes", async () => {
  const kept = new DockerIsol8({ persist: true, mode: "persistent" });
  const result = await kept.execute({ runtime: "bash", code: "true" });
  await kept.stop();
  const refused = await isol8Cli(["cleanup"]);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toMatch(/pass --force/);
  const done = await isol8Cli(["cleanup", "--force"]);
  expect(done.code).toBe(0);
  expect(done.stdout).toMatch(/Removed \d+ container/);
  expect(await driver.inspectContainer(result.containerId!)).toBeUndefined();
});

test("stop() leaves no container behind", async () => {
  const engine = new DockerIsol8();
  await Promise.all([1, 2, 3].map((n) => engine.execute({ runtime: "bash", code: `echo ${n}` })));
  await engine.stop();
  expect(await driver.listContainers({ [CONTAINER_LABELS.engine]: engine.id })).toEqual([]);
});
