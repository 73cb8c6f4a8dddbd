import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { applyPlugins, InvalidOptionsError, Kit, silentLogger, type AuditRecord } from "@isol8/kit";
import { sampleAuditRecord as record } from "@isol8/kit/testing";
import { fileAudit } from "./index.js";
import { FileAuditSink, rotatedOldestFirst, rotationStamp, splitName, type FileAuditSinkOptions } from "./file-sink.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "isol8-audit-file-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const lineLength = (r: AuditRecord) => Buffer.byteLength(`${JSON.stringify(r)}\n`);

function sinkWith(options: Partial<FileAuditSinkOptions> = {}, now?: () => number) {
  return new FileAuditSink({ dir, fileName: "audit.jsonl", maxBytes: 1024 ** 2, retain: 10, ...options }, { now, log: silentLogger });
}

async function lines(path: string): Promise<AuditRecord[]> {
  const text = await readFile(path, "utf8");
  expect(text.endsWith("\n")).toBe(true);
  return text
    .slice(0, -1)
    .split("\n")
    .map((line) => JSON.parse(line) as AuditRecord);
}

describe("FileAuditSink", () => {
  test("appends one JSON line per record, creating nested directories, with mode 0600", async () => {
    const nested = join(dir, "a", "b");
    const sink = new FileAuditSink({ dir: nested, fileName: "audit.jsonl", maxBytes: 1024 ** 2, retain: 3 });
    await sink.write(record(1, { stdout: "two\nlines\u2028" }));
    await sink.write(record(2));
    await sink.close();
    expect((await lines(join(nested, "audit.jsonl"))).map((r) => r.executionId)).toEqual(["exec-1", "exec-2"]);
    expect((await lines(join(nested, "audit.jsonl")))[0]!.stdout).toBe("two\nlines\u2028");
    expect((await stat(join(nested, "audit.jsonl"))).mode & 0o777).toBe(0o600);
    expect((await stat(nested)).mode & 0o777).toBe(0o700);
  });

  test("appends to an existing file, narrowing its mode, and repairs a line cut short", async () => {
    await writeFile(join(dir, "audit.jsonl"), '{"executionId":"old"}\n{"cut', { mode: 0o644 });
    const sink = sinkWith();
    await sink.write(record(1));
    await sink.close();
    const text = await readFile(join(dir, "audit.jsonl"), "utf8");
    expect(text).toBe(`{"executionId":"old"}\n{"cut\n${JSON.stringify(record(1))}\n`);
    expect((await stat(join(dir, "audit.jsonl"))).mode & 0o777).toBe(0o600);
  });

  test("concurrent writes are serialized: no interleaved or lost lines, in call order", async () => {
    const sink = sinkWith({ maxBytes: 1024 ** 3 });
    const big = "x".repeat(100_000);
    await Promise.all(Array.from({ length: 200 }, (_, i) => sink.write(record(i, { stdout: i % 10 === 0 ? big : `out ${i}` }))));
    await sink.close();
    const written = await lines(sink.path);
    expect(written.map((r) => r.executionId)).toEqual(Array.from({ length: 200 }, (_, i) => `exec-${i}`));
    expect(written[10]!.stdout).toBe(big);
  });

  test("rotates by size before a record would pass maxBytes; no line is split across files", async () => {
    const size = lineLength(record(1));
    let clock = Date.parse("2025-01-31T12:00:00.000Z");
    const sink = sinkWith({ maxBytes: size * 3 }, () => clock++);
    for (let i = 0; i < 10; i++) await sink.write(record(i));
    await sink.close();
    const rotated = await sink.rotatedFiles();
    expect(rotated).toHaveLength(3);
    // 10 records at 3 per file: 3 rotated files of 3, the current one holds the last.
    const all = [];
    for (const path of [...rotated, sink.path]) {
      const content = await lines(path);
      expect(content.length).toBeLessThanOrEqual(3);
      expect((await stat(path)).size).toBeLessThanOrEqual(size * 3);
      all.push(...content.map((r) => r.executionId));
    }
    expect(all).toEqual(Array.from({ length: 10 }, (_, i) => `exec-${i}`));
    expect(rotated[0]).toMatch(/\/audit\.2025-01-31T12-00-00\.\d{3}Z\.jsonl$/);
    expect((await stat(rotated[0]!)).mode & 0o777).toBe(0o600);
  });

  test("a record larger than maxBytes still goes in, alone in its file", async () => {
    const sink = sinkWith({ maxBytes: 50 });
    await sink.write(record(1));
    await sink.write(record(2));
    await sink.close();
    expect((await lines(sink.path)).map((r) => r.executionId)).toEqual(["exec-2"]);
    expect((await lines((await sink.rotatedFiles())[0]!)).map((r) => r.executionId)).toEqual(["exec-1"]);
  });

  test("rotates by age: a file started maxAgeMs ago is rotated by the next write", async () => {
    let clock = Date.parse("2025-01-31T12:00:00.000Z");
    const sink = sinkWith({ maxAgeMs: 60_000 }, () => clock);
    await sink.write(record(1));
    clock += 59_999;
    await sink.write(record(2));
    expect(await sink.rotatedFiles()).toEqual([]);
    clock += 1;
    await sink.write(record(3));
    const rotated = await sink.rotatedFiles();
    expect(rotated.map((p) => p.slice(dir.length + 1))).toEqual([`audit.${rotationStamp(clock)}.jsonl`]);
    expect((await lines(rotated[0]!)).map((r) => r.executionId)).toEqual(["exec-1", "exec-2"]);
    // The new file's age starts at its first record, and survives a close/reopen.
    await sink.close();
    clock += 59_999;
    await sink.write(record(4));
    expect(await sink.rotatedFiles()).toHaveLength(1);
    clock += 1;
    await sink.write(record(5));
    expect(await sink.rotatedFiles()).toHaveLength(2);
    await sink.close();
    expect((await lines(sink.path)).map((r) => r.executionId)).toEqual(["exec-5"]);
  });

  test("two rotations in the same millisecond get a counter, and sort in rotation order", async () => {
    const fixed = Date.parse("2025-01-31T12:00:00.000Z");
    const sink = sinkWith({ maxBytes: 1, retain: 100 }, () => fixed);
    for (let i = 0; i < 13; i++) await sink.write(record(i));
    await sink.close();
    const rotated = await sink.rotatedFiles();
    expect(rotated.map((p) => p.slice(dir.length + 1))).toEqual([
      "audit.2025-01-31T12-00-00.000Z.jsonl",
      ...Array.from({ length: 11 }, (_, n) => `audit.2025-01-31T12-00-00.000Z.${n + 1}.jsonl`),
    ]);
    const order = [];
    for (const path of rotated) order.push(...(await lines(path)).map((r) => r.executionId));
    expect(order).toEqual(Array.from({ length: 12 }, (_, i) => `exec-${i}`));
  });

  test("retention keeps the newest `retain` rotated files and deletes older ones", async () => {
    let clock = Date.parse("2025-01-31T12:00:00.000Z");
    const sink = sinkWith({ maxBytes: 1, retain: 2 }, () => (clock += 1000));
    await writeFile(join(dir, "unrelated.txt"), "keep me");
    await writeFile(join(dir, "audit.jsonl.bak"), "keep me");
    for (let i = 0; i < 6; i++) await sink.write(record(i));
    await sink.close();
    const rotated = await sink.rotatedFiles();
    expect(rotated).toHaveLength(2);
    expect((await lines(rotated[0]!)).map((r) => r.executionId)).toEqual(["exec-3"]);
    expect((await lines(rotated[1]!)).map((r) => r.executionId)).toEqual(["exec-4"]);
    expect((await lines(sink.path)).map((r) => r.executionId)).toEqual(["exec-5"]);
    expect((await readdir(dir)).sort()).toEqual(["audit.jsonl", "audit.jsonl.bak", ...rotated.map((p) => p.slice(dir.length + 1)), "unrelated.txt"].sort());
  });

  test("retain 0 keeps no rotated file", async () => {
    const sink = sinkWith({ maxBytes: 1, retain: 0 });
    for (let i = 0; i < 3; i++) await sink.write(record(i));
    await sink.close();
    expect(await sink.rotatedFiles()).toEqual([]);
    expect((await lines(sink.path)).map((r) => r.executionId)).toEqual(["exec-2"]);
  });

  test("a failing write rejects (the engine logs it), and later writes recover", async () => {
    const blocker = join(dir, "not-a-dir");
    await writeFile(blocker, "");
    const sink = new FileAuditSink({ dir: join(blocker, "audit"), fileName: "audit.jsonl", maxBytes: 1024, retain: 1 });
    await expect(sink.write(record(1))).rejects.toThrow(/ENOTDIR|EEXIST/);
    await expect(sink.write(record(2))).rejects.toThrow();
    await rm(blocker);
    await sink.write(record(3));
    await sink.close();
    expect((await lines(join(blocker, "audit", "audit.jsonl"))).map((r) => r.executionId)).toEqual(["exec-3"]);
  });

  test("close() waits for pending writes; the sink can be written again after close", async () => {
    const sink = sinkWith();
    const pending = Array.from({ length: 50 }, (_, i) => sink.write(record(i)));
    await sink.close();
    expect(await lines(sink.path)).toHaveLength(50);
    await Promise.all(pending);
    await sink.write(record(50));
    await sink.flush();
    expect(await lines(sink.path)).toHaveLength(51);
    await sink.close();
    await sink.close();
  });
});

describe("names", () => {
  test("splitName and rotatedOldestFirst", () => {
    expect(splitName("audit.jsonl")).toEqual({ stem: "audit", ext: ".jsonl" });
    expect(splitName("audit")).toEqual({ stem: "audit", ext: "" });
    expect(
      rotatedOldestFirst(
        [
          "audit.2025-01-02T00-00-00.000Z.jsonl",
          "audit.2025-01-01T00-00-00.000Z.10.jsonl",
          "audit.2025-01-01T00-00-00.000Z.jsonl",
          "audit.2025-01-01T00-00-00.000Z.2.jsonl",
          "audit.jsonl",
          "other.2025-01-01T00-00-00.000Z.jsonl",
          "audit.2025-01-01T00-00-00.000Z.jsonl.tmp",
        ],
        "audit.jsonl",
      ),
    ).toEqual([
      "audit.2025-01-01T00-00-00.000Z.jsonl",
      "audit.2025-01-01T00-00-00.000Z.2.jsonl",
      "audit.2025-01-01T00-00-00.000Z.10.jsonl",
      "audit.2025-01-02T00-00-00.000Z.jsonl",
    ]);
    expect(rotatedOldestFirst(["log.2025-01-01T00-00-00.000Z", "log.2025-01-01T00-00-00.000Z.1"], "log")).toHaveLength(2);
  });
});

describe("fileAudit plugin", () => {
  test("registers sink 'file', owned by the plugin, and exposes it as api.sink and .sink", () => {
    const plugin = fileAudit({ dir, maxBytes: "1m" });
    expect(plugin.name).toBe("isol8:audit-file");
    const kit = new Kit(silentLogger);
    applyPlugins(kit, [plugin]);
    expect(kit.auditSinks.get("file")).toBe(plugin.api.sink);
    expect(plugin.sink).toBe(plugin.api.sink);
    expect(kit.auditSinks.owner("file")).toBe("isol8:audit-file");
    expect(plugin.sink.path).toBe(join(dir, "audit.jsonl"));
  });

  test("bad options fail when the factory is called, naming the plugin and the key", () => {
    expect(() => fileAudit({} as never)).toThrow(InvalidOptionsError);
    expect(() => fileAudit({} as never)).toThrow(/isol8:audit-file.*options\.dir: expected the directory/);
    expect(() => fileAudit({ dir, fileName: "../x" })).toThrow(/isol8:audit-file.*options\.fileName: expected a file name without a directory/);
    expect(() => fileAudit({ dir, maxBytes: "lots" })).toThrow(/options\.maxBytes: expected a positive size/);
    expect(() => fileAudit({ dir, retain: -1 })).toThrow(/options\.retain/);
    expect(() => fileAudit({ dir, maxAgeMs: 0 })).toThrow(/options\.maxAgeMs/);
    expect(() => fileAudit({ dir, colour: "red" } as never)).toThrow(/isol8:audit-file/);
  });
});
