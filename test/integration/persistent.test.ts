import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { FileOperationError, InvalidRequestError } from "@isol8/core";
import { DockerIsol8 } from "isol8";
import { isol8Containers } from "../helpers.js";

let engine: DockerIsol8;
beforeAll(async () => {
  // getFile's bound (maxOutputFileSize, 10 MB by default) raised for the 50 MB round trip.
  engine = new DockerIsol8({ mode: "persistent", timeoutMs: 30_000, maxOutputFileSize: "64m" });
  await engine.start();
});
afterAll(async () => {
  await engine.stop();
  expect(await isol8Containers(engine.id)).toEqual([]);
});

describe("persistent mode", () => {
  test("a file written in call 1 is read in call 2, in the same container", async () => {
    const first = await engine.execute({ runtime: "python", code: "open('/sandbox/state.txt', 'w').write('kept')" });
    const second = await engine.execute({ runtime: "python", code: "print(open('/sandbox/state.txt').read())" });
    expect(second.stdout).toBe("kept\n");
    expect(second.containerId).toBe(first.containerId);
    expect(second.coldStart).toBe(false);
  });

  test("putFile and getFile round-trip a 50 MB binary byte-exact", async () => {
    const data = randomBytes(50 * 1024 * 1024);
    await engine.putFile("/sandbox/big.bin", data);
    const check = await engine.execute({ runtime: "python", code: "import hashlib; print(hashlib.sha256(open('/sandbox/big.bin','rb').read()).hexdigest())" });
    const { createHash } = await import("node:crypto");
    expect(check.stdout.trim()).toBe(createHash("sha256").update(data).digest("hex"));
    const back = await engine.getFile("/sandbox/big.bin");
    expect(back.length).toBe(data.length);
    expect(back.equals(data)).toBe(true);
  });

  test("putFile accepts strings and relative paths (under /sandbox), and /tmp", async () => {
    await engine.putFile("notes/hello.txt", "héllo");
    await engine.putFile("/tmp/t.txt", "in tmp");
    expect((await engine.getFile("/sandbox/notes/hello.txt")).toString()).toBe("héllo");
    expect((await engine.getFile("/tmp/t.txt")).toString()).toBe("in tmp");
  });

  test("traversal, absolute paths elsewhere and symlinks planted by the program are refused", async () => {
    for (const path of ["../etc/passwd", "/sandbox/../etc/passwd", "/etc/passwd", "/proc/self/environ", "/"]) {
      await expect(engine.putFile(path, "x"), path).rejects.toThrow(InvalidRequestError);
      await expect(engine.getFile(path), path).rejects.toThrow(InvalidRequestError);
    }
    // A positive control first: the program can make links, and a normal file reads fine.
    await engine.execute({
      runtime: "python",
      code: "import os\nos.symlink('/etc/passwd', '/sandbox/link')\nos.makedirs('/sandbox/d', exist_ok=True)\nos.symlink('/etc', '/sandbox/dlink')\nopen('/sandbox/d/plain', 'w').write('ok\\n')",
    });
    expect((await engine.getFile("/sandbox/d/plain")).toString()).toBe("ok\n");
    await expect(engine.getFile("/sandbox/link")).rejects.toThrow(/outside \/sandbox and \/tmp|symbolic link/);
    await expect(engine.getFile("/sandbox/dlink/passwd")).rejects.toThrow(/outside \/sandbox and \/tmp|symbolic link/);
    await expect(engine.putFile("/sandbox/dlink/evil", "x")).rejects.toThrow(FileOperationError);
    await expect(engine.getFile("/sandbox/missing.txt")).rejects.toThrow(/no such file/);
    await expect(engine.getFile("/sandbox/d")).rejects.toThrow(/not a regular file/);
  });

  test("another runtime in the same persistent engine is refused clearly", async () => {
    await expect(engine.execute({ runtime: "node", code: "1" })).rejects.toThrow(/persistent engine runs "python"/);
  });
});

describe("files outside persistent mode", () => {
  test("putFile and getFile say why they fail", async () => {
    const ephemeral = new DockerIsol8();
    await expect(ephemeral.putFile("/sandbox/x", "x")).rejects.toThrow(/only in persistent mode/);
    await expect(ephemeral.getFile("/sandbox/x")).rejects.toThrow(/only in persistent mode/);
    const fresh = new DockerIsol8({ mode: "persistent" });
    await expect(fresh.getFile("/sandbox/x")).rejects.toThrow(/call execute\(\) first/);
  });

  test("persist: true leaves the container running after stop(), and the result says so", async () => {
    const kept = new DockerIsol8({ mode: "persistent", persist: true });
    const result = await kept.execute({ runtime: "bash", code: "echo hi > /sandbox/f" });
    expect(result.persisted).toBe(true);
    await kept.stop();
    try {
      expect((await kept.docker.inspectContainer(result.containerId!))?.State?.Running).toBe(true);
    } finally {
      await kept.docker.removeContainer(result.containerId!);
    }
  });
});
