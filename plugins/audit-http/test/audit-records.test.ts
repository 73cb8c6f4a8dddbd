import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import type { AuditRecord, ExecutionResult, Logger } from "@isol8/kit";
import { DockerIsol8, defaultPlugins } from "isol8";
import { fileAudit } from "@isol8/plugin-audit-file";
import { httpAudit } from "../src/index.js";
import { deadUrl, startWebhook, type Webhook } from "./webhook.js";

const SECRET = "tok-3f9a1c77e2";
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

const dirs: string[] = [];
const hooks: Webhook[] = [];
const engines: DockerIsol8[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "isol8-audit-it-"));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.allSettled(engines.map((e) => e.stop()));
  await Promise.allSettled(hooks.map((h) => h.close()));
  await Promise.allSettled(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function fileRecords(path: string): Promise<AuditRecord[]> {
  const text = await readFile(path, "utf8");
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as AuditRecord);
}

/** The record of one execution, from the file (written before execute() returns) and from the webhook (batched). */
async function recordsOf(result: ExecutionResult, file: string, hook: Webhook): Promise<{ fromFile: AuditRecord; fromHttp: AuditRecord }> {
  const fromFile = (await fileRecords(file)).find((r) => r.executionId === result.executionId);
  expect(fromFile, "the file sink has the record when execute() returns").toBeDefined();
  const fromHttp = await vi.waitFor(
    () => {
      const found = hook.accepted().find((r) => r.executionId === result.executionId);
      if (!found) throw new Error("not delivered yet");
      return found;
    },
    { timeout: 5_000, interval: 20 },
  );
  return { fromFile: fromFile!, fromHttp };
}

describe("records from a real engine, to a file and a webhook", () => {
  let full: { engine: DockerIsol8; file: string; hook: Webhook };
  let bare: { engine: DockerIsol8; file: string; hook: Webhook };

  beforeAll(async () => {
    const make = async (include: boolean) => {
      const dir = await tempDir();
      const hook = await startWebhook();
      hooks.push(hook);
      const files = fileAudit({ dir });
      const engine = new DockerIsol8(
        { audit: { sinks: ["file", "http"], includeCode: include, includeOutput: include }, secrets: { TOKEN: SECRET } },
        { plugins: defaultPlugins(files, httpAudit({ url: hook.url, flushIntervalMs: 50 })) },
      );
      engines.push(engine);
      return { engine, file: files.sink.path, hook };
    };
    [full, bare] = await Promise.all([make(true), make(false)]);
  });

  test("a record holds executionId, timestamp, runtime, the code's SHA-256, exit code, duration and the request's metadata", async () => {
    const code = 'echo "hello"\nexit 3\n';
    const result = await full.engine.execute({ runtime: "bash", code, metadata: { user: "alice", job: "j-42" } });
    expect(result.exitCode).toBe(3);
    const { fromFile, fromHttp } = await recordsOf(result, full.file, full.hook);
    expect(fromFile).toMatchObject({
      executionId: result.executionId,
      engineId: full.engine.id,
      timestamp: result.timestamp,
      runtime: "bash",
      codeSha256: sha256(code),
      exitCode: 3,
      durationMs: result.durationMs,
      timedOut: false,
      oomKilled: false,
      truncated: false,
      containerId: result.containerId,
      metadata: { user: "alice", job: "j-42" },
      securityEvents: [],
    });
    expect(fromFile.codeSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(Date.parse(fromFile.timestamp)).toBeGreaterThan(Date.now() - 120_000);
    // Both sinks receive the same record.
    expect(fromHttp).toEqual(fromFile);
  });

  test("a timeout is a security event of the record", async () => {
    const result = await full.engine.execute({ runtime: "bash", code: "sleep 10", timeoutMs: 1_000 });
    expect(result.timedOut).toBe(true);
    const { fromFile, fromHttp } = await recordsOf(result, full.file, full.hook);
    expect(fromFile.timedOut).toBe(true);
    expect(fromFile.exitCode).toBe(137);
    expect(fromFile.securityEvents).toEqual([{ type: "timeout", detail: expect.stringMatching(/time limit/) }]);
    expect(fromFile.durationMs).toBeGreaterThanOrEqual(1_000);
    expect(fromFile.durationMs).toBe(result.durationMs);
    expect(fromHttp).toEqual(fromFile);
  });

  test("includeCode and includeOutput add code, stdout and stderr, with the secret masked in each", async () => {
    const code = `LITERAL="${SECRET}"\necho "env=$TOKEN literal=$LITERAL"\necho "err=$TOKEN" >&2\n`;
    const result = await full.engine.execute({ runtime: "bash", code });
    expect(result.stdout).toBe("env=*** literal=***\n");
    const { fromFile, fromHttp } = await recordsOf(result, full.file, full.hook);
    expect(fromFile.code).toBe(code.replaceAll(SECRET, "***"));
    expect(fromFile.stdout).toBe("env=*** literal=***\n");
    expect(fromFile.stderr).toBe("err=***\n");
    // The hash identifies the code as it was submitted.
    expect(fromFile.codeSha256).toBe(sha256(code));
    expect(fromHttp).toEqual(fromFile);
    // The secret is nowhere in what the sinks stored or received.
    expect(await readFile(full.file, "utf8")).not.toContain(SECRET);
    expect(JSON.stringify(full.hook.batches)).not.toContain(SECRET);
  });

  test("without includeCode and includeOutput, code, stdout and stderr are absent", async () => {
    const code = 'echo "out $TOKEN"; echo err >&2';
    const result = await bare.engine.execute({ runtime: "bash", code });
    expect(result.stdout).toBe("out ***\n");
    const { fromFile, fromHttp } = await recordsOf(result, bare.file, bare.hook);
    for (const record of [fromFile, fromHttp]) {
      expect(Object.keys(record)).not.toContain("code");
      expect(Object.keys(record)).not.toContain("stdout");
      expect(Object.keys(record)).not.toContain("stderr");
      expect(record.codeSha256).toBe(sha256(code));
      expect(record.exitCode).toBe(0);
    }
    expect(await readFile(bare.file, "utf8")).not.toContain("out ");
  });

  test("records from concurrent executions are whole lines in the file and each reaches the webhook once", async () => {
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => full.engine.execute({ runtime: "bash", code: `echo run-${i}`, metadata: { i: String(i) } })),
    );
    const ids = results.map((r) => r.executionId);
    const inFile = (await fileRecords(full.file)).filter((r) => ids.includes(r.executionId));
    expect(inFile.map((r) => r.metadata.i).sort()).toEqual(["0", "1", "2", "3", "4", "5"]);
    await vi.waitFor(() => expect(full.hook.accepted().filter((r) => ids.includes(r.executionId))).toHaveLength(6), { timeout: 5_000, interval: 20 });
  });
});

describe("a failing webhook", () => {
  test("a webhook that is down never fails or holds up an execution; drops are counted and engine.stop() ends by closeTimeoutMs", async () => {
    const warnings: string[] = [];
    const logger: Logger = { debug() {}, info() {}, warn: (m) => void warnings.push(m), error: (m) => void warnings.push(m) };
    const http = httpAudit({ url: await deadUrl(), batchSize: 1, maxQueue: 2, maxRetries: 1, retryBaseMs: 20, flushIntervalMs: 50, closeTimeoutMs: 500 });
    const engine = new DockerIsol8({ audit: { sinks: ["http"] } }, { plugins: defaultPlugins(http), logger });
    engines.push(engine);
    for (let i = 0; i < 5; i++) {
      const result = await engine.execute({ runtime: "bash", code: `echo ok-${i}` });
      expect(result.exitCode).toBe(0);
      expect(result.stdout).toBe(`ok-${i}\n`);
    }
    const stats = http.sink.stats();
    expect(stats.sent).toBe(0);
    expect(stats.queued).toBeLessThanOrEqual(2);
    expect(stats.lastError).toMatch(/ECONNREFUSED/);
    await engine.stop();
    expect(http.sink.stats()).toMatchObject({ sent: 0, queued: 0, inFlight: 0, dropped: 5 });
    expect(warnings.some((w) => /^audit sink http dropped \d+ record\(s\)/.test(w))).toBe(true);
    // A sink failure is never the engine's "an audit sink failed" error: write only enqueued.
    expect(warnings.some((w) => /an audit sink failed/.test(w))).toBe(false);
  });

  test("engine.stop() flushes records still waiting for the batch timer", async () => {
    const hook = await startWebhook();
    hooks.push(hook);
    const http = httpAudit({ url: hook.url, flushIntervalMs: 60_000 });
    const engine = new DockerIsol8({ audit: { sinks: ["http"] } }, { plugins: defaultPlugins(http) });
    engines.push(engine);
    const result = await engine.execute({ runtime: "bash", code: "true" });
    expect(hook.batches).toHaveLength(0);
    expect(http.sink.stats().queued).toBe(1);
    await engine.stop();
    expect(hook.accepted().map((r) => r.executionId)).toEqual([result.executionId]);
  });
});
