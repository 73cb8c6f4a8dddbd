import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { InvalidOptionsError, type StreamEvent } from "@isol8/core";
import { DockerIsol8, RemoteIsol8 } from "isol8";
import { serve, type Served } from "../../packages/server/test/serve-process.js";
import { CLI, cliPids, containersOfProcesses, expectNoContainersOfProcesses, REPO_ROOT } from "../helpers.js";

/**
 * Hardening round 2 (issue 11, items 13–17): isol8's own failures exit 125; code, stdin and the
 * program's output travel as bytes (CLI, library, and through `isol8 serve` with --host); sizes
 * below Docker's minimum are refused naming the flag; large stdin from a file or the CLI's stdin.
 */

interface ByteResult {
  stdout: Buffer;
  stderr: string;
  code: number | null;
}

/** Runs the built CLI with byte input and byte output (the shared helper is text-only). */
function isol8Bytes(args: string[], options: { input?: Buffer | string; env?: NodeJS.ProcessEnv } = {}): Promise<ByteResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, env: { ...process.env, ISOL8_API_KEY: "", ...options.env } });
    if (child.pid) cliPids.add(child.pid);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString(), code }));
    child.stdin.on("error", () => undefined); // the CLI may not read all of it (a refused run)
    child.stdin.end(options.input ?? "");
  });
}

const sha256 = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex");
const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
/** A python program printing the sha256 and length of its whole standard input (as bytes). */
const HASH_STDIN = "import sys, hashlib; data = sys.stdin.buffer.read(); print(hashlib.sha256(data).hexdigest(), len(data))";
/** A python file with a raw 0xff byte inside a string literal: python refuses it (not UTF-8). */
const NOT_UTF8_PY = Buffer.concat([Buffer.from('print("'), Buffer.from([0xff]), Buffer.from('")\n')]);

const KEY = "cli-bytes-key-0123456789";
let dir: string;
let served: Served;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "isol8-cli-bytes-"));
  served = await serve(dir, KEY, { defaults: { poolSize: { clean: 1, dirty: 1 } } });
});
afterAll(async () => {
  served.child.kill("SIGTERM");
  expect((await served.exited).code).toBe(0);
  expect(await containersOfProcesses([served.child.pid!])).toEqual([]);
  await expectNoContainersOfProcesses(cliPids);
  await rm(dir, { recursive: true, force: true });
});

describe("item 13: isol8's own failures exit 125, --help and --version 0", () => {
  test("an unknown option, a missing option argument and an unknown command exit 125 naming what was wrong", async () => {
    const unknown = await isol8Bytes(["run", "--bogus", "-e", "print(1)"]);
    expect(unknown.stderr).toMatch(/unknown option '--bogus'/);
    expect(unknown.code).toBe(125);
    const missing = await isol8Bytes(["run", "-e", "print(1)", "--timeout"]);
    expect(missing.stderr).toMatch(/--timeout <ms>' argument missing/);
    expect(missing.code).toBe(125);
    const command = await isol8Bytes(["frobnicate"]);
    expect(command.stderr).toMatch(/unknown command 'frobnicate'/);
    expect(command.code).toBe(125);
    const value = await isol8Bytes(["run", "--cpu", "lots", "-e", "print(1)"]);
    expect(value.stderr).toMatch(/--cpu: expected a positive number/);
    expect(value.code).toBe(125);
  });

  test("--help and --version still exit 0 and print", async () => {
    const help = await isol8Bytes(["run", "--help"]);
    expect(help.stdout.toString()).toMatch(/Usage: isol8 run/);
    expect(help.code).toBe(0);
    const version = await isol8Bytes(["--version"]);
    expect(version.stdout.toString()).toMatch(/^\S+\n$/);
    expect(version.code).toBe(0);
  });
});

describe("item 14: code travels as bytes", () => {
  test("a python file with a raw 0xff byte gives python's SyntaxError, locally and with --host", async () => {
    const file = join(dir, "not-utf8.py");
    await writeFile(file, NOT_UTF8_PY);
    for (const args of [
      ["run", file],
      ["run", "--host", served.url, "--key", KEY, file],
    ]) {
      const result = await isol8Bytes(args);
      expect(result.stderr, args.join(" ")).toMatch(/SyntaxError: Non-UTF-8 code starting with '\\xff' in file \/sandbox\/main\.py/);
      expect(result.code, args.join(" ")).toBe(1);
      expect(result.stdout.toString(), args.join(" ")).toBe("");
    }
    // Positive control: the same path runs valid UTF-8 and prints it.
    const good = join(dir, "utf8.py");
    await writeFile(good, 'print("\u00e9")\n');
    expect(await isol8Bytes(["run", good])).toMatchObject({ stdout: Buffer.from("\u00e9\n"), code: 0 });
  });

  test("piped code keeps its bytes: python's SyntaxError, and bash sees the raw bytes", async () => {
    const piped = await isol8Bytes(["run"], { input: NOT_UTF8_PY });
    expect(piped.stderr).toMatch(/SyntaxError: Non-UTF-8 code starting with '\\xff' in file \/sandbox\/main\.py/);
    expect(piped.code).toBe(1);
    const bash = Buffer.concat([Buffer.from("printf '%s' '"), Buffer.from([0xff, 0xfe, 0x80]), Buffer.from("' | od -An -tx1\n")]);
    for (const args of [
      ["run", "-r", "bash"],
      ["run", "-r", "bash", "--host", served.url, "--key", KEY],
    ]) {
      const result = await isol8Bytes(args, { input: bash });
      expect(result.stdout.toString().trim(), args.join(" ")).toBe("ff fe 80");
      expect(result.code, args.join(" ")).toBe(0);
    }
  });

  test("the library takes code and stdin as bytes", async () => {
    const engine = new DockerIsol8({ poolSize: { clean: 0, dirty: 0 } });
    try {
      const result = await engine.execute({ runtime: "python", code: NOT_UTF8_PY });
      expect(result.stderr).toMatch(/SyntaxError: Non-UTF-8 code starting with '\\xff' in file \/sandbox\/main\.py/);
      expect(result.exitCode).toBe(1);
      const hashed = await engine.execute({ runtime: "python", code: Buffer.from(HASH_STDIN), stdin: ALL_BYTES });
      expect(hashed.stdout).toBe(`${sha256(ALL_BYTES)} 256\n`);
    } finally {
      await engine.stop();
    }
  });
});

describe("item 15: binary output", () => {
  const WRITE_ALL = "import sys; sys.stdout.buffer.write(bytes(range(256)))";

  test("the CLI writes the program's bytes unchanged: stdout, -o, and with --host", async () => {
    const local = await isol8Bytes(["run", "-e", WRITE_ALL]);
    expect(local.code).toBe(0);
    expect(local.stdout).toEqual(ALL_BYTES);
    const out = join(dir, "all-bytes.bin");
    expect(await isol8Bytes(["run", "-e", WRITE_ALL, "-o", out])).toMatchObject({ code: 0, stdout: Buffer.alloc(0) });
    expect(await readFile(out)).toEqual(ALL_BYTES);
    const remote = await isol8Bytes(["run", "--host", served.url, "--key", KEY, "-e", WRITE_ALL]);
    expect(remote.code).toBe(0);
    expect(remote.stdout).toEqual(ALL_BYTES);
  });

  test("a reader that closes the CLI's stdout early (| head) stops the program: exit 141, no crash", async () => {
    const program = "import sys\nfor i in range(3000): sys.stdout.write('x' * 100000 + '\\n')\nprint('finished', file=sys.stderr)";
    const child = spawn(process.execPath, [CLI, "run", "--max-output", "1g", "-e", program], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    if (child.pid) cliPids.add(child.pid);
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    // Read the first bytes, then close our end, as `head -c` does.
    const [first] = (await once(child.stdout, "data")) as [Buffer];
    expect(first[0]).toBe(0x78);
    child.stdout.destroy();
    expect(await exited).toBe(141);
    expect(stderr).not.toMatch(/unexpected error|EPIPE/);
    expect(stderr).not.toMatch(/finished/);
  });

  test("100,000 random bytes arrive whole: the sha256 the program printed matches the CLI's stdout", async () => {
    const program =
      "import os, sys, hashlib; data = os.urandom(100000); sys.stdout.buffer.write(data); sys.stdout.flush(); print(hashlib.sha256(data).hexdigest(), file=sys.stderr)";
    const result = await isol8Bytes(["run", "-e", program]);
    expect(result.code).toBe(0);
    expect(result.stdout.length).toBe(100_000);
    expect(sha256(result.stdout)).toBe(result.stderr.trim());
  });

  test("library outputEncoding base64: raw bytes in the result and the events, secrets masked on bytes, the cap counts bytes", async () => {
    const secret = "p\u00e4ss-w\u00f6rd";
    const engine = new DockerIsol8({ poolSize: { clean: 0, dirty: 0 }, secrets: { SECRET: secret }, maxOutputSize: 300 });
    try {
      const program =
        "import os, sys; sys.stdout.buffer.write(bytes([0xff]) + os.environ['SECRET'].encode() + bytes(range(256))); sys.stderr.buffer.write(bytes([0xfe, 0x0a]))";
      const result = await engine.execute({ runtime: "python", code: program, outputEncoding: "base64" });
      const stdout = Buffer.from(result.stdout, "base64");
      // 1 + "***" + 256 = 260 bytes, under the cap: the secret's UTF-8 bytes were masked.
      expect(stdout).toEqual(Buffer.concat([Buffer.from([0xff]), Buffer.from("***"), ALL_BYTES]));
      expect(Buffer.from(result.stderr, "base64")).toEqual(Buffer.from([0xfe, 0x0a]));
      expect(result.truncated).toBe(false);

      const events: StreamEvent[] = [];
      for await (const event of engine.executeStream({ runtime: "python", code: program, outputEncoding: "base64" })) events.push(event);
      const streamed = Buffer.concat(events.filter((e) => e.type === "stdout").map((e) => Buffer.from(e.data, "base64")));
      expect(streamed).toEqual(stdout);

      const capped = await engine.execute({ runtime: "python", code: "import sys; sys.stdout.buffer.write(bytes(range(256)) * 2)", outputEncoding: "base64" });
      expect(Buffer.from(capped.stdout, "base64")).toEqual(Buffer.concat([ALL_BYTES, ALL_BYTES]).subarray(0, 300));
      expect(capped.truncated).toBe(true);

      // The default stays UTF-8 text (an invalid byte becomes U+FFFD there, as documented).
      const text = await engine.execute({ runtime: "python", code: "print('\u00e9')" });
      expect(text.stdout).toBe("\u00e9\n");
    } finally {
      await engine.stop();
    }
  });
});

describe("items 14 and 15 through isol8 serve: RemoteIsol8", () => {
  test("code and stdin as bytes and outputEncoding base64 travel the wire unchanged (execute and executeStream)", async () => {
    const remote = new RemoteIsol8({ host: served.url, apiKey: KEY });
    try {
      const refused = await remote.execute({ runtime: "python", code: NOT_UTF8_PY });
      expect(refused.stderr).toMatch(/SyntaxError: Non-UTF-8 code starting with '\\xff' in file \/sandbox\/main\.py/);
      expect(refused.exitCode).toBe(1);
      const echo = "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())";
      const result = await remote.execute({ runtime: "python", code: Buffer.from(echo), stdin: ALL_BYTES, outputEncoding: "base64" });
      expect(Buffer.from(result.stdout, "base64")).toEqual(ALL_BYTES);
      const events: StreamEvent[] = [];
      for await (const event of remote.executeStream({ runtime: "python", code: echo, stdin: ALL_BYTES, outputEncoding: "base64" })) events.push(event);
      expect(events.at(-1)?.type).toBe("exit");
      expect(Buffer.concat(events.filter((e) => e.type === "stdout").map((e) => Buffer.from(e.data, "base64")))).toEqual(ALL_BYTES);
    } finally {
      await remote.stop();
    }
  });
});

describe("item 16: sizes below Docker's minimum", () => {
  test("--memory below 6 MiB is refused naming the flag (not Docker's raw 400); 6m runs", async () => {
    const result = await isol8Bytes(["run", "--memory", "1k", "-e", "print(1)"]);
    expect(result.stderr).toMatch(/--memory: .*at least 6(\.0)? MiB/);
    expect(result.stderr).not.toMatch(/HTTP code 400/);
    expect(result.code).toBe(125);
    const control = await isol8Bytes(["run", "-r", "bash", "--memory", "6m", "-e", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes"]);
    expect(control).toMatchObject({ stdout: Buffer.from(`${6 * 1024 * 1024}\n`), code: 0 });
  });

  test("the library refuses memoryLimit below 6 MiB when the engine is made, naming the option", () => {
    expect(() => new DockerIsol8({ memoryLimit: "1k" })).toThrow(InvalidOptionsError);
    expect(() => new DockerIsol8({ memoryLimit: 6 * 1024 * 1024 - 1 })).toThrow(/memoryLimit: .*at least 6 MiB/);
  });
});

describe("item 17: large program stdin", () => {
  const MiB = randomBytes(1024 * 1024);

  test("--stdin-file feeds a 1 MiB file byte-exact, locally and with --host", async () => {
    const file = join(dir, "input.bin");
    await writeFile(file, MiB);
    for (const args of [
      ["run", "--stdin-file", file, "-e", HASH_STDIN],
      ["run", "--host", served.url, "--key", KEY, "--stdin-file", file, "-e", HASH_STDIN],
    ]) {
      const result = await isol8Bytes(args);
      expect(result.stderr, args.join(" ")).toBe("");
      expect(result.stdout.toString(), args.join(" ")).toBe(`${sha256(MiB)} ${MiB.length}\n`);
      expect(result.code, args.join(" ")).toBe(0);
    }
    const missing = await isol8Bytes(["run", "--stdin-file", join(dir, "nope.bin"), "-e", HASH_STDIN]);
    expect(missing.stderr).toMatch(/--stdin-file: cannot read .*nope\.bin: no such file/);
    expect(missing.code).toBe(125);
  });

  test("--stdin - reads the CLI's own standard input (1 MiB, byte-exact) with -e and with a file", async () => {
    const withEval = await isol8Bytes(["run", "--stdin", "-", "-e", HASH_STDIN], { input: MiB });
    expect(withEval.stdout.toString()).toBe(`${sha256(MiB)} ${MiB.length}\n`);
    expect(withEval.code).toBe(0);
    const file = join(dir, "hash.py");
    await writeFile(file, HASH_STDIN);
    const withFile = await isol8Bytes(["run", "--stdin", "-", file], { input: MiB });
    expect(withFile.stdout.toString()).toBe(`${sha256(MiB)} ${MiB.length}\n`);
    expect(withFile.code).toBe(0);
  });

  test("--stdin - is refused when the code itself comes from standard input, and --stdin with --stdin-file", async () => {
    const refused = await isol8Bytes(["run", "--stdin", "-"], { input: "print(1)" });
    expect(refused.stderr).toMatch(/--stdin -: standard input already carries the code/);
    expect(refused.code).toBe(125);
    const both = await isol8Bytes(["run", "--stdin", "x", "--stdin-file", join(dir, "input.bin"), "-e", "print(1)"]);
    expect(both.stderr).toMatch(/give either --stdin or --stdin-file/);
    expect(both.code).toBe(125);
  });
});
