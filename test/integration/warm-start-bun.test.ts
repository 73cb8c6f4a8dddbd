import { describe, expect, test } from "vitest";
import type { ExecutionRequest } from "@isol8/core";
import { DockerIsol8 } from "isol8";
import { isol8Containers } from "../helpers.js";
import { warmAndColdEngines } from "../warm-engines.js";

// The bun warm start (plugins/runtime-bun/src/warm-start.ts; executor PROTOCOL.md, "The
// standby"): between executions the executor starts `bun run --preload <preload>
// /sandbox/main.ts`, whose start-up waits in the preload for the next request. The same programs
// run on an engine with the warm start and one without must give the same stdout, stderr and exit
// code. Bun keeps the environment it started with (Bun.spawn's default), so only a run with the
// warm start's own environment runs in-process: these engines have no secrets, and the programs
// no env of their own, except where a test says otherwise.

const WARM_CMDLINE = "run --preload /usr/local/lib/isol8/bun-warm-start.js /sandbox/main.ts";
const COLD_CMDLINE = "run /sandbox/main.ts";
const PRELOAD = "/usr/local/lib/isol8/bun-warm-start.js";
/** The program's own command line (the warm start shows there: its `--preload`). */
const CMDLINE = "require('fs').readFileSync('/proc/self/cmdline', 'utf8').split('\\0').slice(1, -1).join(' ')";
/** require.cache without the preload: a warm bun lists it too (the one known difference, pinned below). */
const CACHE = `Object.keys(require.cache).filter((k) => k !== '${PRELOAD}')`;
/** Open descriptors by what they are (pipes and files), as in deno's suite: the runtime's anon inodes and sockets vary with its threads. */
const FDS =
  "require('fs').readdirSync('/proc/self/fd').map((fd: string) => { try { return require('fs').readlinkSync('/proc/self/fd/' + fd); } catch { return 'closed'; } }).filter((t: string) => t !== 'closed' && !t.startsWith('anon_inode:') && !t.startsWith('socket:')).map((t: string) => t.replace(/\\[\\d+\\]$/, '')).sort().join()";
/** The environment as the program, a child process (Bun.spawnSync's default) and a Worker see it; HOSTNAME (the container's id) left out. */
const ENV_VIEWS = [
  "const noHost = (lines: string[]) => lines.filter((l) => l && !l.startsWith('HOSTNAME=')).sort().join('|');",
  "console.log('program', noHost(Object.entries(process.env).filter(([, v]) => v !== undefined).map(([k, v]) => k + '=' + v)));",
  "console.log('child', noHost(Bun.spawnSync(['env']).stdout.toString().split('\\n')), Bun.which('env'));",
  "const w = new Worker(URL.createObjectURL(new Blob(['postMessage(Object.entries(process.env).map(([k, v]) => k + \"=\" + v))'])));",
  "w.onmessage = (e) => { console.log('worker', noHost(e.data)); w.terminate(); };",
].join("\n");

const { warm, cold, sameWarmAndCold } = warmAndColdEngines(["bun"], { secrets: {} });

const bun = (code: string, extra: Partial<ExecutionRequest> = {}): ExecutionRequest => ({ runtime: "bun", code, ...extra });

describe("a warm start runs the program as a fresh `bun run /sandbox/main.ts` would", () => {
  sameWarmAndCold({
    "argv, Bun.main, import.meta, require.main, require.cache, globals, open descriptors": bun(
      [
        "console.log(process.argv, process.execArgv, Bun.argv, Bun.main, import.meta.main, import.meta.path, import.meta.dir, require.main === module);",
        `console.log(${CACHE}, Object.keys(globalThis).sort().join(), process.stdin.isTTY, Error.stackTraceLimit, process.cwd());`,
        `console.log(${FDS}, require('fs').openSync('/etc/hostname'));`,
      ].join("\n"),
    ),
    "TypeScript, ES modules and CommonJS resolved from /sandbox (files and node_modules)": bun(
      "import { twice } from './lib/m';\nimport pkg from 'pkg';\nenum E { A = 2 }\nconst n: number = twice(E.A);\nconsole.log(n, pkg, require('./lib/c.cjs'), require.resolve('pkg'));",
      {
        files: {
          "lib/m.ts": "export const twice = (x: number): number => x * 2;",
          "lib/c.cjs": "module.exports = 'cjs:' + (require.main === module);",
          "node_modules/pkg/index.js": "module.exports = 'pkg';",
        },
      },
    ),
    "a package.json and a .env file (runs as the request's own command)": bun("console.log(process.env.FROM_DOTENV, require('./package.json').name)", {
      files: { "package.json": '{"name": "p", "type": "module"}', ".env": "FROM_DOTENV=dotenv" },
    }),
    "stdin through Bun.stdin": bun("const text = await Bun.stdin.text();\nconsole.log(JSON.stringify(text), process.stdin.isTTY);", { stdin: "from stdin" }),
    "stdin through node:fs and process.stdin": bun(
      "console.log(JSON.stringify(require('fs').readFileSync(0, 'utf8')));\nprocess.stdin.on('data', (d) => console.log('late', d.length)).on('end', () => console.log('end'));",
      { stdin: "line 1\nline 2\n" },
    ),
    "no stdin reads as empty": bun("console.log(JSON.stringify(await Bun.stdin.text()), JSON.stringify(require('fs').readFileSync(0, 'utf8')))"),
    "the environment, as the program, a child process and a worker see it": bun(ENV_VIEWS),
    "an uncaught error: bun prints the source line and the stack": bun("function f(): never {\n  throw new Error('boom');\n}\nf();\n"),
    "a syntax error": bun("console.log('a'\n"),
    "a missing module": bun("import x from './nowhere';\nconsole.log(x);"),
    "an unhandled rejection": bun("Promise.reject(new TypeError('nope'));\nsetTimeout(() => console.log('never'), 100);"),
    "process.exit(3) and the exit event": bun("process.on('exit', (code) => console.log('exit', code));\nconsole.log('before');\nprocess.exit(3);"),
    "process.exitCode at the end": bun("process.exitCode = 4;\nsetTimeout(() => console.log('later'), 50);"),
    "a child bun": bun(
      "console.log(Bun.spawnSync([process.execPath, '-e', 'console.log(process.execArgv, Object.keys(require.cache).length)']).stdout.toString().trim());",
    ),
  });

  test("the warm engine really started warm, and the cold one did not", async () => {
    expect((await warm.execute(bun(`console.log(${CMDLINE})`))).stdout).toBe(`${WARM_CMDLINE}\n`);
    expect((await cold.execute(bun(`console.log(${CMDLINE})`))).stdout).toBe(`${COLD_CMDLINE}\n`);
  });

  test("a run with stdin stays in-process: the request's stdin is put on fd 0", async () => {
    const result = await warm.execute(bun(`console.log(${CMDLINE} + '|' + (await Bun.stdin.text()))`, { stdin: "piped" }));
    expect(result.stdout).toBe(`${WARM_CMDLINE}|piped\n`);
  });

  test("the one difference a warm bun shows besides its command line: require.cache lists the preload", async () => {
    const list = "console.log(JSON.stringify(Object.keys(require.cache)))";
    expect(JSON.parse((await warm.execute(bun(list))).stdout)).toEqual([PRELOAD, "/sandbox/main.ts"]);
    expect(JSON.parse((await cold.execute(bun(list))).stdout)).toEqual(["/sandbox/main.ts"]);
  });
});

describe("each execution gets a fresh bun", () => {
  test("nothing one execution changes in bun is seen by the next (pool), and no placeholder main.ts is left", async () => {
    const first = await warm.execute(
      bun(
        `(globalThis as Record<string, unknown>).LEAK = 1;\nprocess.env.LEAK = '1';\nrequire('fs').writeFileSync('/tmp/leak', '1');\nconsole.log(${CMDLINE} + '|' + process.pid)`,
      ),
    );
    const second = await warm.execute(
      bun(
        `const fs = require('fs');\nconsole.log([${CMDLINE}, process.pid, 'LEAK' in globalThis, 'LEAK' in process.env, fs.existsSync('/tmp/leak'), fs.readdirSync('/sandbox').join()].join('|'))`,
      ),
    );
    const [mode1, pid1] = first.stdout.trim().split("|");
    const [mode2, pid2, ...seen] = second.stdout.trim().split("|");
    expect(mode1).toBe(WARM_CMDLINE);
    expect(mode2).toBe(WARM_CMDLINE);
    expect(seen).toEqual(["false", "false", "false", "main.ts"]);
    // Another process: a pid names one only inside its container (the pool may hand out another).
    expect(`${second.containerId}:${pid2}`).not.toBe(`${first.containerId}:${pid1}`);
  });

  test("a request whose entry is not /sandbox/main.ts runs as its own command, without the standby's placeholder main.ts", async () => {
    // The positive control: this sandbox's standby made its placeholder (an inline .ts run is warm).
    expect((await warm.execute(bun(`console.log(${CMDLINE})`))).stdout).toBe(`${WARM_CMDLINE}\n`);
    const result = await warm.execute(bun("console.log(process.argv[1], require('fs').readdirSync('/sandbox').join())", { fileExtension: ".js" }));
    expect(result.stdout).toBe("/sandbox/main.js main.js\n");
    expect(result.exitCode).toBe(0);
  });

  test("a request with an environment of its own runs cold, and a child process and a worker see it", async () => {
    const result = await warm.execute(bun(`console.log(${CMDLINE});\n${ENV_VIEWS}`, { env: { GREETING: "hi" } }));
    const lines = result.stdout.trim().split("\n");
    expect(lines[0]).toBe(COLD_CMDLINE);
    expect(lines.slice(1).map((line) => [line.split(" ")[0], line.includes("GREETING=hi")])).toEqual([
      ["program", true],
      ["child", true],
      ["worker", true],
    ]);
    // ...and the next one is warm again.
    expect((await warm.execute(bun(`console.log(${CMDLINE})`))).stdout).toBe(`${WARM_CMDLINE}\n`);
  });

  test("on an engine with secrets a run is warm (the waiting bun started with them), and a child process sees the secret", async () => {
    const engine = new DockerIsol8({ launcher: "executor", timeoutMs: 20_000, poolSize: 1, secrets: { API_TOKEN: "tok-5f1e9a" } });
    try {
      const result = await engine.execute(bun(`console.log(${CMDLINE}, Bun.spawnSync(['sh', '-c', 'echo $API_TOKEN']).stdout.toString().trim())`));
      // The secret is masked in the output: it was there.
      expect(result.stdout).toBe(`${WARM_CMDLINE} ***\n`);
    } finally {
      await engine.stop();
    }
    expect(await isol8Containers(engine.id)).toEqual([]);
  });

  test("persistent mode: files stay, processes do not; every execution starts warm; a package.json makes the next exec", async () => {
    // A persistent engine runs one runtime.
    const engine = new DockerIsol8({ mode: "persistent", launcher: "executor", timeoutMs: 20_000 });
    try {
      const first = await engine.execute(
        bun(
          "require('fs').writeFileSync('kept.txt', 'kept');\nBun.spawn(['sleep', '300'], { stdio: ['ignore', 'ignore', 'ignore'] }).unref();\nconsole.log('started')",
        ),
      );
      expect(first.stdout).toBe("started\n");
      const others =
        "require('fs').readdirSync('/proc').filter((p: string) => /^\\d+$/.test(p) && +p !== process.pid && require('fs').readFileSync('/proc/' + p + '/status', 'utf8').split('Uid:')[1].split(/\\s+/)[1] === String(process.getuid()))";
      const second = await engine.execute(
        bun(
          `require('fs').writeFileSync('package.json', '{}');\nconsole.log(${CMDLINE} + '|' + require('fs').readFileSync('kept.txt', 'utf8') + '|' + JSON.stringify(${others}))`,
        ),
      );
      expect(second.stdout).toBe(`${WARM_CMDLINE}|kept|[]\n`);
      expect(second.containerId).toBe(first.containerId);
      // package.json is now in /sandbox: read at start-up, so the standby execs the request's own command.
      const third = await engine.execute(bun(`console.log(${CMDLINE})`));
      expect(third.stdout).toBe(`${COLD_CMDLINE}\n`);
    } finally {
      await engine.stop();
    }
    expect(await isol8Containers(engine.id)).toEqual([]);
  });

  test("a timed-out warm execution is killed like any other; the engine goes on", async () => {
    const result = await warm.execute(bun("for (;;) {}", { timeoutMs: 1500 }));
    expect(result.timedOut).toBe(true);
    expect(result.exitCode).toBe(137);
    expect((await warm.execute(bun(`console.log(${CMDLINE})`))).stdout).toBe(`${WARM_CMDLINE}\n`);
  });
});
