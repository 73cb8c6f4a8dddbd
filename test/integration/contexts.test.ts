import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ContextNotFoundError, InvalidRequestError, NotSupportedError, type ExecutionResult, type StreamEvent } from "@isol8/core";
import { DockerIsol8 } from "isol8";
import { isol8Containers } from "../helpers.js";

// Interpreter contexts (issue 13): a kernel per context inside a persistent sandbox, cells that
// keep state, notebook semantics (a last expression's value, structured errors, interrupts),
// against the real engine. The executor launcher is forced: contexts need it, whatever
// ISOL8_LAUNCHER says (the exec launcher's refusal is tested below).

const TIMEOUT = 60_000;
const persistent = (extra: Record<string, unknown> = {}) => new DockerIsol8({ mode: "persistent", launcher: "executor", timeoutMs: 20_000, ...extra } as never);
const python = persistent();
const node = persistent();
const bash = persistent();
const engines = [python, node, bash];

beforeAll(async () => {
  await Promise.all(engines.map((engine) => engine.start()));
}, 120_000);
afterAll(async () => {
  await Promise.all(engines.map((engine) => engine.stop()));
  for (const engine of engines) expect(await isol8Containers(engine.id)).toEqual([]);
}, 120_000);

/** The text/plain form of a cell's value (result: true), or undefined when it has none. */
function valueOf(result: ExecutionResult): string | undefined {
  return result.outputs?.find((output) => output.result && output.type === "text/plain")?.data;
}

describe("python contexts", () => {
  let id: string;
  const cell = (code: string, extra: { timeoutMs?: number } = {}) => python.execute({ runtime: "python", code, context: id, ...extra });

  beforeAll(async () => {
    const info = await python.createContext({ runtime: "python" });
    id = info.id;
    expect(info).toMatchObject({ runtime: "python", cwd: "/sandbox", cells: 0, restarts: 0 });
  }, TIMEOUT);

  test(
    "x = 41 then x + 1 returns 42 as the value's text/plain; a statement has no value",
    async () => {
      const first = await cell("x = 41");
      expect(first.exitCode, first.stderr).toBe(0);
      expect(first.outputs).toEqual([]);
      const second = await cell("x + 1");
      expect(second.exitCode, second.stderr).toBe(0);
      expect(valueOf(second)).toBe("42");
      expect(second.error).toBeUndefined();
    },
    TIMEOUT,
  );

  test(
    "an import made in one cell is used two cells later, and print output streams before the exit event",
    async () => {
      expect((await cell("import json as j")).exitCode).toBe(0);
      expect((await cell("y = 2")).exitCode).toBe(0);
      const events: StreamEvent[] = [];
      for await (const event of python.executeStream({ runtime: "python", code: 'print(j.dumps({"y": y}))', context: id })) events.push(event);
      // print() may reach the pipe as one write or two (the text, then the newline): one event or two.
      expect(events.at(-1)?.type).toBe("exit");
      const output = events.slice(0, -1);
      expect(output.length).toBeGreaterThan(0);
      expect(output.map((e) => e.type)).toEqual(output.map(() => "stdout"));
      expect(output.map((e) => e.data).join("")).toBe('{"y": 2}\n');
    },
    TIMEOUT,
  );

  test(
    "a thread started in one cell is still alive in the next",
    async () => {
      const start = await cell("import threading, time\nstop = threading.Event()\nworker = threading.Thread(target=stop.wait, daemon=True)\nworker.start()");
      expect(start.exitCode, start.stderr).toBe(0);
      const alive = await cell("worker.is_alive()");
      expect(valueOf(alive)).toBe("True");
      await cell("stop.set(); worker.join()");
    },
    TIMEOUT,
  );

  test(
    "an exception is a structured error (name, value, traceback) and leaves the context's variables intact",
    async () => {
      const failed = await cell("x = 41\n1 / 0");
      expect(failed.exitCode).toBe(1);
      expect(failed.error?.name).toBe("ZeroDivisionError");
      expect(failed.error?.value).toBe("division by zero");
      expect(failed.error?.traceback.join("\n")).toContain("ZeroDivisionError: division by zero");
      expect(failed.contextRestarted).toBeUndefined();
      expect(valueOf(await cell("x"))).toBe("41");
    },
    TIMEOUT,
  );

  test(
    "a busy cell past its 1 s limit is interrupted (KeyboardInterrupt), and x still exists",
    async () => {
      const busy = await cell("while True: pass", { timeoutMs: 1000 });
      expect(busy.timedOut).toBe(true);
      expect(busy.error?.name).toBe("KeyboardInterrupt");
      expect(busy.contextRestarted).toBeUndefined();
      expect(busy.stderr).toContain("it was interrupted; the context keeps its state");
      expect(valueOf(await cell("x"))).toBe("41");
    },
    TIMEOUT,
  );

  test(
    "a cell that ignores the interrupt gets its context restarted, reported, and x is gone after it",
    async () => {
      const stubborn = await cell("import time\nwhile True:\n    try:\n        time.sleep(0.05)\n    except KeyboardInterrupt:\n        pass", {
        timeoutMs: 1000,
      });
      expect(stubborn.timedOut).toBe(true);
      expect(stubborn.contextRestarted).toBe(true);
      expect(stubborn.stderr).toContain("its context was restarted");
      const after = await cell("x");
      expect(after.error?.name).toBe("NameError");
      const [info] = (await python.listContexts()).filter((c) => c.id === id);
      expect(info?.restarts).toBe(1);
      await cell("x = 41");
    },
    TIMEOUT,
  );

  test(
    "a cell that ends its interpreter (os._exit) is reported, the next cell starts fresh, and another context of the sandbox is unaffected",
    async () => {
      const other = await python.createContext({ runtime: "python" });
      expect((await python.execute({ runtime: "python", code: "kept = 'yes'", context: other.id })).exitCode).toBe(0);
      const ended = await cell("import os\nos._exit(3)");
      expect(ended.contextRestarted).toBe(true);
      expect(ended.exitCode).toBe(3);
      expect(ended.stderr).toContain("exited with status 3");
      expect((await cell("x")).error?.name).toBe("NameError");
      expect(valueOf(await python.execute({ runtime: "python", code: "kept", context: other.id }))).toBe("'yes'");
      await python.deleteContext(other.id);
      await cell("x = 41");
    },
    TIMEOUT,
  );

  test(
    "two contexts of one sandbox share the filesystem, not variables",
    async () => {
      const other = await python.createContext({ runtime: "python" });
      await cell("open('/sandbox/shared.txt', 'w').write('from the first')\nsecret = 1");
      const seen = await python.execute({ runtime: "python", code: "open('/sandbox/shared.txt').read()", context: other.id });
      expect(valueOf(seen)).toBe("'from the first'");
      const hidden = await python.execute({ runtime: "python", code: "secret", context: other.id });
      expect(hidden.error?.name).toBe("NameError");
      await python.deleteContext(other.id);
    },
    TIMEOUT,
  );

  test(
    "a plain execution in the same sandbox leaves the context alive, and its own background process is still killed when it ends",
    async () => {
      await cell("import os\nkernel_pid = os.getpid()");
      const run = await python.execute({ runtime: "python", code: "import subprocess\nsubprocess.Popen(['sleep', '300'])\nprint('started')" });
      expect(run.stdout).toBe("started\n");
      // Positive control: the run's background sleep was killed at the run's end.
      const sleeping = await python.execute({
        runtime: "python",
        code: "import os\nprint(sum(1 for p in os.listdir('/proc') if p.isdigit() and open(f'/proc/{p}/cmdline','rb').read().startswith(b'sleep')))",
      });
      expect(sleeping.stdout).toBe("0\n");
      // The context's kernel survived the same kill.
      const same = await cell("os.getpid() == kernel_pid");
      expect(valueOf(same)).toBe("True");
    },
    TIMEOUT,
  );

  test(
    "restartContext keeps the id and drops the state; deleteContext ends the kernel and its id is then unknown",
    async () => {
      const restarted = await python.restartContext(id);
      expect(restarted.id).toBe(id);
      expect((await cell("x")).error?.name).toBe("NameError");
      const doomed = await python.createContext({ runtime: "python" });
      await python.execute({ runtime: "python", code: "import os\nopen('/sandbox/doomed.pid','w').write(str(os.getpid()))", context: doomed.id });
      await python.deleteContext(doomed.id);
      expect((await python.listContexts()).map((c) => c.id)).not.toContain(doomed.id);
      const gone = await python.execute({
        runtime: "python",
        code: "import os\npid = open('/sandbox/doomed.pid').read()\nprint(os.path.exists(f'/proc/{pid}'))",
      });
      expect(gone.stdout).toBe("False\n");
      await expect(python.execute({ runtime: "python", code: "1", context: doomed.id })).rejects.toBeInstanceOf(ContextNotFoundError);
    },
    TIMEOUT,
  );
});

describe("node contexts", () => {
  let id: string;
  const cell = (code: string) => node.execute({ runtime: "node", code, context: id });
  beforeAll(async () => {
    id = (await node.createContext({ runtime: "node" })).id;
  }, TIMEOUT);

  test(
    "const a = 1 then a + 1 returns 2",
    async () => {
      expect((await cell("const a = 1")).exitCode).toBe(0);
      const sum = await cell("a + 1");
      expect(sum.exitCode, sum.stderr).toBe(0);
      expect(valueOf(sum)).toBe("2");
    },
    TIMEOUT,
  );

  test(
    "top-level await works and its value is the cell's",
    async () => {
      const waited = await cell("await new Promise((resolve) => setTimeout(() => resolve(7), 10))");
      expect(waited.exitCode, waited.stderr).toBe(0);
      expect(valueOf(waited)).toBe("7");
    },
    TIMEOUT,
  );

  test(
    "let redeclared in a later cell does not fail, and require works",
    async () => {
      expect((await cell("let b = 1")).exitCode).toBe(0);
      const again = await cell("let b = 2; b");
      expect(again.error).toBeUndefined();
      expect(valueOf(again)).toBe("2");
      const required = await cell("require('node:path').join('a', 'b')");
      expect(valueOf(required)).toBe("'a/b'");
    },
    TIMEOUT,
  );

  test(
    "import() works in a cell, and process.exit ends the interpreter: reported, the next cell starts fresh",
    async () => {
      const imported = await cell("(await import('node:os')).platform()");
      expect(imported.error).toBeUndefined();
      expect(valueOf(imported)).toBe("'linux'");
      const ended = await cell("process.exit(2)");
      expect(ended.contextRestarted).toBe(true);
      expect(ended.exitCode).toBe(2);
      expect((await cell("a")).error?.name).toBe("ReferenceError");
      expect((await cell("const a = 1")).exitCode).toBe(0);
    },
    TIMEOUT,
  );

  test(
    "a thrown error is a structured error and the context survives it",
    async () => {
      const failed = await cell("throw new TypeError('bad thing')");
      expect(failed.error).toMatchObject({ name: "TypeError", value: "bad thing" });
      expect(failed.exitCode).toBe(1);
      expect(valueOf(await cell("a"))).toBe("1");
    },
    TIMEOUT,
  );
});

describe("bash contexts", () => {
  test(
    "a variable, a function and the working directory set in one cell are there in the next; a cell's status is its exit code",
    async () => {
      const { id } = await bash.createContext({ runtime: "bash" });
      const cell = (code: string) => bash.execute({ runtime: "bash", code, context: id });
      const define = await cell('greeting=hello\ngreet() { echo "$greeting, $1"; }\nmkdir -p /sandbox/sub && cd /sandbox/sub');
      expect(define.exitCode, define.stderr).toBe(0);
      const use = await cell("greet world; pwd");
      expect(use.stdout).toBe("hello, world\n/sandbox/sub\n");
      expect((await cell("false")).exitCode).toBe(1);
    },
    TIMEOUT,
  );
});

describe("what contexts refuse", () => {
  test(
    "an unknown context id is a ContextNotFoundError naming it",
    async () => {
      await python.execute({ runtime: "python", code: "print(1)" }); // the sandbox exists
      const error = await python.execute({ runtime: "python", code: "1", context: "ctx_nope" }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ContextNotFoundError);
      expect((error as Error).message).toContain('"ctx_nope"');
    },
    TIMEOUT,
  );

  test(
    "a context of another runtime than the sandbox's, and a cell whose runtime differs from its context's, are refused naming both",
    async () => {
      const wrong = await python.createContext({ runtime: "node" }).catch((e: unknown) => e);
      expect(wrong).toBeInstanceOf(InvalidRequestError);
      expect((wrong as Error).message).toContain('runs "python"; got "node"');
      const { id } = await python.createContext({ runtime: "python" });
      const mismatch = await python.execute({ runtime: "node", code: "1", context: id }).catch((e: unknown) => e);
      expect(mismatch).toBeInstanceOf(InvalidRequestError);
      await python.deleteContext(id);
    },
    TIMEOUT,
  );

  test(
    "fields a cell cannot take are refused naming the field",
    async () => {
      const error = await python.execute({ runtime: "python", code: "1", context: "ctx_x", env: { A: "1" } }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidRequestError);
      expect((error as Error).message).toContain("env is not available with context");
    },
    TIMEOUT,
  );

  test(
    "an ephemeral engine refuses contexts, saying a persistent engine or a session is needed; its executions run as before",
    async () => {
      const ephemeral = new DockerIsol8({ launcher: "executor", poolSize: { clean: 0, dirty: 1 } });
      try {
        const created = await ephemeral.createContext({ runtime: "python" }).catch((e: unknown) => e);
        expect(created).toBeInstanceOf(NotSupportedError);
        expect((created as Error).message).toContain('mode: "persistent"');
        const cell = await ephemeral.execute({ runtime: "python", code: "1", context: "ctx_x" }).catch((e: unknown) => e);
        expect(cell).toBeInstanceOf(NotSupportedError);
        expect((await ephemeral.execute({ runtime: "python", code: "print(1)" })).stdout).toBe("1\n");
      } finally {
        await ephemeral.stop();
      }
    },
    TIMEOUT,
  );

  test(
    "the exec launcher refuses contexts (they need the executor)",
    async () => {
      const viaExec = persistent({ launcher: "exec" });
      try {
        const error = await viaExec.createContext({ runtime: "python" }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(NotSupportedError);
        expect((error as Error).message).toContain("in-container executor");
      } finally {
        await viaExec.stop();
      }
    },
    TIMEOUT,
  );

  test(
    "a runtime without a kernel is refused naming the runtimes that have one",
    async () => {
      const deno = persistent();
      try {
        const error = await deno.createContext({ runtime: "deno" }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(NotSupportedError);
        expect((error as Error).message).toContain("runtimes with contexts: ");
        expect((error as Error).message).toContain("python");
      } finally {
        await deno.stop();
      }
    },
    TIMEOUT,
  );
});
