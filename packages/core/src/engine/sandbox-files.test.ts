import { randomBytes } from "node:crypto";
import * as tar from "modern-tar";
import { describe, expect, it } from "vitest";
import { InvalidRequestError, Isol8Error } from "@isol8/kit";
import { packTar, resolveSandboxPath, unpackTar } from "./sandbox-files.js";

/** Calls fn and returns what it threw (fails the test when it does not throw). */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a throw");
}

/** Lists the entries of an archive: name, type, mode and content. */
async function listTar(archive: Buffer): Promise<Array<{ name: string; type: string | undefined; mode: number | undefined; content: Buffer }>> {
  return (await tar.unpackTar(archive, { strict: true })).map(({ header, data }) => ({
    name: header.name,
    type: header.type,
    mode: header.mode,
    content: Buffer.from(data ?? []),
  }));
}

/** Packs raw tar entries (any type), as another tar writer would. */
async function rawTar(entries: tar.TarEntry[]): Promise<Buffer> {
  return Buffer.from(await tar.packTar(entries));
}

describe("resolveSandboxPath", () => {
  it("resolves a relative path under /sandbox", () => {
    expect(resolveSandboxPath("main.py", "files")).toBe("/sandbox/main.py");
    expect(resolveSandboxPath("data/input.csv", "files")).toBe("/sandbox/data/input.csv");
  });

  it("resolves a ./ relative path under /sandbox", () => {
    expect(resolveSandboxPath("./out/result.json", "outputPaths")).toBe("/sandbox/out/result.json");
  });

  it("keeps an absolute path inside /sandbox", () => {
    expect(resolveSandboxPath("/sandbox/a/b.txt", "files")).toBe("/sandbox/a/b.txt");
  });

  it("allows an absolute path inside /tmp", () => {
    expect(resolveSandboxPath("/tmp/scratch.bin", "files")).toBe("/tmp/scratch.bin");
    expect(resolveSandboxPath("/tmp/a/b/c", "files")).toBe("/tmp/a/b/c");
  });

  it("normalizes repeated slashes and . segments", () => {
    expect(resolveSandboxPath("/sandbox//a/./b", "files")).toBe("/sandbox/a/b");
    expect(resolveSandboxPath("a//./b", "files")).toBe("/sandbox/a/b");
    expect(resolveSandboxPath("//sandbox/x", "files")).toBe("/sandbox/x");
  });

  it("refuses a relative path with ..", () => {
    expect(() => resolveSandboxPath("../etc/passwd", "files")).toThrow(/contains "\.\."/);
  });

  it("refuses .. even when the path would stay inside /sandbox", () => {
    expect(() => resolveSandboxPath("a/../b", "files")).toThrow(InvalidRequestError);
    expect(() => resolveSandboxPath("/sandbox/a/../b", "files")).toThrow(InvalidRequestError);
  });

  it("refuses an absolute path that climbs out of /sandbox with ..", () => {
    expect(() => resolveSandboxPath("/sandbox/../etc/passwd", "files")).toThrow(InvalidRequestError);
    expect(() => resolveSandboxPath("/tmp/..", "files")).toThrow(InvalidRequestError);
  });

  it("allows names that only contain dots", () => {
    expect(resolveSandboxPath("..hidden", "files")).toBe("/sandbox/..hidden");
    expect(resolveSandboxPath("a/...", "files")).toBe("/sandbox/a/...");
  });

  it("refuses an absolute path outside /sandbox and /tmp", () => {
    expect(() => resolveSandboxPath("/etc/passwd", "files")).toThrow(/outside \/sandbox and \/tmp/);
    expect(() => resolveSandboxPath("/", "files")).toThrow(InvalidRequestError);
    expect(() => resolveSandboxPath("/home/user/x", "files")).toThrow(InvalidRequestError);
  });

  it("refuses /sandbox and /tmp themselves", () => {
    expect(() => resolveSandboxPath("/sandbox", "files")).toThrow(InvalidRequestError);
    expect(() => resolveSandboxPath("/tmp", "files")).toThrow(InvalidRequestError);
    expect(() => resolveSandboxPath(".", "files")).toThrow(InvalidRequestError);
  });

  it("refuses /sandbox and /tmp themselves when written with a trailing slash", () => {
    expect(() => resolveSandboxPath("/sandbox/", "files")).toThrow(InvalidRequestError);
    expect(() => resolveSandboxPath("/tmp/", "files")).toThrow(InvalidRequestError);
    expect(() => resolveSandboxPath("./", "files")).toThrow(InvalidRequestError);
  });

  it("refuses paths that only start with the name of a writable root", () => {
    expect(() => resolveSandboxPath("/sandboxed/x", "files")).toThrow(InvalidRequestError);
    expect(() => resolveSandboxPath("/tmpfile", "files")).toThrow(InvalidRequestError);
  });

  it("refuses a path with a NUL byte", () => {
    expect(() => resolveSandboxPath("a\0b", "files")).toThrow(/NUL byte/);
    expect(() => resolveSandboxPath("/sandbox/a\0", "files")).toThrow(InvalidRequestError);
  });

  it("refuses an empty path", () => {
    expect(() => resolveSandboxPath("", "files")).toThrow(/expected a non-empty path/);
  });

  it("refuses a value that is not a string", () => {
    expect(() => resolveSandboxPath(42 as unknown as string, "files")).toThrow(InvalidRequestError);
  });

  it("throws an InvalidRequestError with code ISOL8_ERR_INVALID_REQUEST", () => {
    const error = thrown(() => resolveSandboxPath("/etc/passwd", "files"));
    expect(error).toBeInstanceOf(InvalidRequestError);
    expect(Isol8Error.isInstance(error)).toBe(true);
    expect((error as InvalidRequestError).code).toBe("ISOL8_ERR_INVALID_REQUEST");
  });

  it("names the field and the path in every refusal", () => {
    for (const path of ["/etc/passwd", "../x", "a\0b"]) {
      const error = thrown(() => resolveSandboxPath(path, 'files["x"]'));
      expect(error.message.startsWith('files["x"]: '), error.message).toBe(true);
      expect(error.message).toContain(JSON.stringify(path));
    }
    expect(thrown(() => resolveSandboxPath("", "outputPaths[2]")).message).toMatch(/^outputPaths\[2\]: /);
  });
});

describe("packTar and unpackTar", () => {
  it("round-trips string content as UTF-8", async () => {
    const archive = await packTar([{ path: "/sandbox/hello.txt", content: "héllo € 😀\n" }]);
    const files = await unpackTar(archive);
    expect(files.get("/sandbox/hello.txt")?.toString("utf8")).toBe("héllo € 😀\n");
  });

  it("round-trips binary content byte for byte", async () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const random = randomBytes(70_000); // spans many 512-byte tar blocks, not a multiple of 512
    const files = await unpackTar(
      await packTar([
        { path: "/sandbox/all-bytes.bin", content: all },
        { path: "/tmp/random.bin", content: random },
      ]),
    );
    expect(files.get("/sandbox/all-bytes.bin")?.equals(all)).toBe(true);
    expect(files.get("/tmp/random.bin")?.equals(random)).toBe(true);
  });

  it("round-trips empty files", async () => {
    const files = await unpackTar(
      await packTar([
        { path: "/sandbox/empty", content: "" },
        { path: "/sandbox/empty.bin", content: new Uint8Array(0) },
      ]),
    );
    expect(files.get("/sandbox/empty")?.length).toBe(0);
    expect(files.get("/sandbox/empty.bin")?.length).toBe(0);
  });

  it("packs only the bytes of a Uint8Array view, not its whole underlying buffer", async () => {
    const backing = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
    const view = backing.subarray(2, 5);
    const files = await unpackTar(await packTar([{ path: "/sandbox/view.bin", content: view }]));
    expect([...files.get("/sandbox/view.bin")!]).toEqual([3, 4, 5]);
  });

  it("writes entry names relative to / (no leading slash)", async () => {
    const entries = await listTar(
      await packTar([
        { path: "/sandbox/a/b.txt", content: "x" },
        { path: "//tmp/c", content: "y" },
      ]),
    );
    expect(entries.map((e) => e.name)).toEqual(["sandbox/a/b.txt", "tmp/c"]);
  });

  it("gives entries mode 0644 unless a mode is given", async () => {
    const entries = await listTar(
      await packTar([
        { path: "/sandbox/plain", content: "x" },
        { path: "/sandbox/run.sh", content: "#!/bin/sh\n", mode: 0o755 },
      ]),
    );
    expect(entries.map((e) => [e.name, e.mode! & 0o7777])).toEqual([
      ["sandbox/plain", 0o644],
      ["sandbox/run.sh", 0o755],
    ]);
  });

  it("packs plain ustar regular files (GNU tar in the container unpacks them), a PAX header only for a name ustar cannot hold", async () => {
    const short = await packTar([{ path: "/sandbox/plain.txt", content: "x" }]);
    expect(short.subarray(257, 265).toString("latin1")).toBe("ustar\u000000");
    expect(String.fromCharCode(short[156]!)).toBe("0");
    expect((await listTar(short)).map((e) => [e.name, e.type])).toEqual([["sandbox/plain.txt", "file"]]);
    // Past prefix (155) + name (100): one PAX header ("x") before the file's own ustar header.
    const path = `/sandbox/${"p".repeat(300)}/leaf`;
    const long = await packTar([{ path, content: "y" }]);
    expect(String.fromCharCode(long[156]!)).toBe("x");
    expect((await listTar(long)).map((e) => [e.name, e.type])).toEqual([[path.slice(1), "file"]]);
  });

  it("round-trips many files with their absolute paths", async () => {
    const input = Array.from({ length: 20 }, (_, i) => ({ path: `/sandbox/dir${i % 3}/file-${i}.txt`, content: `content ${i}` }));
    const files = await unpackTar(await packTar(input));
    expect([...files.keys()].sort()).toEqual(input.map((e) => e.path).sort());
    for (const entry of input) expect(files.get(entry.path)?.toString()).toBe(entry.content);
  });

  it("round-trips a path longer than 100 characters", async () => {
    const path = `/sandbox/${"deep/".repeat(30)}file-with-a-long-name.txt`;
    const files = await unpackTar(await packTar([{ path, content: "deep" }]));
    expect(files.get(path)?.toString()).toBe("deep");
  });

  it("round-trips non-ASCII file names", async () => {
    const files = await unpackTar(await packTar([{ path: "/sandbox/résumé-€.txt", content: "ok" }]));
    expect(files.get("/sandbox/résumé-€.txt")?.toString()).toBe("ok");
  });

  it("packs an empty list into an archive with no files", async () => {
    const files = await unpackTar(await packTar([]));
    expect(files.size).toBe(0);
  });

  it("unpacks only regular files, skipping directories and links", async () => {
    const files = await unpackTar(
      await rawTar([
        { header: { name: "sandbox/out", type: "directory", size: 0 } },
        { header: { name: "sandbox/out/result.txt", size: 6 }, body: "result" },
        { header: { name: "sandbox/out/link", type: "symlink", linkname: "/etc/passwd", size: 0 } },
        { header: { name: "sandbox/out/hard", type: "link", linkname: "sandbox/out/result.txt", size: 0 } },
      ]),
    );
    expect([...files.keys()]).toEqual(["/sandbox/out/result.txt"]);
    expect(files.get("/sandbox/out/result.txt")?.toString()).toBe("result");
  });

  it("names unpacked files with one leading slash whether the archive names have none or some", async () => {
    const files = await unpackTar(
      await rawTar([
        { header: { name: "sandbox/a", size: 1 }, body: "a" },
        { header: { name: "/tmp/b", size: 1 }, body: "b" },
      ]),
    );
    expect([...files.keys()].sort()).toEqual(["/sandbox/a", "/tmp/b"]);
  });

  it("rejects an archive that is not a tar", async () => {
    await expect(unpackTar(Buffer.from("this is not a tar archive".repeat(40)))).rejects.toThrow();
  });
});
