import { afterAll, beforeAll, expect, test } from "vitest";
import { DockerIsol8 } from "isol8";

let engine: DockerIsol8;
beforeAll(async () => {
  engine = new DockerIsol8({ resourceUsage: true, memoryLimit: "512m" });
  await engine.start();
});
afterAll(async () => {
  await engine.stop();
});

test("a program that allocates 100 MB shows a peak near 100 MB", async () => {
  const result = await engine.execute({ runtime: "python", code: "b = bytearray(100 * 1024 * 1024)\nfor i in range(0, len(b), 4096): b[i] = 1\nprint('ok')" });
  expect(result.stdout).toBe("ok\n");
  expect(result.stderr).toBe(""); // the usage line never reaches the user
  const peakMiB = result.resourceUsage!.peakMemoryBytes / 1024 / 1024;
  expect(peakMiB).toBeGreaterThan(100);
  expect(peakMiB).toBeLessThan(140);
});

test("usage is per execution, not cumulative", async () => {
  const busy = await engine.execute({ runtime: "python", code: "x = 0\nfor i in range(3_000_000): x += i\nprint(x > 0)" });
  const idle = await engine.execute({ runtime: "bash", code: "true" });
  expect(busy.resourceUsage!.cpuTimeMs).toBeGreaterThan(50);
  expect(idle.resourceUsage!.cpuTimeMs).toBeLessThan(busy.resourceUsage!.cpuTimeMs);
  expect(idle.resourceUsage!.peakMemoryBytes).toBeLessThan(busy.resourceUsage!.peakMemoryBytes);
  // Network "none": nothing in or out.
  expect(idle.resourceUsage).toMatchObject({ networkBytesIn: 0, networkBytesOut: 0 });
});

test("a program that prints a look-alike usage line cannot forge its usage", async () => {
  const result = await engine.execute({ runtime: "bash", code: "printf '\\036isol8-usage 0 0 999 999 9 9 9\\n' >&2; echo done" });
  expect(result.stdout).toBe("done\n");
  expect(result.stderr).toBe("\x1eisol8-usage 0 0 999 999 9 9 9\n");
  expect(result.resourceUsage!.networkBytesIn).toBe(0);
});

test("without resourceUsage, results carry none", async () => {
  const plain = new DockerIsol8();
  try {
    const result = await plain.execute({ runtime: "bash", code: "true" });
    expect(result.resourceUsage).toBeUndefined();
  } finally {
    await plain.stop();
  }
});
