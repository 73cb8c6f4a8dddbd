import { spawn, type ChildProcess } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { afterEach, describe, expect, test } from "vitest";
import { kernelCellBytes, type KernelMessage } from "@isol8/kit";
import { BASH_CONTEXT_KERNEL } from "./context-kernel.js";
import { bashRuntimeDefinition } from "./index.js";

// The bash kernel on the host's bash, wired as the executor wires it: fd 3 a pipe of cells, fd 4
// a pipe of messages, fds 1 and 2 the cells' output, fd 0 /dev/null, in a process group of its
// own (SIGINT goes to the group). Its run in the bash image: test/integration/context-kernels.test.ts.

type Done = Extract<KernelMessage, { type: "done" }>;

class Kernel {
  readonly child: ChildProcess;
  readonly messages: KernelMessage[] = [];
  stdout = "";
  stderr = "";
  private cell = 0;
  private partial = "";
  private cellStart = 0;
  readonly exited: Promise<number | null>;

  constructor(env: Record<string, string> = {}) {
    this.child = spawn("bash", ["--norc", "--noprofile", "-c", BASH_CONTEXT_KERNEL, "bash"], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ["ignore", "pipe", "pipe", "pipe", "pipe"],
      detached: true,
    });
    this.child.stdout!.setEncoding("utf8").on("data", (text: string) => (this.stdout += text));
    this.child.stderr!.setEncoding("utf8").on("data", (text: string) => (this.stderr += text));
    (this.child.stdio[4] as Readable).setEncoding("utf8").on("data", (text: string) => {
      const lines = (this.partial + text).split("\n");
      this.partial = lines.pop()!;
      for (const line of lines) this.messages.push(JSON.parse(line) as KernelMessage);
    });
    this.exited = new Promise((resolve) => this.child.on("exit", (code) => resolve(code)));
  }

  async ready(): Promise<void> {
    await expect.poll(() => this.messages.some((m) => m.type === "ready"), { timeout: 20_000, interval: 20 }).toBe(true);
  }

  send(code: string): number {
    this.cell += 1;
    this.cellStart = this.stdout.length;
    (this.child.stdio[3] as Writable).write(kernelCellBytes(this.cell, code));
    return this.cell;
  }

  async finish(cell: number): Promise<{ done: Done; stdout: string }> {
    const isDone = (m: KernelMessage): m is Done => m.type === "done" && m.cell === cell;
    await expect.poll(() => this.messages.some(isDone), { timeout: 20_000, interval: 10 }).toBe(true);
    return { done: this.messages.find(isDone)!, stdout: this.stdout.slice(this.cellStart) };
  }

  run(code: string): Promise<{ done: Done; stdout: string }> {
    return this.finish(this.send(code));
  }

  interrupt(): void {
    process.kill(-this.child.pid!, "SIGINT");
  }

  async close(): Promise<void> {
    (this.child.stdio[3] as Writable).end();
    await this.exited;
  }
}

const open: Kernel[] = [];
async function start(env?: Record<string, string>): Promise<Kernel> {
  const kernel = new Kernel(env);
  open.push(kernel);
  await kernel.ready();
  return kernel;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((kernel) => kernel.close()));
});

describe("bash context kernel", { timeout: 60_000 }, () => {
  test("the runtime registers it: bash without start-up files, interruptible", () => {
    expect(bashRuntimeDefinition.context).toEqual({ command: ["bash", "--norc", "--noprofile", "-c", BASH_CONTEXT_KERNEL, "bash"], interruptible: true });
  });

  test("variables, functions, options and the cwd persist; exitCode is the cell's status", async () => {
    const kernel = await start();
    expect((await kernel.run("n=3\ntwice() { echo $((2 * $1)); }\nshopt -s nullglob\ncd /")).done).toEqual({ type: "done", cell: 1, exitCode: 0 });
    expect((await kernel.run('twice "$n"; pwd; shopt -q nullglob && echo nullglob')).stdout).toBe("6\n/\nnullglob\n");
    expect((await kernel.run("false")).done.exitCode).toBe(1);
    expect((await kernel.run("(exit 3)")).done.exitCode).toBe(3);
  });

  test("cells are read by bytes in a UTF-8 locale; a cell without a trailing newline or empty", async () => {
    const kernel = await start({ LC_ALL: "C.UTF-8" });
    expect((await kernel.run('w="né✓"; echo "${#w}"')).stdout).toBe("3\n");
    expect((await kernel.run("echo 'ünïcødé ✓ 日本'")).stdout).toBe("ünïcødé ✓ 日本\n");
    expect((await kernel.run("")).done.exitCode).toBe(0);
    expect((await kernel.run("echo last")).stdout).toBe("last\n");
  });

  test("SIGINT returns from the cell with 130 and an Interrupt error, also from nested functions; none between cells", async () => {
    const kernel = await start();
    await kernel.run("kept=yes\ninner() { while :; do :; done; echo inner-after; }\nouter() { inner; echo outer-after; }");
    kernel.interrupt();
    expect((await kernel.run('echo "$kept"')).stdout).toBe("yes\n");
    const busy = kernel.send("echo busy; outer; echo cell-after");
    await expect.poll(() => kernel.stdout).toContain("busy");
    kernel.interrupt();
    const interrupted = await kernel.finish(busy);
    expect(interrupted.done).toEqual({
      type: "done",
      cell: 3,
      exitCode: 130,
      error: { name: "Interrupt", value: "the cell was interrupted (SIGINT)", traceback: [] },
    });
    expect(interrupted.stdout).toBe("busy\n");
    // The unwinding is gone after the cell: functions return normally again.
    expect((await kernel.run('f() { return 0; }; f; echo "after f: $kept"')).stdout).toBe("after f: yes\n");
  });

  test("exit ends the kernel with the cell's status", async () => {
    const kernel = await start();
    kernel.send("exit 9");
    expect(await kernel.exited).toBe(9);
  });
});
