import { describe, expect, test } from "vitest";
import type { ExecutionRequest } from "@isol8/core";
import { DockerIsol8 } from "isol8";
import { PYTHON_WARM_START_CODE } from "@isol8/plugin-runtime-python";
import { observable, warmAndColdEngines } from "../warm-engines.js";

// The warm start (packages/core/executor/PROTOCOL.md, "The standby"): between executions the
// executor starts the python interpreter, which waits for the next request and runs it
// in-process. These tests force the executor (the warm start needs it), so they test it
// whatever ISOL8_LAUNCHER says.

/** The warm start shows in the program's own command line (`python3 -c <warm-start program>`). */
const CMDLINE = "open('/proc/self/cmdline', 'rb').read().split(b'\\0')[1].decode()";

const { warm, cold, persistent, sameWarmAndCold } = warmAndColdEngines(["python"]);

const py = (code: string, extra: Partial<ExecutionRequest> = {}): ExecutionRequest => ({ runtime: "python", code, ...extra });

describe("a warm start runs the program as a fresh `python3 main.py` would", () => {
  const programs: Record<string, ExecutionRequest> = {
    "argv, __main__, __file__, sys.path, module attributes, loaded modules": py(
      [
        "import sys",
        "print(sys.argv, sys.orig_argv, __name__, __file__, __package__, __spec__, __cached__, type(__loader__).__name__)",
        "print(sys.path)",
        "print(sorted(m for m in sys.modules if not m.startswith('_')))",
        "print(sys.flags.safe_path, sys.flags.dont_write_bytecode, sys.stdout.line_buffering, sys.stdin.isatty())",
      ].join("\n"),
    ),
    "stdin, environment, secrets, working directory, files": py(
      "import os, sys\nprint(sys.stdin.read(), os.environ['GREETING'], os.environ['API_TOKEN'], os.getcwd(), open('data/x.txt').read())\nprint(sorted(k for k in os.environ))",
      { stdin: "from stdin", env: { GREETING: "hi" }, files: { "data/x.txt": "file content" } },
    ),
    "no stdin reads as empty": py("import sys\nprint(repr(sys.stdin.read()))"),
    "an uncaught exception: the traceback starts at the user's file": py("def f():\n    raise ValueError('boom')\n\nf()\n"),
    "a syntax error": py("print('a'\n"),
    "sys.exit(3)": py("import sys\nprint('before')\nsys.exit(3)"),
    "SystemExit with a message": py("raise SystemExit('bye')"),
    "os._exit(7) skips atexit": py("import atexit, os\natexit.register(lambda: print('atexit'))\nos._exit(7)"),
    "atexit handlers and non-daemon threads run at the end": py(
      "import atexit, threading, time\natexit.register(lambda: print('atexit ran'))\nt = threading.Thread(target=lambda: (time.sleep(0.2), print('thread done')))\nt.start()\nprint('main done')",
    ),
    "KeyboardInterrupt ends it as SIGINT would": py("raise KeyboardInterrupt"),
    "warnings, inspect and pickle find the main module and its source": py(
      [
        "import inspect, pickle, warnings",
        "class Point:\n    pass",
        "def f():\n    return 42",
        "warnings.warn('careful')",
        "print(inspect.getsource(f).strip())",
        "print(type(pickle.loads(pickle.dumps(Point()))).__name__)",
      ].join("\n"),
    ),
    "if __name__ == '__main__' with multiprocessing": py(
      "import multiprocessing\n\ndef sq(x):\n    return x * x\n\nif __name__ == '__main__':\n    with multiprocessing.Pool(2) as pool:\n        print(pool.map(sq, range(5)))",
    ),
    "a source with a coding line": py("# -*- coding: latin-1 -*-\nprint('caf\u00e9')"),
  };

  sameWarmAndCold(programs);

  test("source the interpreter cannot decode (PEP 263) gives a fresh interpreter's error, word for word", async () => {
    // The warm program hands such a file to a fresh interpreter (nothing of it has run), so the
    // message is the tokenizer's own; three ways to be undecodable.
    const sources = [Buffer.from('x = "\xff"\n', "latin1"), Buffer.from("# coding: nosuch\nx = 1\n"), Buffer.from('# coding: ascii\nx = "\u00e9"\n')];
    for (const code of sources) {
      const a = await warm.execute({ runtime: "python", code });
      const b = await cold.execute({ runtime: "python", code });
      expect(a.exitCode).toBe(1);
      expect(a.stderr).toMatch(/SyntaxError: (Non-UTF-8 code starting with|encoding problem: )/);
      expect(observable(a)).toEqual(observable(b));
    }
  });

  test("the warm engine really started warm, and the cold one did not", async () => {
    expect((await warm.execute(py(`print(${CMDLINE})`))).stdout).toBe("-c\n");
    expect((await cold.execute(py(`print(${CMDLINE})`))).stdout).toBe("/sandbox/main.py\n");
  });

  test("a start compiles neither the display helper nor the warm-start program: the image holds both compiled", async () => {
    const standby = "open('/proc/self/cmdline', 'rb').read().split(b'\\0')[2].decode()";
    const probe = `import os, _isol8_display\nprint(os.path.isfile(_isol8_display.__cached__))\nprint(${JSON.stringify(PYTHON_WARM_START_CODE)} in ${standby}, 'marshal.loads' in ${standby})`;
    const [helperCompiled, standbyLoadsCode] = (await warm.execute(py(probe))).stdout.trim().split("\n");
    expect(helperCompiled).toBe("True");
    expect(standbyLoadsCode).toBe("True True");
  });
});

describe("each execution gets a fresh interpreter", () => {
  test("nothing one execution changes in the interpreter is seen by the next (pool)", async () => {
    const first = await warm.execute(
      py(`import builtins, sys, os\nbuiltins.LEAK = 1\nsys.modules['leak'] = sys\nos.environ['LEAK'] = '1'\nprint(${CMDLINE}, os.getpid())`),
    );
    const second = await warm.execute(
      py(`import builtins, sys, os\nprint(${CMDLINE}, os.getpid(), hasattr(builtins, 'LEAK'), 'leak' in sys.modules, 'LEAK' in os.environ)`),
    );
    const [, pid1] = first.stdout.trim().split(" ");
    const [mode, pid2, ...seen] = second.stdout.trim().split(" ");
    expect(mode).toBe("-c");
    expect(seen).toEqual(["False", "False", "False"]);
    // Another process: a pid names one only inside its container (the pool may hand out another).
    expect(`${second.containerId}:${pid2}`).not.toBe(`${first.containerId}:${pid1}`);
  });

  test("persistent mode: files stay, processes do not; every execution starts warm", async () => {
    const first = await persistent.execute(
      py("import subprocess\nopen('kept.txt', 'w').write('kept')\nsubprocess.Popen(['sleep', '300'], start_new_session=True)\nprint('started')"),
    );
    expect(first.stdout).toBe("started\n");
    // The next execution: its own interpreter (warm), the file, and no process of the last one.
    const second = await persistent.execute(
      py(
        `import os\nmine = {os.getpid()}\nothers = [p for p in os.listdir('/proc') if p.isdigit() and int(p) not in mine and open(f'/proc/{p}/status').read().split('Uid:')[1].split()[0] == str(os.getuid())]\nprint(${CMDLINE}, open('kept.txt').read(), others)`,
      ),
    );
    expect(second.stdout).toBe("-c kept []\n");
    expect(second.containerId).toBe(first.containerId);
  });

  test("a request that sets a variable the interpreter reads at start-up runs cold, with it applied", async () => {
    const result = await warm.execute(py(`import sys\nprint(${CMDLINE}, sys.flags.hash_randomization)`, { env: { PYTHONHASHSEED: "0" } }));
    expect(result.stdout).toBe("/sandbox/main.py 0\n");
    // ...and the next one is warm again.
    expect((await warm.execute(py(`print(${CMDLINE})`))).stdout).toBe("-c\n");
  });

  test("a timed-out warm execution is killed like any other; the engine goes on", async () => {
    const result = await warm.execute(py("while True:\n    pass", { timeoutMs: 1500 }));
    expect(result.timedOut).toBe(true);
    expect(result.exitCode).toBe(137);
    const next = await warm.execute(py(`print(${CMDLINE})`));
    expect(next.stdout).toBe("-c\n");
  });

  test("the resource usage of a warm execution is reported", async () => {
    const engine = new DockerIsol8({ launcher: "executor", poolSize: 1, resourceUsage: true });
    try {
      await engine.execute(py("pass"));
      const result = await engine.execute(py(`x = bytearray(50 * 1024 * 1024)\nprint(${CMDLINE})`));
      expect(result.stdout).toBe("-c\n");
      expect(result.resourceUsage!.peakMemoryBytes).toBeGreaterThan(50 * 1024 * 1024);
      expect(result.resourceUsage!.cpuTimeMs).toBeGreaterThan(0);
    } finally {
      await engine.stop();
    }
  });
});
