/**
 * Files read back from the sandbox (outputPaths, getFile) are bounded per file and per execution:
 * a file past the bound is reported, never buffered whole. The hostile case is a sparse file: no
 * space used on the sandbox's tmpfs, 1 GiB of apparent size.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { DockerIsol8, Isol8Error, type ExecutionResult } from "isol8";
import { serve, type Served } from "../../packages/server/test/serve-process.js";
import { isol8Containers } from "../helpers.js";

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

/** Runs `work` while sampling this process's resident memory; returns the result and the peak growth. */
async function withPeakRss<T>(work: () => Promise<T>): Promise<{ value: T; peakGrowth: number }> {
  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  try {
    const value = await work();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { value, peakGrowth: peak - before };
  } finally {
    clearInterval(sampler);
  }
}

describe("outputPaths", () => {
  let engine: DockerIsol8;
  beforeAll(async () => {
    engine = new DockerIsol8({ sandboxSize: "64m", timeoutMs: 60_000 });
    await engine.start();
  });
  afterAll(async () => {
    await engine.stop();
    expect(await isol8Containers(engine.id)).toEqual([]);
  });

  test("a sparse 1 GiB file is reported as past the per-file bound without being read, memory stays bounded, and a small file still comes back whole", async () => {
    const { value: result, peakGrowth } = await withPeakRss(() =>
      engine.execute({
        runtime: "bash",
        code: "truncate -s 1G /sandbox/big && printf 'small and whole' > /sandbox/small && echo made",
        outputPaths: ["/sandbox/big", "/sandbox/small"],
      }),
    );
    expect(result.stdout).toBe("made\n");
    // Positive control: the small file comes back byte-exact.
    expect(Object.keys(result.files ?? {})).toEqual(["/sandbox/small"]);
    expect(Buffer.from(result.files!["/sandbox/small"]!, "base64").toString()).toBe("small and whole");
    // The big one is reported with its size and the bound it is past.
    expect(result.omittedFiles).toEqual([{ path: "/sandbox/big", sizeBytes: GiB, limitBytes: 10 * MiB, reason: "file-too-large" }]);
    // Memory: far below the file's size (today's code buffered it whole, several times over).
    expect(peakGrowth).toBeLessThan(200 * MiB);
  });

  test("the per-execution bound: files that would take the total past it are reported, the ones before it come back", async () => {
    const small = new DockerIsol8({ maxOutputFileSize: "4m", maxOutputFilesSize: "5m", timeoutMs: 60_000 });
    try {
      const result: ExecutionResult = await small.execute({
        runtime: "bash",
        code: "head -c 3145728 /dev/zero > /sandbox/a; head -c 3145728 /dev/zero > /sandbox/b; head -c 1048576 /dev/zero > /sandbox/c; head -c 5242880 /dev/zero > /sandbox/d",
        outputPaths: ["/sandbox/a", "/sandbox/b", "/sandbox/c", "/sandbox/d"],
      });
      expect(Object.keys(result.files ?? {}).sort()).toEqual(["/sandbox/a", "/sandbox/c"]);
      expect(Buffer.from(result.files!["/sandbox/a"]!, "base64").length).toBe(3 * MiB);
      expect(Buffer.from(result.files!["/sandbox/c"]!, "base64").length).toBe(1 * MiB);
      expect(result.omittedFiles).toEqual([
        { path: "/sandbox/b", sizeBytes: 3 * MiB, limitBytes: 5 * MiB, reason: "total-too-large" },
        { path: "/sandbox/d", sizeBytes: 5 * MiB, limitBytes: 4 * MiB, reason: "file-too-large" },
      ]);
    } finally {
      await small.stop();
    }
    expect(await isol8Containers(small.id)).toEqual([]);
  });

  test("bounds that are not sizes are refused, naming the option", () => {
    expect(() => new DockerIsol8({ maxOutputFileSize: "lots" })).toThrow(/maxOutputFileSize: expected a positive size/);
    expect(() => new DockerIsol8({ maxOutputFilesSize: -1 })).toThrow(/maxOutputFilesSize: expected a positive size/);
  });
});

describe("getFile", () => {
  let engine: DockerIsol8;
  beforeAll(async () => {
    engine = new DockerIsol8({ mode: "persistent", sandboxSize: "64m", timeoutMs: 60_000 });
    await engine.start();
  });
  afterAll(async () => {
    await engine.stop();
    expect(await isol8Containers(engine.id)).toEqual([]);
  });

  test("a sparse 1 GiB file is refused with ISOL8_ERR_FILE naming the path and the bound, memory stays bounded, and a small file still reads whole", async () => {
    await engine.execute({ runtime: "bash", code: "truncate -s 1G /sandbox/big && printf 'small and whole' > /sandbox/small" });
    const { value: error, peakGrowth } = await withPeakRss(() =>
      engine.getFile("/sandbox/big").then(
        () => undefined,
        (e: unknown) => e,
      ),
    );
    expect(Isol8Error.isInstance(error)).toBe(true);
    expect((error as Isol8Error).code).toBe("ISOL8_ERR_FILE");
    expect((error as Error).message).toContain("/sandbox/big");
    expect((error as Error).message).toContain(`${GiB} bytes`);
    expect((error as Error).message).toContain(`maxOutputFileSize (${10 * MiB} bytes)`);
    expect(peakGrowth).toBeLessThan(200 * MiB);
    expect((await engine.getFile("/sandbox/small")).toString()).toBe("small and whole");
  });
});

describe("through a real isol8 serve", () => {
  const KEY = "output-bounds-key-0123456789";
  let dir: string | undefined;
  let served: Served;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "isol8-output-bounds-"));
    served = await serve(dir, KEY, { defaults: { timeoutMs: 60_000 } });
  }, 120_000);
  afterAll(async () => {
    served.child.kill("SIGTERM");
    expect((await served.exited).code).toBe(0);
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  /** The server process's peak resident memory so far (VmHWM), in bytes. */
  const peakRss = async () => Number(/^VmHWM:\s+(\d+) kB$/m.exec(await readFile(`/proc/${served.child.pid}/status`, "utf8"))![1]) * 1024;

  test("POST /execute with a sparse 1 GiB outputPath: a small body naming the file in omittedFiles, the server's peak memory stays bounded, and a small file comes back whole", async () => {
    const before = await peakRss();
    const response = await fetch(`${served.url}/execute`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({
        request: {
          runtime: "bash",
          code: "truncate -s 1G /sandbox/big && printf 'small and whole' > /sandbox/small",
          outputPaths: ["/sandbox/big", "/sandbox/small"],
        },
      }),
    });
    expect(response.status).toBe(200);
    const body = await response.text();
    expect(body.length).toBeLessThan(64 * 1024);
    const result = JSON.parse(body) as ExecutionResult;
    expect(Object.keys(result.files ?? {})).toEqual(["/sandbox/small"]);
    expect(Buffer.from(result.files!["/sandbox/small"]!, "base64").toString()).toBe("small and whole");
    expect(result.omittedFiles).toEqual([{ path: "/sandbox/big", sizeBytes: GiB, limitBytes: 10 * MiB, reason: "file-too-large" }]);
    expect((await peakRss()) - before).toBeLessThan(200 * MiB);
  });
});
