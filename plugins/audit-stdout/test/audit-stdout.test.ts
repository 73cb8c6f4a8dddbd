import { createHash } from "node:crypto";
import { PassThrough } from "node:stream";
import { afterAll, expect, test } from "vitest";
import type { AuditRecord } from "@isol8/kit";
import { DockerIsol8, defaultPlugins } from "isol8";
import { stdoutAudit } from "../src/index.js";

const engines: DockerIsol8[] = [];
afterAll(async () => {
  await Promise.allSettled(engines.map((e) => e.stop()));
});

test("one JSON line per execution on the sink's stream, secrets masked", async () => {
  const stream = new PassThrough();
  let text = "";
  stream.on("data", (chunk: Buffer) => (text += chunk.toString()));
  const engine = new DockerIsol8(
    { audit: { sinks: ["stdout"], includeCode: true, includeOutput: true }, secrets: { KEY: "k-91d0e5b2" } },
    { plugins: defaultPlugins(stdoutAudit({ stream })) },
  );
  engines.push(engine);
  const first = await engine.execute({ runtime: "bash", code: 'echo "key=$KEY"', metadata: { user: "bob" } });
  const second = await engine.execute({ runtime: "python", code: "import sys; sys.exit(4)" });
  await engine.stop();

  expect(text.endsWith("\n")).toBe(true);
  const lines = text.trimEnd().split("\n");
  expect(lines).toHaveLength(2);
  const records = lines.map((line) => JSON.parse(line) as AuditRecord);
  expect(records[0]).toMatchObject({
    executionId: first.executionId,
    runtime: "bash",
    exitCode: 0,
    metadata: { user: "bob" },
    codeSha256: createHash("sha256").update('echo "key=$KEY"').digest("hex"),
    stdout: "key=***\n",
  });
  expect(records[1]).toMatchObject({ executionId: second.executionId, runtime: "python", exitCode: 4 });
  expect(text).not.toContain("k-91d0e5b2");
});
