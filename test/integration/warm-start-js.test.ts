import { describe, expect, test } from "vitest";
import type { ExecutionRequest } from "@isol8/core";
import { DockerIsol8 } from "isol8";
import { isol8Containers } from "../helpers.js";
import { warmAndColdEngines } from "../warm-engines.js";

// The node and deno warm starts (plugins/runtime-{node,deno}/src/warm-start.ts; executor
// PROTOCOL.md, "The standby"): between executions the executor starts `node -r <preload>
// /sandbox/main.js` / `deno run ... --preload <preload> /sandbox/main.mts`, whose start-up waits
// in the preload for the next request. The same programs run on an engine with
// the warm start and one without must give the same stdout, stderr and exit code. These tests
// force the executor (the warm start needs it), whatever ISOL8_LAUNCHER says.

/** The warm start shows in the program's own command line (the preload's `-r`). */
const CMDLINE = "require('fs').readFileSync('/proc/self/cmdline', 'utf8').split('\\0').slice(1, -1).join(' ')";
const WARM_CMDLINE = "-r /usr/local/lib/isol8/node-warm-start.cjs /sandbox/main.js";

const { warm, cold, persistent, sameWarmAndCold } = warmAndColdEngines(["node", "deno"]);

const js = (code: string, extra: Partial<ExecutionRequest> = {}): ExecutionRequest => ({ runtime: "node", code, ...extra });

describe("a warm start runs the program as a fresh `node /sandbox/main.js` would", () => {
  const programs: Record<string, ExecutionRequest> = {
    "argv, execArgv, require.main, require.cache, module paths, open descriptors": js(
      [
        "const fs = require('fs');",
        "console.log(process.argv, process.execArgv, require.main === module, process.mainModule === module, module.id, __filename, __dirname);",
        "console.log(Object.keys(require.cache), module.paths, module.parent, require.resolve.paths('x'));",
        "console.log(fs.readdirSync('/proc/self/fd').join(), fs.openSync('/etc/hostname'), Object.keys(globalThis).sort().join());",
        "console.log(process.stdin.constructor.name, process.stdout.isTTY, typeof Error.prepareStackTrace, Error.stackTraceLimit);",
      ].join("\n"),
    ),
    "CommonJS modules resolved from /sandbox (files and node_modules)": js("console.log(require('./lib/a'), require('pkg'), require.resolve('pkg'))", {
      files: { "lib/a.js": "module.exports = 'a:' + require.main.filename;", "node_modules/pkg/index.js": "module.exports = 'pkg';" },
    }),
    "an ES module by its syntax": js(
      "import { readFileSync } from 'node:fs';\nimport * as self from './lib/m.mjs';\nconsole.log(import.meta.url, import.meta.filename, typeof require, typeof module, self.x, readFileSync('/etc/hostname').length > 0);",
      {
        files: { "lib/m.mjs": "export const x = 1;" },
      },
    ),
    'an ES module by package.json "type"': js("console.log(import.meta.url, typeof require);\nawait Promise.resolve();\nconsole.log('top-level await');", {
      files: { "package.json": '{"type": "module"}' },
    }),
    "a .mjs file (runs as the request's own command)": js("console.log(import.meta.url, process.argv)", { fileExtension: ".mjs" }),
    "stdin, environment, secrets, working directory": js(
      "const fs = require('fs');\nconsole.log(fs.readFileSync(0, 'utf8'), process.env.GREETING, process.env.API_TOKEN, process.cwd());\nconsole.log(Object.keys(process.env).sort());",
      { stdin: "from stdin", env: { GREETING: "hi" } },
    ),
    "no stdin reads as empty": js("console.log(JSON.stringify(require('fs').readFileSync(0, 'utf8')), process.stdin.constructor.name)"),
    // HOSTNAME is the container's id, which differs between the two engines' containers.
    "environment without stdin": js(
      "console.log(Object.entries(process.env).filter(([k]) => k !== 'HOSTNAME').sort().join('\\n'), 'HOSTNAME' in process.env)",
      { env: { GREETING: "hi" } },
    ),
    "an uncaught error: the stack starts at the user's file": js("function f() {\n  throw new Error('boom');\n}\nf();\n"),
    "a syntax error": js("console.log('a'\n"),
    "an unhandled rejection": js("Promise.reject(new TypeError('nope'));\nsetTimeout(() => console.log('never'), 100);"),
    "process.exit(3) and process.exitCode": js("process.on('exit', (code) => console.log('exit', code));\nconsole.log('before');\nprocess.exit(3);"),
    "process.exitCode at the end": js("process.exitCode = 4;\nsetTimeout(() => console.log('later'), 50);"),
    "a worker thread and a child node": js(
      [
        "const { Worker } = require('worker_threads');",
        "const { execFileSync } = require('child_process');",
        "console.log(execFileSync(process.execPath, [...process.execArgv, '-p', 'process.execArgv.length + \" \" + typeof require'], { encoding: 'utf8' }).trim());",
        "new Worker(\"console.log('worker', process.execArgv, Object.keys(require.cache), require('worker_threads').isMainThread)\", { eval: true });",
      ].join("\n"),
    ),
  };

  sameWarmAndCold(programs);

  test("the warm engine really started warm, and the cold one did not", async () => {
    expect((await warm.execute(js(`console.log(${CMDLINE})`))).stdout).toBe(`${WARM_CMDLINE}\n`);
    expect((await cold.execute(js(`console.log(${CMDLINE})`))).stdout).toBe("/sandbox/main.js\n");
  });
});

describe("each execution gets a fresh node", () => {
  test("nothing one execution changes in node is seen by the next (pool)", async () => {
    const first = await warm.execute(
      js(
        `globalThis.LEAK = 1;\nrequire.cache['/leak'] = require.cache[__filename];\nprocess.env.LEAK = '1';\nrequire('fs').writeFileSync('/tmp/leak', '1');\nconsole.log(${CMDLINE} + '|' + process.pid)`,
      ),
    );
    const second = await warm.execute(
      js(
        `console.log([${CMDLINE}, process.pid, 'LEAK' in globalThis, '/leak' in require.cache, 'LEAK' in process.env, require('fs').existsSync('/tmp/leak')].join('|'))`,
      ),
    );
    const [mode1, pid1] = first.stdout.trim().split("|");
    const [mode2, pid2, ...seen] = second.stdout.trim().split("|");
    expect(mode1).toBe(WARM_CMDLINE);
    expect(mode2).toBe(WARM_CMDLINE);
    expect(seen).toEqual(["false", "false", "false", "false"]);
    // Another process: a pid names one only inside its container (the pool may hand out another
    // container, whose processes number alike), so the container is part of the name.
    expect(`${second.containerId}:${pid2}`).not.toBe(`${first.containerId}:${pid1}`);
  });

  test("persistent mode: files stay, processes do not; every execution starts warm", async () => {
    const first = await persistent.execute(
      js(
        "require('fs').writeFileSync('kept.txt', 'kept');\nrequire('child_process').spawn('sleep', ['300'], { detached: true, stdio: 'ignore' }).unref();\nconsole.log('started')",
      ),
    );
    expect(first.stdout).toBe("started\n");
    // The next execution: its own node (warm), the file, and no process of the last one.
    const second = await persistent.execute(
      js(
        `const fs = require('fs');\nconst others = fs.readdirSync('/proc').filter((p) => /^\\d+$/.test(p) && +p !== process.pid && fs.readFileSync('/proc/' + p + '/status', 'utf8').split('Uid:')[1].split(/\\s+/)[1] === String(process.getuid()));\nconsole.log(${CMDLINE} + '|' + fs.readFileSync('kept.txt', 'utf8') + '|' + JSON.stringify(others))`,
      ),
    );
    expect(second.stdout).toBe(`${WARM_CMDLINE}|kept|[]\n`);
    expect(second.containerId).toBe(first.containerId);
  });

  test("a request that sets a variable node reads at start-up runs cold, with it applied", async () => {
    const result = await warm.execute(js(`console.log(${CMDLINE}, process.execArgv.length, typeof globalThis.gc)`, { env: { NODE_OPTIONS: "--expose-gc" } }));
    expect(result.stdout).toBe("/sandbox/main.js 0 function\n");
    // ...and the next one is warm again.
    expect((await warm.execute(js(`console.log(${CMDLINE})`))).stdout).toBe(`${WARM_CMDLINE}\n`);
  });

  test("a timed-out warm execution is killed like any other; the engine goes on", async () => {
    const result = await warm.execute(js("for (;;) {}", { timeoutMs: 1500 }));
    expect(result.timedOut).toBe(true);
    expect(result.exitCode).toBe(137);
    const next = await warm.execute(js(`console.log(${CMDLINE})`));
    expect(next.stdout).toBe(`${WARM_CMDLINE}\n`);
  });
});

const DENO_WARM_CMDLINE = "run --allow-all --no-prompt --preload /usr/local/lib/isol8/deno-warm-start.js /sandbox/main.mts";
const DENO_CMDLINE = "Deno.readTextFileSync('/proc/self/cmdline').split('\\0').slice(1, -1).join(' ')";
const ts = (code: string, extra: Partial<ExecutionRequest> = {}): ExecutionRequest => ({ runtime: "deno", code, ...extra });

describe("a warm start runs the program as a fresh `deno run --allow-all --no-prompt /sandbox/main.mts` would", () => {
  sameWarmAndCold({
    "Deno.args, mainModule, import.meta, process.argv, globals, open descriptors": ts(
      [
        "import process from 'node:process';",
        "console.log(Deno.args, Deno.mainModule, import.meta.main, import.meta.url, import.meta.filename, process.argv, process.execArgv);",
        // Open descriptors by what they are: pipes and files (the warm start hands over only pipes
        // and files, so a leak of its own would show here). Left out: the runtime's anon inodes
        // (epoll, eventfd) and sockets, whose count varies with its threads' timing (seen: a warm
        // deno sometimes holds two more sockets than a cold one, and not reproducibly).
        "const link = (fd: string) => { try { return Deno.readLinkSync(`/proc/self/fd/${fd}`); } catch { return 'closed'; } };",
        "const fds = [...Deno.readDirSync('/proc/self/fd')].map((e) => link(e.name)).filter((t) => t !== 'closed' && !t.startsWith('anon_inode:') && !t.startsWith('socket:'));",
        "console.log(Object.keys(globalThis).sort().join(), fds.map((t) => t.replace(/\\[\\d+\\]$/, '')).sort().join(), Deno.stdin.isTerminal());",
        "console.log((await Deno.permissions.query({ name: 'ffi' })).state, typeof (globalThis as Record<string, unknown>).libc);",
      ].join("\n"),
    ),
    "TypeScript and local modules": ts("import { twice } from './lib/m.ts';\nenum E { A = 2 }\nconst n: number = twice(E.A);\nconsole.log(n);", {
      files: { "lib/m.ts": "export const twice = (x: number): number => x * 2;" },
    }),
    "a deno.json import map (runs as the request's own command)": ts(
      "import { v } from 'lib';\nconsole.log(v, Deno.cwd(), Deno.env.get('PATH'), Deno.env.get('DENO_NODE_SHIM_ACTIVE'));",
      {
        files: { "deno.json": '{"imports": {"lib": "./lib/v.ts"}}', "lib/v.ts": "export const v = 'mapped';" },
      },
    ),
    "stdin, environment, secrets, working directory": ts(
      "const text = await new Response(Deno.stdin.readable).text();\nconsole.log(text, Deno.env.get('GREETING'), Deno.env.get('API_TOKEN'), Deno.cwd(), Deno.stdin.isTerminal());\nconsole.log(Object.entries(Deno.env.toObject()).filter(([k]) => k !== 'HOSTNAME').sort().join('\\n'));",
      { stdin: "from stdin", env: { GREETING: "hi" } },
    ),
    "no stdin reads as empty": ts("console.log(JSON.stringify(await new Response(Deno.stdin.readable).text()))"),
    "an uncaught error: the stack starts at the user's file": ts("function f(): never {\n  throw new Error('boom');\n}\nf();\n"),
    "a syntax error": ts("console.log('a'\n"),
    "an unhandled rejection": ts("Promise.reject(new TypeError('nope'));\nsetTimeout(() => console.log('never'), 100);"),
    "Deno.exit(3) and the unload event": ts("globalThis.addEventListener('unload', () => console.log('unload'));\nconsole.log('before');\nDeno.exit(3);"),
  });

  test("the warm engine really started warm, and the cold one did not", async () => {
    expect((await warm.execute(ts(`console.log(${DENO_CMDLINE})`))).stdout).toBe(`${DENO_WARM_CMDLINE}\n`);
    expect((await cold.execute(ts(`console.log(${DENO_CMDLINE})`))).stdout).toBe("run --allow-all --no-prompt /sandbox/main.mts\n");
  });
});

describe("each execution gets a fresh deno", () => {
  test("nothing one execution changes in deno is seen by the next (pool)", async () => {
    const first = await warm.execute(
      ts(
        `(globalThis as Record<string, unknown>).LEAK = 1;\nDeno.env.set('LEAK', '1');\nDeno.writeTextFileSync('/tmp/leak', '1');\nconsole.log(${DENO_CMDLINE} + '|' + Deno.pid)`,
      ),
    );
    const second = await warm.execute(
      ts(
        `const exists = (p: string) => { try { Deno.statSync(p); return true; } catch { return false; } };\nconsole.log([${DENO_CMDLINE}, Deno.pid, 'LEAK' in globalThis, Deno.env.has('LEAK'), exists('/tmp/leak')].join('|'))`,
      ),
    );
    const [mode1, pid1] = first.stdout.trim().split("|");
    const [mode2, pid2, ...seen] = second.stdout.trim().split("|");
    expect(mode1).toBe(DENO_WARM_CMDLINE);
    expect(mode2).toBe(DENO_WARM_CMDLINE);
    expect(seen).toEqual(["false", "false", "false"]);
    // Another process: a pid names one only inside its container (the pool may hand out another).
    expect(`${second.containerId}:${pid2}`).not.toBe(`${first.containerId}:${pid1}`);
  });

  test("persistent mode: files stay, processes do not; a deno.json left by the last execution makes the next exec", async () => {
    // A persistent engine runs one runtime.
    const engine = new DockerIsol8({ mode: "persistent", launcher: "executor", timeoutMs: 20_000 });
    try {
      const first = await engine.execute(
        ts(
          "Deno.writeTextFileSync('kept.txt', 'kept');\nnew Deno.Command('sleep', { args: ['300'], stdout: 'null', stderr: 'null' }).spawn().unref();\nconsole.log('started')",
        ),
      );
      expect(first.stdout).toBe("started\n");
      const others =
        "[...Deno.readDirSync('/proc')].map((e) => e.name).filter((p) => /^\\d+$/.test(p) && +p !== Deno.pid && Deno.readTextFileSync('/proc/' + p + '/status').split('Uid:')[1].split(/\\s+/)[1] === String(Deno.uid()))";
      const second = await engine.execute(
        ts(
          `Deno.writeTextFileSync('deno.json', '{}');\nconsole.log(${DENO_CMDLINE} + '|' + Deno.readTextFileSync('kept.txt') + '|' + JSON.stringify(${others}))`,
        ),
      );
      expect(second.stdout).toBe(`${DENO_WARM_CMDLINE}|kept|[]\n`);
      expect(second.containerId).toBe(first.containerId);
      // deno.json is now in /sandbox: read at start-up, so the standby execs the request's own command.
      const third = await engine.execute(ts(`console.log(${DENO_CMDLINE})`));
      expect(third.stdout).toBe("run --allow-all --no-prompt /sandbox/main.mts\n");
    } finally {
      await engine.stop();
    }
    expect(await isol8Containers(engine.id)).toEqual([]);
  });

  test("a request that sets a variable deno reads at start-up runs cold, with it applied", async () => {
    const result = await warm.execute(
      ts(`console.log(${DENO_CMDLINE}, typeof (globalThis as Record<string, unknown>).gc)`, { env: { DENO_V8_FLAGS: "--expose-gc" } }),
    );
    expect(result.stdout).toBe("run --allow-all --no-prompt /sandbox/main.mts function\n");
    // ...and the next one is warm again.
    expect((await warm.execute(ts(`console.log(${DENO_CMDLINE})`))).stdout).toBe(`${DENO_WARM_CMDLINE}\n`);
  });
});
