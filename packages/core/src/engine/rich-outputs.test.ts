/**
 * readRichOutputs with its real script, run on this host (sh, ls, stat, GNU tar) by a driver that
 * execs locally: the order, the bounds, what is not an output, and the directory removed after.
 */
import { spawn } from "node:child_process";
import { access, mkdir, mkdtemp, rm, symlink, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MAX_RICH_OUTPUTS, readRichOutputs, type SandboxCommand } from "./rich-outputs.js";

function localCommand(): SandboxCommand {
  return (options) =>
    new Promise<{ exitCode: number }>((resolve, reject) => {
      const child = spawn(options.argv[0]!, options.argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
      options.signal?.addEventListener("abort", () => child.kill("SIGKILL"), { once: true });
      for (const stream of ["stdout", "stderr"] as const) child[stream].on("data", (chunk: Buffer) => void options.onOutput?.(stream, chunk));
      child.once("error", reject);
      child.once("close", (code) => resolve({ exitCode: code ?? -1 }));
    });
}

const bounds = { maxOutputFileSize: 1000, maxOutputFilesSize: 2500 };
const name = (n: number, type: string) => `${String(n).padStart(20, "0")}-7-${type.replace("/", "_")}`;

describe("readRichOutputs", () => {
  let root: string;
  let dir: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "isol8-rich-"));
    dir = join(root, ".isol8-outputs");
    await mkdir(dir);
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("returns the outputs in name (clock) order, binary images as base64 and text as text, and removes the directory", async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 1, 2]);
    await writeFile(join(dir, name(30, "image/png")), png);
    await writeFile(join(dir, name(10, "text/html")), "<b>é</b>");
    await writeFile(join(dir, name(20, "image/svg+xml")), "<svg/>");
    const read = await readRichOutputs(localCommand(), dir, bounds);
    expect(read).toEqual({
      outputs: [
        { type: "text/html", data: "<b>é</b>" },
        { type: "image/svg+xml", data: "<svg/>" },
        { type: "image/png", data: png.toString("base64") },
      ],
      notes: [],
    });
    await expect(access(dir)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("omits an output past the per-output bound and one past the total, keeping their place, and keeps those within", async () => {
    await writeFile(join(dir, name(1, "text/plain")), "a".repeat(1001));
    await writeFile(join(dir, name(2, "text/plain")), "b".repeat(1000));
    await writeFile(join(dir, name(3, "text/plain")), "c".repeat(1000));
    await writeFile(join(dir, name(4, "text/plain")), "d".repeat(600));
    await writeFile(join(dir, name(5, "text/plain")), "e".repeat(500));
    // A sparse file: its apparent size counts, and it is never read.
    await writeFile(join(dir, name(6, "image/png")), "");
    await truncate(join(dir, name(6, "image/png")), 1024 ** 3);
    const read = await readRichOutputs(localCommand(), dir, bounds);
    expect(read.outputs).toEqual([
      { type: "text/plain", data: "", truncated: true, omitted: "output-too-large", sizeBytes: 1001, limitBytes: 1000 },
      { type: "text/plain", data: "b".repeat(1000) },
      { type: "text/plain", data: "c".repeat(1000) },
      { type: "text/plain", data: "", truncated: true, omitted: "total-too-large", sizeBytes: 600, limitBytes: 2500 },
      { type: "text/plain", data: "e".repeat(500) },
      { type: "image/png", data: "", truncated: true, omitted: "output-too-large", sizeBytes: 1024 ** 3, limitBytes: 1000 },
    ]);
    expect(read.notes).toEqual([]);
  });

  it("skips what is not an output (bad names, links, directories) with one note, and reads the rest", async () => {
    await writeFile(join(dir, "garbage"), "x");
    await writeFile(join(dir, "a b"), "x");
    await writeFile(join(dir, "*"), "x");
    await writeFile(join(dir, `${name(9, "text/plain")}.part`), "x");
    await symlink("/etc/hostname", join(dir, name(1, "text/plain")));
    await mkdir(join(dir, name(2, "text/plain")));
    await writeFile(join(dir, name(3, "application/json")), "{}");
    const read = await readRichOutputs(localCommand(), dir, bounds);
    expect(read.outputs).toEqual([{ type: "application/json", data: "{}" }]);
    expect(read.notes).toHaveLength(1);
    expect(read.notes[0]).toContain(
      `[isol8] ignored 6 entries of ${dir} that are not a rich output: "*" (not an output), "00000000000000000001-7-text_plain" (not a regular file)`,
    );
    expect(read.notes[0]).toContain("and 1 more");
  });

  it("marks the outputs past the count bound too-many", async () => {
    for (let i = 0; i < MAX_RICH_OUTPUTS + 2; i++) await writeFile(join(dir, name(i, "text/plain")), String(i));
    const read = await readRichOutputs(localCommand(), dir, { maxOutputFileSize: 100, maxOutputFilesSize: 100_000 });
    expect(read.outputs).toHaveLength(MAX_RICH_OUTPUTS + 2);
    expect(read.outputs[MAX_RICH_OUTPUTS - 1]).toEqual({ type: "text/plain", data: String(MAX_RICH_OUTPUTS - 1) });
    expect(read.outputs.slice(MAX_RICH_OUTPUTS)).toEqual(
      [0, 1].map(() => ({ type: "text/plain", data: "", truncated: true, omitted: "too-many", sizeBytes: 0 })),
    );
  });

  it("reads nothing when the directory is missing or is a file, and removes the file", async () => {
    await rm(dir, { recursive: true });
    expect(await readRichOutputs(localCommand(), dir, bounds)).toEqual({ outputs: [], notes: [] });
    await writeFile(dir, "not a directory");
    expect(await readRichOutputs(localCommand(), dir, bounds)).toEqual({ outputs: [], notes: [] });
    await expect(access(dir)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("turns a failed read into a note, never a throw", async () => {
    const failing: SandboxCommand = () => Promise.reject(new Error("no such container"));
    expect(await readRichOutputs(failing, dir, bounds)).toEqual({
      outputs: [],
      notes: ["[isol8] the rich outputs (display) could not be read back: no such container\n"],
    });
  });
});
