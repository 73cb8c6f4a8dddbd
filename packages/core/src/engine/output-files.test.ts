/**
 * readTarFromContainer against archives made by the real GNU tar (the one the runtime images
 * carry: Debian's GNU tar), run on this host by a driver that execs locally: long names as GNU
 * writes them (././@LongLink) and as PAX writes them, and the three ways a read stops early (a
 * header past a bound, the byte budget, the deadline) without reading the rest.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, symlink, truncate, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExecOptions, SandboxDriver } from "@isol8/kit";
import { readTarFromContainer, type FileReadLimits } from "./output-files.js";

const MiB = 1024 ** 2;

/** A driver whose exec runs argv on this host, honouring onOutput's back-pressure and the abort signal. */
function localDriver(): SandboxDriver & { stdoutBytes: number; stdout: Buffer[] } {
  const driver = {
    stdoutBytes: 0,
    stdout: [] as Buffer[],
    exec(_id: string, options: ExecOptions) {
      return new Promise<{ exitCode: number }>((resolve, reject) => {
        const child = spawn(options.argv[0]!, options.argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
        // As the Docker driver does: an abort ends the stream at once (no chunk after it), then the process.
        options.signal?.addEventListener(
          "abort",
          () => {
            child.stdout.destroy();
            child.stderr.destroy();
            child.kill("SIGKILL");
          },
          { once: true },
        );
        const forward = (stream: "stdout" | "stderr", source: NodeJS.ReadableStream & { pause(): void; resume(): void }) =>
          source.on("data", (chunk: Buffer) => {
            if (stream === "stdout") {
              driver.stdoutBytes += chunk.length;
              if (driver.stdout.length < 64) driver.stdout.push(chunk);
            }
            const wait = options.onOutput?.(stream, chunk);
            if (!wait) return;
            source.pause();
            void wait.then(() => source.resume());
          });
        forward("stdout", child.stdout);
        forward("stderr", child.stderr);
        child.once("error", reject);
        child.once("close", (code) => resolve({ exitCode: code ?? -1 }));
      });
    },
  };
  return driver as unknown as SandboxDriver & { stdoutBytes: number; stdout: Buffer[] };
}

const roomy: FileReadLimits = { maxFileBytes: 10 * MiB, maxTotalBytes: 20 * MiB, deadlineMs: 60_000 };

describe("readTarFromContainer with GNU tar's archives", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "isol8-tar-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** tar -c of the given absolute paths, relative to / as the engine's scripts do; extra GNU tar options first. */
  const tarArgv = (paths: string[], ...options: string[]) => ["tar", ...options, "-c", "-f", "-", "-C", "/", "--", ...paths.map((p) => p.slice(1))];

  it("reads a name longer than 100 characters written as GNU's ././@LongLink entry", async () => {
    const deep = join(dir, "gnu", "d".repeat(60), "e".repeat(60));
    await mkdir(deep, { recursive: true });
    const path = join(deep, "file-with-a-long-name.txt");
    await writeFile(path, "long and whole");
    const driver = localDriver();
    const read = await readTarFromContainer(driver, "local", "", tarArgv([path]), roomy);
    // The archive really is GNU's format for long names (what `tar -c` writes by default).
    expect(Buffer.concat(driver.stdout).includes("././@LongLink")).toBe(true);
    expect(path.length).toBeGreaterThan(100);
    expect([...read.files.keys()]).toEqual([path]);
    expect(read.files.get(path)?.toString()).toBe("long and whole");
    expect(read.abandoned).toBe(false);
    expect(read.exitCode).toBe(0);
  });

  it("reads long and non-ASCII names written as PAX headers (tar --format=posix)", async () => {
    const deep = join(dir, "pax", "p".repeat(120));
    await mkdir(deep, { recursive: true });
    const long = join(deep, "résumé-€.txt");
    const short = join(dir, "pax", "naïve.bin");
    const binary = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7) & 0xff));
    await writeFile(long, "pax and whole");
    await writeFile(short, binary);
    const driver = localDriver();
    const read = await readTarFromContainer(driver, "local", "", tarArgv([long, short], "--format=posix"), roomy);
    expect(Buffer.concat(driver.stdout).includes(`path=${long.slice(1)}`)).toBe(true);
    expect([...read.files.keys()]).toEqual([long, short]);
    expect(read.files.get(long)?.toString()).toBe("pax and whole");
    expect(read.files.get(short)?.equals(binary)).toBe(true);
  });

  it("keeps only regular files: a directory's entry and a symbolic link in it are skipped", async () => {
    const folder = join(dir, "folder");
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, "kept.txt"), "kept");
    await symlink("/etc/passwd", join(folder, "link"));
    const read = await readTarFromContainer(localDriver(), "local", "", tarArgv([folder]), roomy);
    expect([...read.files.keys()]).toEqual([join(folder, "kept.txt")]);
    expect(read.files.get(join(folder, "kept.txt"))?.toString()).toBe("kept");
  });

  it("an empty stdout (nothing sent) is no archive and no error", async () => {
    const read = await readTarFromContainer(localDriver(), "local", "", ["sh", "-c", "exit 0"], roomy);
    expect(read.files.size).toBe(0);
    expect(read.abandoned).toBe(false);
    expect(read.exitCode).toBe(0);
  });

  it("stops at a header past the per-file bound, reports the file and reads no further", async () => {
    const big = join(dir, "big.bin");
    await writeFile(big, "");
    await truncate(big, 512 * MiB);
    const driver = localDriver();
    const read = await readTarFromContainer(driver, "local", "", tarArgv([big]), { ...roomy, maxFileBytes: MiB });
    expect(read.omitted).toEqual([{ path: big, sizeBytes: 512 * MiB, limitBytes: MiB, reason: "file-too-large" }]);
    expect(read.abandoned).toBe(true);
    expect(read.files.size).toBe(0);
    // Stopped early: far less than the file crossed the pipe.
    expect(driver.stdoutBytes).toBeLessThan(64 * MiB);
  });

  it("stops at the byte budget on an archive that never ends", async () => {
    // Zero blocks: an end-of-archive marker followed by endless zero padding.
    const driver = localDriver();
    const read = await readTarFromContainer(driver, "local", "", ["sh", "-c", "exec cat /dev/zero"], { ...roomy, maxTotalBytes: MiB });
    expect(read.abandoned).toBe(true);
    expect(read.files.size).toBe(0);
    expect(driver.stdoutBytes).toBeLessThan(64 * MiB);
  });

  it("stops at the deadline on a stream that stalls, keeping nothing half-read", async () => {
    const slow = join(dir, "slow.txt");
    await writeFile(slow, "x".repeat(4096));
    // The archive's first 2 KiB, then silence.
    const argv = ["sh", "-c", `tar -c -f - -C / -- ${slow.slice(1)} | head -c 2048; exec sleep 60`];
    const read = await readTarFromContainer(localDriver(), "local", "", argv, { ...roomy, deadlineMs: 500 });
    expect(read.abandoned).toBe(true);
    expect(read.files.size).toBe(0);
  });

  it("refuses an archive whose header checksum is wrong", async () => {
    const file = join(dir, "sum.txt");
    await writeFile(file, "sum");
    // Byte 0 of the first header (the name's first character) changed: the checksum no longer matches.
    const argv = ["sh", "-c", `tar -c -f - -C / -- ${file.slice(1)} | { printf Z; tail -c +2; }`];
    await expect(readTarFromContainer(localDriver(), "local", "", argv, roomy)).rejects.toThrow(/checksum/);
  });

  it("refuses an archive cut short in a file's content", async () => {
    const file = join(dir, "cut.txt");
    await writeFile(file, "c".repeat(4096));
    const argv = ["sh", "-c", `tar -c -f - -C / -- ${file.slice(1)} | head -c 1536`];
    await expect(readTarFromContainer(localDriver(), "local", "", argv, roomy)).rejects.toThrow(/truncated/);
  });
});
