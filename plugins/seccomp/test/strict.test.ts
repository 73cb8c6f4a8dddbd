import { DockerIsol8, defaultPlugins, type ExecutionResult } from "isol8";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { isol8Containers } from "../../../test/helpers.js";
import { seccomp } from "../src/index.js";
import { ABI_PROBE, ALLOWED_PROBES, REFUSED_PROBES, SYSCALL_PROBE } from "./probe.js";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

// One engine with the seccomp plugin and no seccomp option: strict is the default.
// Every execution gets a fresh container (no pool plugin), so each one is a strict container.
let engine: DockerIsol8;

beforeAll(async () => {
  engine = new DockerIsol8({ timeoutMs: 60_000 }, { plugins: defaultPlugins(seccomp()) });
  await engine.start();
});

afterAll(async () => {
  await engine?.stop();
  expect(await isol8Containers(engine.id)).toEqual([]);
});

function ok(result: ExecutionResult): ExecutionResult {
  expect(result.stderr, `stderr of a ${result.runtime} program`).toBe("");
  expect(result.exitCode).toBe(0);
  return result;
}

test("strict is the mode in force when the plugin is present", () => {
  expect(engine.seccompMode).toBe("strict");
});

test("the container carries the strict profile beside no-new-privileges, for the native architecture only", async () => {
  const kept = new DockerIsol8({ persist: true }, { plugins: defaultPlugins(seccomp()) });
  const result = await kept.execute({ runtime: "bash", code: "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status" });
  try {
    expect(result.stdout).toMatch(/NoNewPrivs:\s+1/);
    expect(result.stdout).toMatch(/Seccomp:\s+2/); // 2 = filter mode
    const info = await kept.docker.inspectContainer(result.containerId!);
    const opts: string[] = info!.HostConfig.SecurityOpt ?? [];
    expect(opts[0]).toBe("no-new-privileges");
    const profile = JSON.parse(opts.find((o) => o.startsWith("seccomp="))!.slice("seccomp=".length));
    expect(profile.defaultAction).toBe("SCMP_ACT_ERRNO");
    // No 32-bit entry points: asserted on the applied profile, since no 32-bit binary exists in
    // the images to try int 0x80 live.
    expect(profile.architectures).toEqual([process.arch === "arm64" ? "SCMP_ARCH_AARCH64" : "SCMP_ARCH_X86_64"]);
    expect(profile).not.toHaveProperty("archMap");
  } finally {
    await kept.stop();
    await kept.docker.removeContainer(result.containerId!);
  }
});

describe("every runtime works under strict", () => {
  test.each([
    ["python", "print('hello from python')"],
    ["node", "console.log('hello from node')"],
    ["bun", "console.log('hello from bun')"],
    ["deno", "console.log('hello from deno')"],
    ["bash", "echo hello from bash"],
  ])("%s runs a hello program", async (runtime, code) => {
    const result = ok(await engine.execute({ runtime, code }));
    expect(result.stdout).toBe(`hello from ${runtime}\n`);
  });

  test("python: a multiprocessing Pool of 2, threads and a subprocess", async () => {
    const result = ok(
      await engine.execute({
        runtime: "python",
        code: [
          "import multiprocessing, subprocess, threading",
          "from concurrent.futures import ThreadPoolExecutor",
          "def square(x):",
          "    return x * x",
          "if __name__ == '__main__':",
          "    with multiprocessing.Pool(2) as pool:",
          "        print('pool', sum(pool.map(square, range(100))))",
          "    ctx = multiprocessing.get_context('spawn')",
          "    with ctx.Pool(2) as pool:",
          "        print('spawn', sum(pool.map(square, range(10))))",
          "    lock, total = threading.Lock(), [0]",
          "    def add(n):",
          "        with lock:",
          "            total[0] += n",
          "    with ThreadPoolExecutor(4) as ex:",
          "        list(ex.map(add, range(1000)))",
          "    print('threads', total[0])",
          "    print(subprocess.run(['echo', 'child'], capture_output=True, text=True).stdout.strip())",
        ].join("\n"),
      }),
    );
    expect(result.stdout).toBe("pool 328350\nspawn 285\nthreads 499500\nchild\n");
  });

  test("node: worker_threads, child_process, and every thread of the process is filtered", async () => {
    const result = ok(
      await engine.execute({
        runtime: "node",
        code: [
          "const { Worker } = require('node:worker_threads');",
          "const { execFileSync } = require('node:child_process');",
          "const { readdirSync, readFileSync } = require('node:fs');",
          "const run = (n) => new Promise((resolve, reject) => {",
          "  const w = new Worker('const { parentPort, workerData } = require(\"node:worker_threads\"); let s = 0; for (let i = 0; i < workerData; i++) s += i; parentPort.postMessage(s);', { eval: true, workerData: n });",
          "  w.once('message', resolve); w.once('error', reject);",
          "});",
          "(async () => {",
          "  const sums = await Promise.all([run(1000), run(2000)]);",
          "  console.log('workers', sums.join(','));",
          "  console.log(execFileSync('echo', ['child']).toString().trim());",
          // A worker's thread may end between the listing and the read: a thread gone is skipped.
          "const status = (t) => { try { return readFileSync(`/proc/self/task/${t}/status`, 'utf8'); } catch (e) { if (e.code === 'ENOENT') return undefined; throw e; } };",
          "  const modes = readdirSync('/proc/self/task').map(status).filter(Boolean).map((text) => /Seccomp:\\s+(\\d)/.exec(text)[1]);",
          "  console.log('threads', modes.length > 1, [...new Set(modes)].join(','));",
          "})();",
        ].join("\n"),
      }),
    );
    expect(result.stdout).toBe("workers 499500,1999000\nchild\nthreads true 2\n");
  });

  // Timers, the file system and crypto (node:crypto and WebCrypto) in the two other JS runtimes.
  const jsProgram = (writeRead: string) =>
    [
      "import { createHash, randomUUID } from 'node:crypto';",
      "await new Promise((resolve) => setTimeout(resolve, 50));",
      "const interval = await new Promise((resolve) => { let n = 0; const id = setInterval(() => { if (++n === 3) { clearInterval(id); resolve(n); } }, 5); });",
      writeRead,
      "const viaNode = createHash('sha256').update(text).digest('hex');",
      "const viaWeb = Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text))), (b) => b.toString(16).padStart(2, '0')).join('');",
      "console.log(interval, text, viaNode.slice(0, 8), viaWeb === viaNode, randomUUID().length, crypto.getRandomValues(new Uint8Array(4)).length);",
    ].join("\n");

  test("bun: timers, fs and crypto", async () => {
    const result = ok(
      await engine.execute({
        runtime: "bun",
        code: jsProgram(
          "import { writeFileSync, readFileSync } from 'node:fs';\nwriteFileSync('/sandbox/x.txt', 'hello'); await Bun.write('/tmp/y.txt', readFileSync('/sandbox/x.txt'));\nconst text = await Bun.file('/tmp/y.txt').text();",
        ),
      }),
    );
    expect(result.stdout).toBe("3 hello 2cf24dba true 36 4\n");
  });

  test("deno: timers, fs and crypto", async () => {
    const result = ok(
      await engine.execute({
        runtime: "deno",
        code: jsProgram(
          "await Deno.writeTextFile('/sandbox/x.txt', 'hello');\nawait Deno.mkdir('/tmp/d', { recursive: true });\nawait Deno.copyFile('/sandbox/x.txt', '/tmp/d/y.txt');\nconst text = await Deno.readTextFile('/tmp/d/y.txt');",
        ),
      }),
    );
    expect(result.stdout).toBe("3 hello 2cf24dba true 36 4\n");
  });

  test("bash: pipelines, subshells, background jobs, process substitution, a FIFO", async () => {
    const result = ok(
      await engine.execute({
        runtime: "bash",
        code: [
          "seq 1 1000 | grep 7 | sort -rn | head -3 | tr '\\n' ' '; echo",
          "(cd /tmp && echo sub > f && cat f)",
          "sleep 0.1 & wait $!; echo waited $?",
          "wc -l < <(seq 5)",
          "mkfifo /tmp/fifo && { echo through-fifo > /tmp/fifo & cat /tmp/fifo; wait; }",
          "mkdir -p /sandbox/a/b && tar -C /sandbox -cf - a | tar -C /tmp -xf - && ls -d /tmp/a/b",
        ].join("\n"),
      }),
    );
    expect(result.stdout).toBe("997 987 979 \nsub\nwaited 0\n5\nthrough-fifo\n/tmp/a/b\n");
  });
});

describe("what strict refuses, each beside a control", () => {
  // The same probe program under unconfined is the control: there every refused call reaches
  // the kernel (success, or EFAULT/EINVAL/EBADF from the deliberately bad arguments).
  let strict: Record<string, string>;
  let unconfined: Record<string, string>;
  let abi: { strict: Record<string, string>; unconfined: Record<string, string> } | undefined;

  beforeAll(async () => {
    const control = new DockerIsol8({ security: { seccomp: "unconfined" } }, { plugins: defaultPlugins(seccomp()), logger: quiet });
    try {
      const [a, b] = await Promise.all([
        engine.execute({ runtime: "python", code: SYSCALL_PROBE }),
        control.execute({ runtime: "python", code: SYSCALL_PROBE }),
      ]);
      strict = JSON.parse(ok(a).stdout);
      unconfined = JSON.parse(ok(b).stdout);
      if (process.arch === "x64") {
        const [c, d] = await Promise.all([engine.execute({ runtime: "python", code: ABI_PROBE }), control.execute({ runtime: "python", code: ABI_PROBE })]);
        abi = { strict: JSON.parse(ok(c).stdout), unconfined: JSON.parse(ok(d).stdout) };
      }
    } finally {
      await control.stop();
      expect(await isol8Containers(control.id)).toEqual([]);
    }
  });

  test("the probe works: allowed calls succeed under strict", () => {
    for (const probe of ALLOWED_PROBES) expect(strict[probe], probe).toBe("ok");
  });

  test.each(Object.entries(REFUSED_PROBES))("%s: refused under strict, reaches the kernel under unconfined", (probe, errno) => {
    expect(strict[probe]).toBe(errno);
    expect(unconfined[probe]).toBeDefined();
    expect(["EPERM", "ENOSYS"], `${probe} under unconfined`).not.toContain(unconfined[probe]);
  });

  test.runIf(process.arch === "x64")("other x86 ABIs: strict kills an x32 syscall (SIGSYS); int 0x80 never runs", () => {
    expect(abi!.strict.native).toBe("ok");
    // The x32 bit on an ordinary syscall: strict's filter knows only x86_64, so the process is
    // killed. Without the filter the call reaches the kernel (ENOSYS where x32 is compiled out).
    expect(abi!.strict.x32).toBe("signal 31");
    expect(abi!.unconfined.x32).not.toBe("signal 31");
    // i386 syscalls through int 0x80: killed by seccomp (SIGSYS) when the kernel has 32-bit
    // emulation; where it has none (this machine's kernel answers SIGSEGV even unconfined),
    // the entry point does not exist and there is nothing to refuse.
    if (abi!.unconfined.int80 === "ok") expect(abi!.strict.int80).toBe("signal 31");
    else expect(abi!.strict.int80).toBe(abi!.unconfined.int80);
    expect(abi!.strict.int80).not.toBe("ok");
  });

  test("shell tools: unshare -U and -Ur fail, the commands around them work", async () => {
    const result = await engine.execute({
      runtime: "bash",
      code: ["echo before", "unshare -U true; echo unshare=$?", "unshare -Ur id -u; echo unshare-r=$?", "echo after"].join("\n"),
    });
    expect(result.stdout).toBe("before\nunshare=1\nunshare-r=1\nafter\n");
    expect(result.stderr).toMatch(/unshare failed: Operation not permitted/);
  });
});
