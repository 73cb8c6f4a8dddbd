import { createHash } from "node:crypto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { DockerIsol8 } from "@isol8/core";
import { pythonRuntime } from "@isol8/plugin-runtime-python";
import { memoryAudit } from "../src/memory-audit.js";

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

// Two engines, each with its own memoryAudit instance; only the first selects the sink.
const selected = memoryAudit();
const unselected = memoryAudit();
let audited: DockerIsol8;
let silent: DockerIsol8;

beforeAll(() => {
  audited = new DockerIsol8({ audit: { sinks: ["memory"] } }, { plugins: [pythonRuntime(), selected] });
  silent = new DockerIsol8({}, { plugins: [pythonRuntime(), unselected] });
});

afterAll(async () => {
  await Promise.allSettled([audited?.stop(), silent?.stop()]);
});

test("the sink is registered under the plugin's name without the plugin naming itself", () => {
  expect(audited.kit.auditSinks.owner("memory")).toBe("example:audit-memory");
});

test("the sink receives one record per execution: runtime, exit code, the code's SHA-256, metadata and ids", async () => {
  const ok = "print(6 * 7)";
  const failing = "import sys; sys.exit(3)";
  const first = await audited.execute({ runtime: "python", code: ok, metadata: { user: "alice" } });
  const second = await audited.execute({ runtime: "python", code: failing });
  expect(first.stdout).toBe("42\n");
  expect(second.exitCode).toBe(3);

  const records = selected.api!.records;
  await expect.poll(() => records.length).toBe(2);
  expect(records[0]).toMatchObject({
    executionId: first.executionId,
    engineId: audited.id,
    runtime: "python",
    exitCode: 0,
    codeSha256: sha256(ok),
    metadata: { user: "alice" },
    timedOut: false,
    oomKilled: false,
  });
  expect(records[1]).toMatchObject({ executionId: second.executionId, runtime: "python", exitCode: 3, codeSha256: sha256(failing) });
});

test("control: an engine that does not select the sink runs the same code and its sink receives nothing", async () => {
  const result = await silent.execute({ runtime: "python", code: "print(6 * 7)" });
  expect(result.exitCode).toBe(0);
  expect(result.stdout).toBe("42\n");
  expect(silent.kit.auditSinks.owner("memory")).toBe("example:audit-memory");
  expect(unselected.api!.records).toEqual([]);
});
