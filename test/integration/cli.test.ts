import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { cliPids, expectNoContainersOfProcesses, isol8Cli } from "../helpers.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "isol8-cli-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  // No CLI run left a container behind.
  expect(cliPids.size).toBeGreaterThan(10);
  await expectNoContainersOfProcesses(cliPids);
});

describe("isol8 run", () => {
  test("-e runs python by default and prints its output", async () => {
    const result = await isol8Cli(["run", "-e", "print(1+1)"]);
    expect(result).toMatchObject({ stdout: "2\n", code: 0 });
  });

  test.each([
    ["hello.js", "console.log('node', 6 * 7)", "node 42\n"],
    ["hello.mjs", "const x = await Promise.resolve(42); console.log('mjs', x)", "mjs 42\n"],
    ["hello.cjs", "const os = require('os'); console.log('cjs', typeof os.cpus)", "cjs function\n"],
    ["hello.ts", "const n: number = 42; console.log('bun', n)", "bun 42\n"],
    ["hello.mts", "const n: number = 42; console.log('deno', n)", "deno 42\n"],
    ["hello.sh", "echo bash $((6 * 7))", "bash 42\n"],
    ["hello.py", "print('python', 6 * 7)", "python 42\n"],
  ])("a file's extension picks its runtime: %s", async (name, code, expected) => {
    const file = join(dir, name);
    await writeFile(file, code);
    const result = await isol8Cli(["run", file]);
    expect(result.stderr).toBe("");
    expect(result).toMatchObject({ stdout: expected, code: 0 });
  });

  test("code on standard input runs (python unless --runtime says otherwise)", async () => {
    expect(await isol8Cli(["run"], { input: "print('from stdin')" })).toMatchObject({ stdout: "from stdin\n", code: 0 });
    expect(await isol8Cli(["run", "--runtime", "bash"], { input: "echo piped" })).toMatchObject({ stdout: "piped\n", code: 0 });
  });

  test("the program's exit code becomes the CLI's", async () => {
    expect((await isol8Cli(["run", "-r", "bash", "-e", "exit 3"])).code).toBe(3);
    expect((await isol8Cli(["run", "-r", "node", "-e", "process.exit(9)"])).code).toBe(9);
  });

  test("--env, --secret and --stdin reach the program; the secret is masked in its output", async () => {
    const result = await isol8Cli([
      "run",
      "-r",
      "bash",
      "--env",
      "NAME=world",
      "--secret",
      "TOKEN=hunter2-secret",
      "--stdin",
      "typed input",
      "-e",
      'echo "hi $NAME"; echo "token $TOKEN"; echo "token length ${#TOKEN}"; cat',
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe("hi world\ntoken ***\ntoken length 14\ntyped input");
  });

  test("--memory and --pids-limit set the container's cgroup limits", async () => {
    const read =
      "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max";
    const result = await isol8Cli(["run", "-r", "bash", "--memory", "128m", "--pids-limit", "32", "-e", read]);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`${128 * 1024 * 1024}\n32\n`);
  });

  test("--cpu sets the container's CPU quota (read from its cgroup)", async () => {
    // cgroup v2: cpu.max is "<quota> <period>"; v1: cpu.cfs_quota_us and cpu.cfs_period_us.
    const read = 'cat /sys/fs/cgroup/cpu.max 2>/dev/null || echo "$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"';
    const half = await isol8Cli(["run", "-r", "bash", "--cpu", "0.5", "-e", read]);
    expect(half).toMatchObject({ stdout: "50000 100000\n", code: 0 });
    const more = await isol8Cli(["run", "-r", "bash", "--cpu", "1.5", "-e", read]);
    expect(more).toMatchObject({ stdout: "150000 100000\n", code: 0 });
  });

  test("--net none leaves only the loopback interface; --net host shows the host's", async () => {
    const none = await isol8Cli(["run", "-r", "bash", "--net", "none", "-e", "ls /sys/class/net"]);
    expect(none).toMatchObject({ stdout: "lo\n", code: 0 });
    // Positive control: the same listing sees more than lo when the network is the host's.
    const host = await isol8Cli(["run", "-r", "bash", "--net", "host", "-e", "ls /sys/class/net"]);
    expect(host.code).toBe(0);
    const interfaces = host.stdout.split("\n").filter(Boolean);
    expect(interfaces).toContain("lo");
    expect(interfaces.length).toBeGreaterThan(1);
  });

  test("--max-output cuts the output at the bound and reports the cut", async () => {
    const cut = await isol8Cli(["run", "--max-output", "1k", "-e", "print('x' * 5000)"]);
    expect(cut.code).toBe(0);
    expect(cut.stdout).toBe("x".repeat(1024));
    expect(cut.stderr).toMatch(/output went over the output limit \(--max-output\) and was cut/);
    // Under the bound: whole, and no report.
    const whole = await isol8Cli(["run", "--max-output", "1k", "-e", "print('x' * 1000)"]);
    expect(whole).toMatchObject({ stdout: `${"x".repeat(1000)}\n`, stderr: "", code: 0 });
  });

  test("--timeout kills the program and reports it", async () => {
    const result = await isol8Cli(["run", "-r", "bash", "--timeout", "1000", "-e", "sleep 30"]);
    expect(result.code).toBe(137);
    expect(result.stderr).toMatch(/timed out after 1000 ms/);
    // Positive control: a program that ends within its --timeout is not killed.
    const within = await isol8Cli(["run", "-r", "bash", "--timeout", "60000", "-e", "sleep 1; echo done"]);
    expect(within).toMatchObject({ stdout: "done\n", stderr: "", code: 0 });
  });

  test("--out writes stdout to a file", async () => {
    const out = join(dir, "out.txt");
    const result = await isol8Cli(["run", "-e", "print('to a file')", "--out", out]);
    expect(result).toMatchObject({ stdout: "", code: 0 });
    expect(await readFile(out, "utf8")).toBe("to a file\n");
  });

  test("bad input: clear message naming the flag, exit status 125", async () => {
    const cases: [string[], RegExp][] = [
      [["run", "-r", "ruby", "-e", "puts 1"], /Unknown runtime "ruby".*python, node, bun, deno, bash/],
      [["run", "--timeout", "soon", "-e", "print(1)"], /--timeout: expected a positive whole number/],
      [["run", "--timeout", "0", "-e", "print(1)"], /--timeout: expected a positive whole number/],
      [["run", "--memory", "lots", "-e", "print(1)"], /--memory: expected a size/],
      [["run", "--env", "1BAD=x", "-e", "print(1)"], /--env: expected KEY=VALUE/],
      [["run", join(dir, "missing.py")], /cannot read .*missing\.py: no such file/],
      [["run", "-e", "   "], /request\.code: expected non-empty code/],
      [["run", "--net", "bogus", "-e", "print(1)"], /network mode "bogus"/],
    ];
    for (const [args, message] of cases) {
      const result = await isol8Cli(args);
      expect(result.stderr, args.join(" ")).toMatch(message);
      expect(result.code, args.join(" ")).toBe(125);
    }
  });

  test("--help on every command", async () => {
    for (const args of [["--help"], ["run", "--help"], ["setup", "--help"], ["config", "--help"]]) {
      const result = await isol8Cli(args);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/Usage: isol8/);
    }
  });
});

describe("isol8 setup", () => {
  test("a second setup finds every image up to date and takes seconds", async () => {
    const started = Date.now();
    const result = await isol8Cli(["setup"]);
    expect(result.code).toBe(0);
    for (const runtime of ["python", "node", "bun", "deno", "bash"]) expect(result.stdout).toMatch(new RegExp(`^${runtime}\\s+up-to-date`, "m"));
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  test("--runtime with an unknown name is refused", async () => {
    const result = await isol8Cli(["setup", "--runtime", "cobol"]);
    expect(result.code).toBe(125);
    expect(result.stderr).toMatch(/unknown runtime "cobol"/);
  });
});

describe("isol8 config", () => {
  test("prints the resolved config and the file it came from", async () => {
    const result = await isol8Cli(["config"]);
    expect(result.code).toBe(0);
    const config = JSON.parse(result.stdout);
    expect(config.file).toMatch(/isol8\.config\.ts$/);
    expect(config.runtimes).toEqual(["python", "node", "bun", "deno", "bash"]);
    expect(config.options.timeoutMs).toEqual({ value: 30000, source: "file" });
    expect(config.options.debug).toEqual({ value: false, source: "default" });
  });

  test("an explicit --config file is used, and a bad one names the key", async () => {
    const good = join(dir, "good.config.mjs");
    await writeFile(good, "export default { defaults: { timeoutMs: 1234 } };\n");
    const result = await isol8Cli(["--config", good, "config"]);
    expect(JSON.parse(result.stdout)).toMatchObject({ file: good, options: { timeoutMs: { value: 1234, source: "file" } } });

    const bad = join(dir, "bad.config.json");
    await writeFile(bad, JSON.stringify({ defaults: { memoryLimit: "lots" } }));
    const failed = await isol8Cli(["--config", bad, "config"]);
    expect(failed.code).toBe(125);
    expect(failed.stderr).toMatch(/bad\.config\.json.*defaults\.memoryLimit/);
  });
});
