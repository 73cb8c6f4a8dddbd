import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import type { CellError } from "@isol8/kit";
import { HostKernel, hostKernels, type Display, type KernelCell as Cell } from "../../../test/host-kernel.js";
import { PYTHON_DISPLAY_FILES } from "./display.js";
import { PYTHON_CONTEXT_KERNEL } from "./context-kernel.js";
import { pythonRuntimeDefinition } from "./index.js";

// The python kernel on the host's python3, wired as the executor wires it: fd 3 a pipe of cells,
// fd 4 a pipe of messages, fds 1 and 2 the cells' output, fd 0 /dev/null, in a process group of
// its own (SIGINT goes to the group), with the image's display helper on PYTHONPATH. Its run in
// the python and python-data images: test/integration/context-kernels.test.ts.

const site = mkdtempSync(join(tmpdir(), "isol8-python-kernel-"));
for (const [name, content] of Object.entries(PYTHON_DISPLAY_FILES)) writeFileSync(join(site, name), content);
afterAll(() => rmSync(site, { recursive: true, force: true }));

const start = hostKernels(
  () =>
    new HostKernel(["python3", "-c", PYTHON_CONTEXT_KERNEL], {
      cwd: site,
      env: { PATH: process.env.PATH, PYTHONPATH: site, PYTHONUNBUFFERED: "1", PYTHONDONTWRITEBYTECODE: "1" },
    }),
);

const text = (d: Display) => Buffer.from(d.data, "base64").toString("utf8");
const result = (cell: Cell) => cell.displays.filter((d) => d.result).map((d) => [d.mime, text(d)]);
const errorOf = (cell: Cell): CellError => {
  expect(cell.done.error).toBeDefined();
  return cell.done.error!;
};

describe("python context kernel", { timeout: 60_000 }, () => {
  test("the runtime registers it: python3 -c with the kernel, interruptible", () => {
    expect(pythonRuntimeDefinition.context).toEqual({ command: ["python3", "-c", PYTHON_CONTEXT_KERNEL], interruptible: true });
  });

  test("the last expression's value is the result, in display()'s forms; a statement or None gives none", async () => {
    const kernel = await start();
    expect((await kernel.run("x = 41")).displays).toEqual([]);
    expect(result(await kernel.run("x + 1"))).toEqual([["text/plain", "42"]]);
    expect((await kernel.run("print('printed')\nNone")).displays).toEqual([]);
    await kernel.run(
      'class Page:\n    def _repr_html_(self): return "<p>page</p>"\n    def _repr_json_(self): return {"a": 1}\n    def __repr__(self): return "Page()"',
    );
    expect(result(await kernel.run("Page()"))).toEqual([
      ["text/html", "<p>page</p>"],
      ["application/json", '{"a": 1}'],
      ["text/plain", "Page()"],
    ]);
    // display() inside a cell: the same forms, not the result.
    const shown = await kernel.run("display(Page(), 'text')");
    expect(shown.displays.map((d) => [d.mime, text(d), d.result ?? false])).toEqual([
      ["text/html", "<p>page</p>", false],
      ["application/json", '{"a": 1}', false],
      ["text/plain", "Page()", false],
      ["text/plain", "'text'", false],
    ]);
  });

  test("top-level await runs on one event loop across cells", async () => {
    const kernel = await start();
    await kernel.run("import asyncio\nasync def later(v):\n    await asyncio.sleep(0.01)\n    return v");
    expect(result(await kernel.run("await later(5)"))).toEqual([["text/plain", "5"]]);
    expect(result(await kernel.run("r = await later(6)\nr * 7"))).toEqual([["text/plain", "42"]]);
  });

  test("an exception gives name, value and a traceback from the cell's frame with the cell's source lines; state survives", async () => {
    const kernel = await start();
    await kernel.run("kept = 'yes'");
    const error = errorOf(await kernel.run("def f(d):\n    return d['missing']\nf({})"));
    expect(error.name).toBe("KeyError");
    expect(error.value).toBe("'missing'");
    expect(error.traceback).toEqual([
      "Traceback (most recent call last):",
      '  File "<cell 2>", line 3, in <module>',
      "    f({})",
      '  File "<cell 2>", line 2, in f',
      "    return d['missing']",
      "           ~^^^^^^^^^^^",
      "KeyError: 'missing'",
    ]);
    expect(result(await kernel.run("kept"))).toEqual([["text/plain", "'yes'"]]);
    // An exception whose str() fails is still reported.
    await kernel.run("class Odd(Exception):\n    def __str__(self):\n        raise ValueError('no')");
    expect(errorOf(await kernel.run("raise Odd()"))).toMatchObject({ name: "Odd", value: "<exception str() failed>" });
    expect(result(await kernel.run("kept"))).toEqual([["text/plain", "'yes'"]]);
  });

  test("SIGINT: KeyboardInterrupt in a busy cell, none between cells; a cell's own SIGINT handler stays its", async () => {
    const kernel = await start();
    await kernel.run("kept = 1");
    kernel.interrupt();
    expect(result(await kernel.run("kept"))).toEqual([["text/plain", "1"]]);
    const busy = kernel.send("print('busy', flush=True)\nwhile True:\n    pass");
    await expect.poll(() => kernel.stdout).toContain("busy");
    kernel.interrupt();
    expect(errorOf(await kernel.finish(busy)).name).toBe("KeyboardInterrupt");
    // A cell that ignores SIGINT: the kernel leaves it so (the engine then kills the context).
    await kernel.run("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)");
    const ignoring = kernel.send("import time\nprint('ignoring', flush=True)\ntime.sleep(1.5)\n'finished'");
    await expect.poll(() => kernel.stdout).toContain("ignoring");
    kernel.interrupt();
    const finished = await kernel.finish(ignoring);
    expect(finished.done.error).toBeUndefined();
    expect(result(finished)).toEqual([["text/plain", "'finished'"]]);
  });

  test("display() from a thread sends messages whole while the main thread is interrupted", async () => {
    const kernel = await start();
    await kernel.run(
      "import threading\nstop = threading.Event()\ndef spam():\n    while not stop.is_set():\n        display('x' * 100000, mime='text/plain')\nt = threading.Thread(target=spam, daemon=True)\nt.start()",
    );
    const busy = kernel.send("print('busy', flush=True)\nwhile True:\n    display('y' * 1000, mime='text/plain')");
    await expect.poll(() => kernel.stdout).toContain("busy");
    kernel.interrupt();
    expect(errorOf(await kernel.finish(busy)).name).toBe("KeyboardInterrupt");
    await kernel.run("stop.set()\nt.join()");
    // Every message parsed (the reader would have thrown on a cut line) and the kernel still answers.
    expect(result(await kernel.run("t.is_alive()"))).toEqual([["text/plain", "False"]]);
  });
});
