import { describe, expect, test } from "vitest";
import type { ExecutionRequest } from "@isol8/core";
import { PYTHON_WARM_START_SOURCE } from "@isol8/plugin-runtime-python";
import { observable, warmAndColdEngines } from "../warm-engines.js";

// The end of a warm python execution (plugins/runtime-python/src/quick-exit.ts): it leaves with
// os._exit when the interpreter's teardown would do nothing visible, and lets the interpreter
// finalize otherwise. Each program below does something visible only in the teardown: the warm
// run must show it exactly as a fresh `python3 main.py` does.

const { warm, cold, starts } = warmAndColdEngines(["python"]);

const py = (code: string, extra: Partial<ExecutionRequest> = {}): ExecutionRequest => ({ runtime: "python", code, ...extra });

/** A program whose end shows something only the teardown does, and what the cold run shows of it. */
interface Ending {
  request: ExecutionRequest;
  /** Text the cold run's output (stdout then stderr) must hold: the teardown really showed something. */
  shows: string;
}

const ENDINGS: Record<string, Ending> = {
  "a global's __del__ runs at the end, after atexit": {
    request: py(
      "import atexit\nclass Loud:\n    def __del__(self):\n        print('__del__ ran')\nkept = Loud()\natexit.register(lambda: print('atexit ran'))\nprint('main done')",
    ),
    shows: "atexit ran\n__del__ ran\n",
  },
  "__del__ of a str subclass with empty __slots__": {
    request: py("class S(str):\n    __slots__ = ()\n    def __del__(self):\n        print('slots __del__', self)\nkept = S('x')"),
    shows: "slots __del__ x",
  },
  "a file left open flushes what it buffered": {
    request: py("import os\nout = os.fdopen(os.dup(1), 'w')\nout.write('buffered, never flushed by the program\\n')\nprint('main done')"),
    shows: "main done\nbuffered, never flushed by the program\n",
  },
  "an unfinished generator's finally block runs": {
    request: py("def numbers():\n    try:\n        yield 1\n        yield 2\n    finally:\n        print('generator closed')\nit = numbers()\nprint(next(it))"),
    shows: "1\ngenerator closed\n",
  },
  "a weakref callback runs when its object dies at the end": {
    request: py(
      "import builtins, weakref\nclass Thing:\n    pass\nbuiltins.thing = Thing()\nbuiltins.ref = weakref.ref(builtins.thing, lambda r: print('callback ran'))\nprint('main done')",
    ),
    shows: "main done\ncallback ran\n",
  },
  "weakref.finalize runs at the end": {
    request: py("import weakref\nclass Thing:\n    pass\nthing = Thing()\nweakref.finalize(thing, print, 'finalizer ran')\nprint('main done')"),
    shows: "main done\nfinalizer ran\n",
  },
  "a coroutine never awaited warns at the end": {
    request: py("async def work():\n    pass\npending = work()\nprint('main done')"),
    shows: "RuntimeWarning: coroutine 'work' was never awaited",
  },
  "sys.stdout replaced by a buffering writer is flushed at the end": {
    request: py(
      "import sys\nclass Buffered:\n    def __init__(self):\n        self.parts = []\n    def write(self, text):\n        self.parts.append(text)\n    def flush(self):\n        sys.__stdout__.write('flushed: ' + ''.join(self.parts))\nsys.stdout = Buffered()\nprint('kept until the end')",
    ),
    shows: "flushed: kept until the end",
  },
  "an audit hook sees the interpreter's end (and none of the check's own audited calls)": {
    request: py(
      "import sys, os\nsys.addaudithook(lambda event, args, write=os.write: write(1, (event + '\\n').encode()) if 'cpython' in event or 'gc' in event else None)\nprint('main done')",
    ),
    shows: "main done\ncpython.PyInterpreterState_Clear\n",
  },
  "a ResourceWarning for an unclosed file, with warnings enabled": {
    request: py("import warnings\nwarnings.simplefilter('always', ResourceWarning)\nleft = open('/tmp/left-open.txt', 'w')\nprint('main done')"),
    shows: "ResourceWarning: unclosed file",
  },
  "an uncaught exception keeps its frame's objects alive to the end (sys.last_value)": {
    request: py(
      "import atexit, sys\nclass Loud:\n    def __del__(self):\n        print('local __del__ ran')\natexit.register(lambda: print('atexit sees', repr(sys.last_value)))\ndef f():\n    local = Loud()\n    raise ValueError('boom')\nf()",
    ),
    shows: "atexit sees ValueError('boom')\nlocal __del__ ran\n",
  },
  "an unhandled KeyboardInterrupt: atexit and __del__ run, then the process dies by SIGINT": {
    request: py(
      "import atexit\nclass Loud:\n    def __del__(self):\n        print('__del__ ran')\nkept = Loud()\natexit.register(lambda: print('atexit ran'))\nraise KeyboardInterrupt",
    ),
    shows: "atexit ran\n__del__ ran\n",
  },
  "an unhandled KeyboardInterrupt with only atexit to run (the quick exit's own path to SIGINT)": {
    request: py("import atexit\natexit.register(lambda: print('atexit ran'))\nprint('main done')\nraise KeyboardInterrupt"),
    shows: "main done\natexit ran\n",
  },
  "a subclass of KeyboardInterrupt ends as any other error (exit 1, no SIGINT)": {
    request: py("import atexit\nclass Stop(KeyboardInterrupt):\n    pass\natexit.register(lambda: print('atexit ran'))\nraise Stop('custom')"),
    shows: "atexit ran\n",
  },
  "a daemon thread still running at the end": {
    request: py("import threading\nthreading.Thread(target=threading.Event().wait, daemon=True).start()\nprint('main done')"),
    shows: "main done",
  },
  "PYTHONINSPECT set by the program": {
    // Python runs its interactive loop only on a terminal: a pipe's stdin leaves it at that.
    request: py("import os\nos.environ['PYTHONINSPECT'] = '1'\nprint('main done')", { stdin: "print('from the interactive loop')\n" }),
    shows: "main done",
  },
  "a plain program that reads stdin and uses the common modules": {
    request: py(
      "import sys, json, re, math, random, collections, datetime, dataclasses\n@dataclasses.dataclass\nclass P:\n    x: int\ndata = json.loads(sys.stdin.read())\nprint(P(data['x']), re.sub('a+', 'b', 'caaat'), math.sqrt(16), collections.Counter('abca').most_common(1), random.Random(1).random())\nsys.exit(4)",
      { stdin: '{"x": 3}' },
    ),
    shows: "P(x=3) cbt 4.0",
  },
};

describe("what only the interpreter's teardown shows is the same warm and cold", () => {
  for (const [name, { request, shows }] of Object.entries(ENDINGS)) {
    test(name, async () => {
      starts.length = 0;
      const a = await warm.execute(request);
      const b = await cold.execute(request);
      expect(starts).toEqual(["warm", "cold"]);
      expect(b.stdout + b.stderr).toContain(shows);
      expect(observable(a)).toEqual(observable(b));
    });
  }

  test("an exception in __del__ at the end is reported as ignored, warm as cold (addresses aside)", async () => {
    const request = py("class Bad:\n    def __del__(self):\n        raise ValueError('in __del__')\nkept = Bad()\nprint('main done')");
    const [a, b] = [await warm.execute(request), await cold.execute(request)];
    const seen = (r: typeof a) => ({ stdout: r.stdout, stderr: r.stderr.replace(/ at 0x[0-9a-f]+>/g, " at 0x…>"), exitCode: r.exitCode });
    expect(b.stderr).toContain("Exception ignored in: <function Bad.__del__ at 0x");
    expect(seen(a)).toEqual(seen(b));
  });

  test("exit statuses of sys.exit(None), 300, -1, True and 2**40 are the same warm and cold", async () => {
    const statuses: Record<string, number | undefined> = {};
    for (const [kind, status] of [
      ["None", 0],
      ["300", 44],
      ["-1", 255],
      ["True", 1],
      ["2**40", undefined],
    ] as const) {
      const request = py(`import sys\nprint('exiting')\nsys.exit(${kind})`);
      const [a, b] = [await warm.execute(request), await cold.execute(request)];
      expect(observable(a), kind).toEqual(observable(b));
      if (status !== undefined) expect(b.exitCode, kind).toBe(status);
      statuses[kind] = a.exitCode;
    }
    expect(Object.keys(statuses)).toHaveLength(5);
  });
});

/**
 * The check's own verdict on a heap a scenario leaves behind, run in the image's python: the
 * warm-start program's source (from the image) loaded without starting it.
 */
async function verdict(scenario: string): Promise<string> {
  const code = [
    "import sys",
    "ns = {'__name__': 'probe'}",
    `exec(compile(open(${JSON.stringify(PYTHON_WARM_START_SOURCE)}).read(), '<string>', 'exec'), ns)`,
    "startup = ns['_isol8_startup']()",
    scenario,
    "sys.__stdout__.write(str(ns['_isol8_teardown_is_silent'](startup) and not startup['hooks']) + '\\n')",
    // Its own teardown would report what the scenario left (an unawaited coroutine warns): not the verdict's business.
    "sys.__stdout__.flush()\nimport os\nos._exit(0)",
  ].join("\n");
  const result = await cold.execute(py(code));
  expect(result.stderr).toBe("");
  return result.stdout.trim();
}

describe("the quick exit is taken only when the teardown would be silent", () => {
  test("taken: a plain program, common modules, finished generators, closed files, stdin read", async () => {
    expect(await verdict("x = [1, {'a': (2,)}]")).toBe("True");
    expect(
      await verdict(
        "import json, re, random, math, collections, functools, itertools, datetime, decimal, fractions, statistics, string, textwrap, dataclasses, typing, enum, heapq, bisect, copy, pprint, csv, hashlib, base64, struct, argparse, pathlib\nkept = [re.compile('a+'), random.Random(1), decimal.Decimal('1.1'), datetime.datetime.now(), collections.OrderedDict(a=1)]",
      ),
    ).toBe("True");
    expect(await verdict("done = (i for i in range(3))\nlist(done)\nf = open('/tmp/x', 'w')\nf.close()\nsys.stdin.read()")).toBe("True");
  });

  test("refused: __del__, an open file, a suspended generator, a weakref callback, an unawaited coroutine", async () => {
    expect(await verdict("class A:\n    def __del__(self):\n        pass\nkept = A()")).toBe("False");
    expect(await verdict("kept = open('/tmp/x', 'w')")).toBe("False");
    expect(await verdict("def g():\n    yield 1\n    yield 2\nit = g()\nnext(it)")).toBe("False");
    expect(await verdict("import weakref\nclass B:\n    pass\nb = B()\nr = weakref.ref(b, lambda r: None)")).toBe("False");
    expect(await verdict("async def c():\n    pass\nkept = c()")).toBe("False");
  });

  test("refused: a C module it does not know, changed warning filters, a replaced stdout, an audit hook", async () => {
    expect(await verdict("import socket")).toBe("False");
    expect(await verdict("import warnings\nwarnings.simplefilter('always')")).toBe("False");
    expect(await verdict("import io\nsys.stdout = io.StringIO()")).toBe("False");
    expect(await verdict("sys.addaudithook(lambda event, args: None)")).toBe("False");
  });
});
