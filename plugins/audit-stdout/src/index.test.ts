import { PassThrough, Writable } from "node:stream";
import { afterEach, expect, test, vi } from "vitest";
import { applyPlugins, InvalidOptionsError, Kit, silentLogger, type AuditRecord } from "@isol8/kit";
import { sampleAuditRecord } from "@isol8/kit/testing";
import { stdoutAudit, StdoutAuditSink } from "./index.js";

const record = (n: number): AuditRecord => sampleAuditRecord(n, { metadata: { user: "u" }, stdout: "a\nb" });

afterEach(() => vi.restoreAllMocks());

test("one JSON line per record to an injected stream", async () => {
  const stream = new PassThrough();
  const chunks: string[] = [];
  stream.on("data", (c: Buffer) => chunks.push(c.toString()));
  const sink = new StdoutAuditSink({ stream });
  await sink.write(record(1));
  await sink.write(record(2));
  await sink.close();
  const lines = chunks.join("").split("\n");
  expect(lines.pop()).toBe("");
  expect(lines.map((l) => JSON.parse(l))).toEqual([record(1), record(2)]);
});

test("registers sink 'stdout', owned by the plugin, as api.sink and .sink; process.stdout by default, looked up at write time", async () => {
  const write = vi.spyOn(process.stdout, "write").mockImplementation(() => true);
  const plugin = stdoutAudit();
  const kit = new Kit(silentLogger);
  applyPlugins(kit, [plugin]);
  expect(kit.auditSinks.get("stdout")).toBe(plugin.api.sink);
  expect(kit.auditSinks.owner("stdout")).toBe("isol8:audit-stdout");
  expect(plugin.sink).toBe(plugin.api.sink);
  expect(plugin.name).toBe("isol8:audit-stdout");
  await plugin.sink.write(record(3));
  expect(write).toHaveBeenCalledWith(`${JSON.stringify(record(3))}\n`);
});

test("write never waits on a slow reader; close waits for the drain, bounded", async () => {
  let release: (() => void) | undefined;
  const slow = new Writable({
    highWaterMark: 16,
    write(_chunk, _enc, callback) {
      release = callback;
    },
  });
  const sink = new StdoutAuditSink({ stream: slow, closeTimeoutMs: 2_000 });
  // The stream accepts nothing until `release` is called: every write returning proves none waits for it.
  for (let i = 0; i < 100; i++) await sink.write(record(i));
  expect(slow.writableNeedDrain).toBe(true);
  const closing = sink.close();
  // Let the writable drain: complete each pending write.
  const pump = setInterval(() => release?.(), 1);
  await closing;
  clearInterval(pump);
  expect(slow.writableNeedDrain).toBe(false);

  const stuck = new Writable({ highWaterMark: 1, write() {} });
  const stuckSink = new StdoutAuditSink({ stream: stuck, closeTimeoutMs: 100 });
  await stuckSink.write(record(1));
  const t0 = Date.now();
  await stuckSink.close();
  expect(Date.now() - t0).toBeGreaterThanOrEqual(90);
});

test("bad options fail when the factory is called, naming the plugin", () => {
  expect(() => stdoutAudit({ stream: "stdout" as never })).toThrow(InvalidOptionsError);
  expect(() => stdoutAudit({ stream: "stdout" as never })).toThrow(/isol8:audit-stdout.*options\.stream: expected a writable stream/);
  expect(() => stdoutAudit({ closeTimeoutMs: -1 })).toThrow(/options\.closeTimeoutMs/);
});
