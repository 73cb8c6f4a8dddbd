import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { definePlugin, type AuditRecord, type Logger } from "@isol8/kit";
import { DockerIsol8, defaultPlugins } from "isol8";
import { fileAudit } from "../src/index.js";

const dirs: string[] = [];
const engines: DockerIsol8[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "isol8-audit-file-it-"));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.allSettled(engines.map((e) => e.stop()));
  await Promise.allSettled(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

function capture(): Logger & { lines: { level: string; message: string; fields?: Record<string, unknown> }[] } {
  const lines: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) => void lines.push({ level, message, fields });
  return { lines, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

const parse = (text: string) =>
  text
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as AuditRecord);

test("a third-party sink in a few lines is registered as its plugin's and receives records", async () => {
  // Everything an outside author writes: a plugin that registers a sink by name (owned by the
  // plugin without naming it again: the kit its apply receives knows it).
  const received: AuditRecord[] = [];
  const memoryAudit = definePlugin({
    name: "acme:audit-memory",
    setup: () => (kit) => kit.auditSinks.register("memory", { write: async (record) => void received.push(record) }),
  });

  const engine = new DockerIsol8({ audit: { sinks: ["memory"], includeOutput: true } }, { plugins: defaultPlugins(memoryAudit()) });
  engines.push(engine);
  expect(engine.kit.auditSinks.owner("memory")).toBe("acme:audit-memory");
  const result = await engine.execute({ runtime: "bash", code: "echo from-bash", metadata: { tenant: "acme" } });
  expect(received).toHaveLength(1);
  expect(received[0]).toMatchObject({ executionId: result.executionId, runtime: "bash", exitCode: 0, stdout: "from-bash\n", metadata: { tenant: "acme" } });
});

test("a file sink pointed at an unwritable directory never fails the execution; the engine logs the failure", async () => {
  const blocker = join(await tempDir(), "a-file");
  await writeFile(blocker, "not a directory");
  const log = capture();
  const received: AuditRecord[] = [];
  const memory = definePlugin({ name: "test:memory", setup: () => (kit) => kit.auditSinks.register("memory", { write: async (r) => void received.push(r) }) });
  const engine = new DockerIsol8(
    { audit: { sinks: ["file", "memory"] } },
    { plugins: defaultPlugins(fileAudit({ dir: join(blocker, "audit") }), memory()), logger: log },
  );
  engines.push(engine);
  const result = await engine.execute({ runtime: "bash", code: "echo still-fine; exit 2" });
  expect(result.exitCode).toBe(2);
  expect(result.stdout).toBe("still-fine\n");
  // The other sink still got its record.
  expect(received.map((r) => r.executionId)).toEqual([result.executionId]);
  const failure = log.lines.find((l) => l.message === "an audit sink failed");
  expect(failure?.level).toBe("error");
  expect(failure?.fields).toMatchObject({ sink: "file", error: expect.stringMatching(/ENOTDIR/) });
  await engine.stop();
});

test("records of real executions rotate by size and only `retain` rotated files are kept, each 0600", async () => {
  const dir = await tempDir();
  // A record here is about 1.1 kB (600 bytes of output, the code, the fields): two fit in a file.
  const files = fileAudit({ dir: join(dir, "nested", "audit"), maxBytes: 3_000, retain: 1 });
  const engine = new DockerIsol8({ audit: { sinks: ["file"], includeCode: true, includeOutput: true } }, { plugins: defaultPlugins(files) });
  engines.push(engine);
  const ids: string[] = [];
  for (let i = 0; i < 6; i++) {
    const result = await engine.execute({ runtime: "bash", code: `printf 'x%.0s' $(seq 1 600); echo " run-${i}"` });
    ids.push(result.executionId);
  }
  await engine.stop();
  const rotated = await files.sink.rotatedFiles();
  expect(rotated).toHaveLength(1);
  const kept: AuditRecord[] = [];
  for (const path of [...rotated, files.sink.path]) {
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(path)).size).toBeLessThanOrEqual(3_000);
    kept.push(...parse(await readFile(path, "utf8")));
  }
  // The oldest records went with the deleted files; the newest are all there, in order.
  expect(kept.map((r) => r.executionId)).toEqual(ids.slice(ids.length - kept.length));
  expect(kept.length).toBeGreaterThanOrEqual(2);
  expect(kept.length).toBeLessThan(6);
  expect(kept.at(-1)!.stdout).toMatch(/ run-5\n$/);
});

// What auditing to a file costs per execution is a figure, not a property: `pnpm bench`
// (overheads, "audit to a file vs none") measures it.
