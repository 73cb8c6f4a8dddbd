import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, test } from "vitest";
import { runtimeImageTag } from "@isol8/core";
import { kernelCellBytes, type CellError, type KernelMessage, type RuntimeDefinition } from "@isol8/kit";
import { pythonRuntimeDefinition } from "@isol8/plugin-runtime-python";
// python-data is not a dependency of the workspace root: its source, as the plugin builds it.
import { pythonDataRuntimeDefinition } from "../../plugins/runtime-python-data/src/index.js";
import { nodeRuntimeDefinition } from "@isol8/plugin-runtime-node";
import { bashRuntimeDefinition } from "@isol8/plugin-runtime-bash";

// The runtimes' context kernels (the kernel protocol of @isol8/kit contexts.ts), each run in its
// runtime's real image as the sandbox would run it: read-only root, no network, uid 1000, the
// runtime's env, fd 0 /dev/null. The harness wires the protocol through `docker run -i`: the
// container's stdin is the kernel's fd 3, and fd 4 is a copy of fd 1, so messages and the cells'
// stdout share one stream in the order the kernel wrote them (which is what "done only after the
// cell's stdout is flushed" is about). A line is a message when it is a JSON object with a type.
// Interrupts: SIGINT to the kernel's process group, as the engine sends it (`--init`: the kernel
// is not PID 1, and docker-init starts it in a process group of its own).

const TIMEOUT = 120_000;

/**
 * The runtime's image for its current recipe; while someone rebuilds the images (a changed
 * executor gives every image a new tag), the latest one built: the kernels need only the
 * interpreter and the display helper of the image, not the executor.
 */
function imageOf(runtime: RuntimeDefinition): string {
  const exact = runtimeImageTag(runtime);
  return spawnSync("docker", ["image", "inspect", exact], { stdio: "ignore" }).status === 0 ? exact : `isol8/${runtime.name}:latest`;
}

type Display = Extract<KernelMessage, { type: "display" }>;
type Done = Extract<KernelMessage, { type: "done" }>;

interface Cell {
  displays: Display[];
  done: Done;
  /** What the cell wrote on stdout (the lines that are not messages). */
  stdout: string;
}

const MESSAGE = /^\{"type":"(ready|display|done)"/;

/** One kernel in a container of its runtime's image. */
class Kernel {
  readonly name = `isol8-test-context-kernel-${randomBytes(4).toString("hex")}`;
  readonly child: ChildProcess;
  /** Everything of fd 1 and fd 4, as it came. */
  raw = "";
  stderr = "";
  readonly messages: KernelMessage[] = [];
  private stdoutLines: string[] = [];
  private partial = "";
  private cell = 0;
  private readonly exited: Promise<number | null>;

  constructor(runtime: RuntimeDefinition, contextEnv: Record<string, string> = {}) {
    const kernel = runtime.context;
    if (!kernel) throw new Error(`${runtime.name} has no context kernel`);
    const env = { ...runtime.env, ...kernel.env, ...contextEnv };
    this.child = spawn(
      "docker",
      [
        "run",
        "-i",
        "--rm",
        "--init",
        "--name",
        this.name,
        "--network",
        "none",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--user",
        "1000",
        "-w",
        "/tmp",
        ...Object.entries(env).flatMap(([key, value]) => ["-e", `${key}=${value}`]),
        imageOf(runtime),
        "bash",
        "-c",
        'exec 3<&0 </dev/null 4>&1; exec "$@"',
        "wiring",
        ...kernel.command,
      ],
      { stdio: ["pipe", "pipe", "pipe"] },
    );
    this.child.stdout!.setEncoding("utf8").on("data", (text: string) => this.take(text));
    this.child.stderr!.setEncoding("utf8").on("data", (text: string) => (this.stderr += text));
    this.exited = new Promise((resolve) => this.child.on("exit", (code) => resolve(code)));
  }

  private take(text: string): void {
    this.raw += text;
    const lines = (this.partial + text).split("\n");
    this.partial = lines.pop()!;
    for (const line of lines) {
      if (MESSAGE.test(line)) this.messages.push(JSON.parse(line) as KernelMessage);
      else this.stdoutLines.push(line);
    }
  }

  async ready(): Promise<void> {
    await expect
      .poll(() => this.messages.some((m) => m.type === "ready"), { timeout: 60_000, interval: 50, message: `no ready; stderr: ${this.stderr}` })
      .toBe(true);
  }

  /** Sends the next cell; `run` waits for its `done`. */
  send(code: string): number {
    this.cell += 1;
    this.stdoutLines = [];
    this.child.stdin!.write(kernelCellBytes(this.cell, code));
    return this.cell;
  }

  async finish(cell: number): Promise<Cell> {
    const isDone = (m: KernelMessage): m is Done => m.type === "done" && m.cell === cell;
    await expect.poll(() => this.messages.some(isDone), { timeout: 60_000, interval: 20 }).toBe(true);
    return {
      displays: this.messages.filter((m): m is Display => m.type === "display" && m.cell === cell),
      done: this.messages.find(isDone)!,
      stdout: this.stdoutLines.join("\n"),
    };
  }

  run(code: string): Promise<Cell> {
    return this.finish(this.send(code));
  }

  /** SIGINT to the kernel's process group (docker-init starts the kernel in a group of its own), as the engine sends it. */
  interrupt(): void {
    const kill = spawnSync("docker", ["exec", "--user", "1000", this.name, "bash", "-c", 'kill -s INT -- "-$(pgrep -P 1)"'], { encoding: "utf8" });
    expect(kill.status, kill.stderr).toBe(0);
  }

  async stdoutSoFar(): Promise<string> {
    return this.stdoutLines.join("\n") + this.partial;
  }

  exit(): Promise<number | null> {
    return this.exited;
  }

  async close(): Promise<void> {
    this.child.stdin!.end();
    const timer = setTimeout(() => spawnSync("docker", ["rm", "-f", this.name]), 20_000);
    await this.exited;
    clearTimeout(timer);
  }
}

const open: Kernel[] = [];
async function start(runtime: RuntimeDefinition, contextEnv?: Record<string, string>): Promise<Kernel> {
  const kernel = new Kernel(runtime, contextEnv);
  open.push(kernel);
  await kernel.ready();
  return kernel;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((kernel) => kernel.close()));
});

const text = (display: Display) => Buffer.from(display.data, "base64").toString("utf8");
const forms = (cell: Cell) => cell.displays.map((d) => [d.mime, text(d), d.result ?? false]);
const result = (cell: Cell) => cell.displays.filter((d) => d.result).map((d) => [d.mime, text(d)]);
const errorOf = (cell: Cell): CellError => {
  expect(cell.done.error).toBeDefined();
  return cell.done.error!;
};

/** Width and height from a PNG's IHDR. */
function pngSize(display: Display): { signature: string; width: number; height: number } {
  const bytes = Buffer.from(display.data, "base64");
  return { signature: bytes.subarray(0, 8).toString("hex"), width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}
const PNG_SIGNATURE = "89504e470d0a1a0a";

/** A cell that lists which of fds 3 and 4 a child process of the cell has (none expected) and proves the probe sees open fds. */
const FD_PROBE = `for f in 0 1 2 3 4; do [ -e /proc/$$/fd/$f ] && echo "child has fd $f"; done; echo probed`;

describe("python kernel (isol8/python)", () => {
  test("x = 41 then x + 1 sends text/plain '42' as the cell's result; a statement sends no result", { timeout: TIMEOUT }, async () => {
    const kernel = await start(pythonRuntimeDefinition);
    const first = await kernel.run("x = 41");
    expect(first.displays).toEqual([]);
    expect(first.done).toEqual({ type: "done", cell: 1 });
    const second = await kernel.run("x + 1");
    expect(forms(second)).toEqual([["text/plain", "42", true]]);
    expect(second.done).toEqual({ type: "done", cell: 2 });
    // None is no result, as in a notebook.
    expect((await kernel.run("None")).displays).toEqual([]);
  });

  test("an import of cell 1 is used in cell 3, and __name__ is __main__", { timeout: TIMEOUT }, async () => {
    const kernel = await start(pythonRuntimeDefinition);
    await kernel.run("import math");
    await kernel.run("y = 2");
    expect(result(await kernel.run("math.sqrt(16) + y"))).toEqual([["text/plain", "6.0"]]);
    expect(result(await kernel.run("__name__"))).toEqual([["text/plain", "'__main__'"]]);
  });

  test("an exception ends the cell with its name, value and traceback from the cell's frame; x survives", { timeout: TIMEOUT }, async () => {
    const kernel = await start(pythonRuntimeDefinition);
    await kernel.run("x = 41");
    const failed = await kernel.run("def f():\n    return 1 / 0\n\nf()");
    const error = errorOf(failed);
    expect(error.name).toBe("ZeroDivisionError");
    expect(error.value).toBe("division by zero");
    expect(error.traceback[0]).toBe("Traceback (most recent call last):");
    expect(error.traceback[1]).toBe('  File "<cell 2>", line 4, in <module>');
    expect(error.traceback).toContain("    return 1 / 0");
    expect(error.traceback.at(-1)).toBe("ZeroDivisionError: division by zero");
    expect(error.traceback.join("\n")).not.toContain("_isol8_kernel");
    expect(result(await kernel.run("x"))).toEqual([["text/plain", "41"]]);
    const syntax = errorOf(await kernel.run("x = = 1"));
    expect(syntax.name).toBe("SyntaxError");
    expect(syntax.traceback.at(-1)).toBe("SyntaxError: invalid syntax");
    expect(result(await kernel.run("x"))).toEqual([["text/plain", "41"]]);
  });

  test("SIGINT interrupts a busy cell with KeyboardInterrupt, x survives; a SIGINT between cells is ignored", { timeout: TIMEOUT }, async () => {
    const kernel = await start(pythonRuntimeDefinition);
    await kernel.run("x = 41");
    // Between cells: the kernel ignores it and runs the next cell.
    kernel.interrupt();
    expect(result(await kernel.run("x"))).toEqual([["text/plain", "41"]]);
    const cell = kernel.send('print("spinning", flush=True)\nwhile True:\n    pass');
    await expect.poll(() => kernel.stdoutSoFar(), { timeout: 60_000 }).toContain("spinning");
    kernel.interrupt();
    const interrupted = await kernel.finish(cell);
    const error = errorOf(interrupted);
    expect(error.name).toBe("KeyboardInterrupt");
    expect(error.traceback.at(-1)).toBe("KeyboardInterrupt");
    expect(result(await kernel.run("x"))).toEqual([["text/plain", "41"]]);
    // A child process of the cell gets the signal too (the engine signals the process group).
    const sleeping = kernel.send('import subprocess\nprint("sleeping", flush=True)\nsubprocess.run(["sleep", "600"])');
    await expect.poll(() => kernel.stdoutSoFar(), { timeout: 60_000 }).toContain("sleeping");
    kernel.interrupt();
    expect(errorOf(await kernel.finish(sleeping)).name).toBe("KeyboardInterrupt");
    expect(result(await kernel.run("x"))).toEqual([["text/plain", "41"]]);
  });

  test("a cell's stdout arrives before its done; stderr is the cell's fd 2", { timeout: TIMEOUT }, async () => {
    const kernel = await start(pythonRuntimeDefinition);
    const cell = await kernel.run('import sys\nprint("line")\nsys.stdout.write("no newline")\nsys.stderr.write("to stderr\\n")');
    const done = kernel.raw.indexOf('{"type":"done","cell":1');
    expect(done).toBeGreaterThan(0);
    expect(kernel.raw.slice(0, done)).toContain("line\nno newline");
    expect(cell.done.error).toBeUndefined();
    await expect.poll(() => kernel.stderr).toContain("to stderr\n");
  });

  test(
    "display(obj) sends the object's _repr_html_ then text/plain; the same object as the last expression is the cell's result",
    { timeout: TIMEOUT },
    async () => {
      const kernel = await start(pythonRuntimeDefinition);
      await kernel.run('class Html:\n    def _repr_html_(self): return "<b>bold</b>"\n    def __repr__(self): return "Html()"');
      expect(forms(await kernel.run('display(Html())\nprint("after")'))).toEqual([
        ["text/html", "<b>bold</b>", false],
        ["text/plain", "Html()", false],
      ]);
      expect(forms(await kernel.run("Html()"))).toEqual([
        ["text/html", "<b>bold</b>", true],
        ["text/plain", "Html()", true],
      ]);
      // Nothing is written to the rich-outputs directory of plain executions.
      expect(result(await kernel.run('import os\nos.path.exists("/tmp/.isol8-outputs")'))).toEqual([["text/plain", "False"]]);
    },
  );

  test("a thread started in cell 1 is alive in cell 2; input() gets EOF; a cell's child has no fd 3 or 4", { timeout: TIMEOUT }, async () => {
    const kernel = await start(pythonRuntimeDefinition);
    await kernel.run("import threading, time\nstop = threading.Event()\nworker = threading.Thread(target=stop.wait, daemon=True)\nworker.start()");
    expect(result(await kernel.run("worker.is_alive()"))).toEqual([["text/plain", "True"]]);
    expect(errorOf(await kernel.run("input()")).name).toBe("EOFError");
    const probe = await kernel.run(`import subprocess\nsubprocess.run(["sh", "-c", ${JSON.stringify(FD_PROBE)}])`);
    expect(probe.stdout).toContain("child has fd 1");
    expect(probe.stdout).toContain("probed");
    expect(probe.stdout).not.toContain("child has fd 3");
    expect(probe.stdout).not.toContain("child has fd 4");
  });

  test("sys.exit() is reported as SystemExit with its code and the kernel stays; os._exit ends the kernel", { timeout: TIMEOUT }, async () => {
    const kernel = await start(pythonRuntimeDefinition);
    await kernel.run("x = 41");
    const exited = await kernel.run("import sys\nsys.exit(3)");
    expect(errorOf(exited).name).toBe("SystemExit");
    expect(exited.done.exitCode).toBe(3);
    expect(result(await kernel.run("x"))).toEqual([["text/plain", "41"]]);
    kernel.send("import os\nos._exit(7)");
    // docker run reports the kernel's exit status (through --init).
    expect(await kernel.exit()).toBe(7);
  });
});

describe("python kernel with matplotlib and pandas (isol8/python-data)", () => {
  test("python-data has python's kernel", () => {
    expect(pythonDataRuntimeDefinition.context).toBeDefined();
    expect(pythonDataRuntimeDefinition.context).toBe(pythonRuntimeDefinition.context);
  });

  test("figures left open by a cell come back as PNG in order, each at its size × dpi; plt.show() displays at once", { timeout: TIMEOUT }, async () => {
    const kernel = await start(pythonDataRuntimeDefinition);
    const two = await kernel.run(
      "import matplotlib.pyplot as plt\nfig1 = plt.figure(figsize=(4, 3), dpi=100)\nplt.plot([1, 2, 3])\nfig2 = plt.figure(figsize=(2, 2), dpi=50)\nplt.plot([3, 2, 1])\nNone",
    );
    expect(two.done.error).toBeUndefined();
    expect(two.displays.map((d) => [d.mime, d.result ?? false])).toEqual([
      ["image/png", false],
      ["image/png", false],
    ]);
    expect(pngSize(two.displays[0]!)).toEqual({ signature: PNG_SIGNATURE, width: 400, height: 300 });
    expect(pngSize(two.displays[1]!)).toEqual({ signature: PNG_SIGNATURE, width: 100, height: 100 });
    // Shown figures are closed: the next cell sends none.
    expect((await kernel.run("1")).displays.map((d) => d.mime)).toEqual(["text/plain"]);

    await kernel.run('plt.figure(figsize=(1, 1), dpi=80)\nplt.plot([1])\nplt.show()\nprint("after show")');
    const shown = kernel.raw.indexOf('"mime":"image/png"', kernel.raw.indexOf('{"type":"done","cell":2'));
    expect(shown).toBeGreaterThan(0);
    expect(kernel.raw.indexOf("after show")).toBeGreaterThan(shown);
    // A figure as the last expression is the result, once.
    const fig = await kernel.run("f = plt.figure(figsize=(2, 1), dpi=50)\nf");
    expect(fig.displays.map((d) => [d.mime, d.result ?? false])).toEqual([["image/png", true]]);
    expect(pngSize(fig.displays[0]!)).toMatchObject({ width: 100, height: 50 });
  });

  test("a DataFrame as the last expression gives text/html with a <table and text/plain", { timeout: TIMEOUT }, async () => {
    const kernel = await start(pythonDataRuntimeDefinition);
    const frame = await kernel.run('import pandas as pd\npd.DataFrame({"a": [1, 2], "b": [3, 4]})');
    expect(frame.displays.map((d) => [d.mime, d.result])).toEqual([
      ["text/html", true],
      ["text/plain", true],
    ]);
    expect(text(frame.displays[0]!)).toContain("<table");
    expect(text(frame.displays[1]!)).toContain("a  b");
  });
});

describe("bash kernel (isol8/bash)", () => {
  test("a variable, an array, a function and the cwd of one cell are there in the next; done carries the cell's status", { timeout: TIMEOUT }, async () => {
    const kernel = await start(bashRuntimeDefinition);
    const define = await kernel.run('greeting=hello\ndeclare -A colors=([sky]=blue)\nshout() { echo "${1^^}!"; }\ncd /tmp && mkdir -p here && cd here');
    expect(define.done).toEqual({ type: "done", cell: 1, exitCode: 0 });
    const use = await kernel.run('shout "$greeting"; echo "${colors[sky]}"; pwd');
    expect(use.stdout).toBe("HELLO!\nblue\n/tmp/here");
    expect(use.done.exitCode).toBe(0);
    const failed = await kernel.run("false");
    expect(failed.done).toEqual({ type: "done", cell: 3, exitCode: 1 });
    expect((await kernel.run("(exit 42)")).done.exitCode).toBe(42);
  });

  test("the cell length counts bytes: multi-byte code, code without a trailing newline, an empty cell", { timeout: TIMEOUT }, async () => {
    // In a UTF-8 locale, where bash counts characters, not bytes (the first cell proves it does).
    const kernel = await start(bashRuntimeDefinition, { LANG: "C.UTF-8" });
    expect((await kernel.run('s="日本"; echo "${#s}"')).stdout).toBe("2");
    expect((await kernel.run('printf "%s\\n" "日本語 ✓ é"')).stdout).toBe("日本語 ✓ é");
    expect((await kernel.run("echo next")).stdout).toBe("next");
    expect((await kernel.run("")).done).toEqual({ type: "done", cell: 4, exitCode: 0 });
    expect((await kernel.run("x='a\nb'; echo \"$x\"\n")).stdout).toBe("a\nb");
  });

  test("break and continue at a cell's top level end the cell, not the kernel; xtrace of a cell does not trace the kernel", { timeout: TIMEOUT }, async () => {
    const kernel = await start(bashRuntimeDefinition);
    await kernel.run("kept=yes");
    expect((await kernel.run("echo before; break; echo not-reached")).stdout).toBe("before");
    expect((await kernel.run("echo again; continue; echo not-reached")).stdout).toBe("again");
    expect((await kernel.run('echo "$kept"')).stdout).toBe("yes");
    await kernel.run("set -x");
    await kernel.run("echo traced");
    await expect.poll(() => kernel.stderr).toContain("+ echo traced");
    expect(kernel.stderr).not.toContain("__isol8");
  });

  test(
    "SIGINT ends the running command and the cell (also inside a function) with status 130; the state survives; a SIGINT between cells is ignored",
    { timeout: TIMEOUT },
    async () => {
      const kernel = await start(bashRuntimeDefinition);
      await kernel.run("kept=yes\nnap() { sleep 600; echo after-sleep; }");
      kernel.interrupt();
      expect((await kernel.run('echo "$kept"')).stdout).toBe("yes");
      for (const [index, code] of [
        "echo spinning; while :; do :; done; echo after-loop",
        "echo spinning; nap; echo after-nap",
        "echo spinning; sleep 600; echo after-sleep",
      ].entries()) {
        const cell = kernel.send(code);
        await expect.poll(() => kernel.stdoutSoFar(), { timeout: 60_000 }).toContain("spinning");
        kernel.interrupt();
        const interrupted = await kernel.finish(cell);
        expect(interrupted.done.exitCode, code).toBe(130);
        expect(errorOf(interrupted).name).toBe("Interrupt");
        expect(interrupted.stdout, code).toBe("spinning");
        expect((await kernel.run('echo "$kept"')).stdout, `after ${index}`).toBe("yes");
      }
    },
  );

  test("a cell's commands do not inherit fds 3 and 4; exit in a cell ends the kernel with its status", { timeout: TIMEOUT }, async () => {
    const kernel = await start(bashRuntimeDefinition);
    const probe = await kernel.run(`sh -c '${FD_PROBE}'`);
    expect(probe.stdout).toContain("child has fd 1");
    expect(probe.stdout).toContain("probed");
    expect(probe.stdout).not.toContain("child has fd 3");
    expect(probe.stdout).not.toContain("child has fd 4");
    kernel.send("exit 5");
    expect(await kernel.exit()).toBe(5);
  });
});

describe("node kernel (isol8/node)", () => {
  test("const a = 1 then a + 1 → 2; let redeclared in a later cell does not fail; top-level await works", { timeout: TIMEOUT }, async () => {
    const kernel = await start(nodeRuntimeDefinition);
    expect((await kernel.run("const a = 1; let b = 1")).done).toEqual({ type: "done", cell: 1 });
    expect(result(await kernel.run("a + 1"))).toEqual([["text/plain", "2"]]);
    const again = await kernel.run("let b = 5; b");
    expect(again.done.error).toBeUndefined();
    expect(result(again)).toEqual([["text/plain", "5"]]);
    expect(result(await kernel.run("await new Promise((resolve) => setTimeout(() => resolve('later'), 20))"))).toEqual([["text/plain", "'later'"]]);
  });

  test("require('node:path') and import('node:os') work; display() sends over fd 4, not to files", { timeout: TIMEOUT }, async () => {
    const kernel = await start(nodeRuntimeDefinition);
    expect(result(await kernel.run("require('node:path').basename('/a/b.txt')"))).toEqual([["text/plain", "'b.txt'"]]);
    expect(result(await kernel.run("const os = await import('node:os'); os.platform()"))).toEqual([["text/plain", "'linux'"]]);
    expect(forms(await kernel.run("display('<i>x</i>', 'text/html')"))).toEqual([["text/html", "<i>x</i>", false]]);
    expect(result(await kernel.run("require('node:fs').existsSync('/tmp/.isol8-outputs')"))).toEqual([["text/plain", "false"]]);
  });

  test(
    "an error ends the cell with its name and message and the state survives; SIGINT ends an awaiting cell and a busy one",
    { timeout: TIMEOUT },
    async () => {
      const kernel = await start(nodeRuntimeDefinition);
      await kernel.run("const kept = 'yes'");
      const failed = await kernel.run("null.x");
      expect(errorOf(failed).name).toBe("TypeError");
      expect(errorOf(failed).traceback[0]).toMatch(/^TypeError: Cannot read properties of null/);
      expect(result(await kernel.run("kept"))).toEqual([["text/plain", "'yes'"]]);
      const waiting = kernel.send("console.log('waiting'); await new Promise((resolve) => setTimeout(resolve, 600_000))");
      await expect.poll(() => kernel.stdoutSoFar(), { timeout: 60_000 }).toContain("waiting");
      kernel.interrupt();
      expect(errorOf(await kernel.finish(waiting)).name).toBe("Interrupt");
      expect(result(await kernel.run("kept"))).toEqual([["text/plain", "'yes'"]]);
      // Busy in JavaScript: the kernel's watcher terminates the cell's code.
      const busy = kernel.send("console.log('spinning'); for (;;) {}");
      await expect.poll(() => kernel.stdoutSoFar(), { timeout: 60_000 }).toContain("spinning");
      kernel.interrupt();
      expect(errorOf(await kernel.finish(busy)).name).toBe("Interrupt");
      expect(result(await kernel.run("kept"))).toEqual([["text/plain", "'yes'"]]);
    },
  );

  test("a cell's child process has no fd 3 or 4; process.exit ends the kernel", { timeout: TIMEOUT }, async () => {
    const kernel = await start(nodeRuntimeDefinition);
    const probe = await kernel.run(`require('node:child_process').execFileSync('sh', ['-c', ${JSON.stringify(FD_PROBE)}], { encoding: 'utf8' })`);
    const listing = result(probe)[0]![1];
    expect(listing).toContain("child has fd 1");
    expect(listing).toContain("probed");
    expect(listing).not.toContain("child has fd 3");
    expect(listing).not.toContain("child has fd 4");
    kernel.send("process.exit(6)");
    expect(await kernel.exit()).toBe(6);
  });
});
