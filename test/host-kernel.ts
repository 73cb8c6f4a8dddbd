import { spawn, type ChildProcess } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { afterEach, expect } from "vitest";
import { kernelCellBytes, type KernelMessage } from "@isol8/kit";

// A context kernel on the host, wired as the executor wires it (@isol8/kit's contexts.ts): fd 3 a
// pipe of cells, fd 4 a pipe of messages, fds 1 and 2 the cells' output, fd 0 /dev/null, in a
// process group of its own (SIGINT goes to the group). The runtime plugins' unit tests drive their
// kernels through it; test/integration/context-kernels.test.ts runs them in their images.

export type Display = Extract<KernelMessage, { type: "display" }>;
export type Done = Extract<KernelMessage, { type: "done" }>;

/** One cell as the kernel answered it. */
export interface KernelCell {
  displays: Display[];
  done: Done;
  /** What the cell wrote on stdout. */
  stdout: string;
}

export class HostKernel {
  readonly child: ChildProcess;
  readonly messages: KernelMessage[] = [];
  stdout = "";
  stderr = "";
  private cell = 0;
  private partial = "";
  private cellStart = 0;
  readonly exited: Promise<number | null>;

  constructor(argv: readonly string[], options: { cwd?: string; env: Record<string, string | undefined> }) {
    this.child = spawn(argv[0]!, argv.slice(1), { cwd: options.cwd, env: options.env, stdio: ["ignore", "pipe", "pipe", "pipe", "pipe"], detached: true });
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

  /** Sends the next cell; `finish` waits for its `done`. */
  send(code: string): number {
    this.cell += 1;
    this.cellStart = this.stdout.length;
    (this.child.stdio[3] as Writable).write(kernelCellBytes(this.cell, code));
    return this.cell;
  }

  async finish(cell: number): Promise<KernelCell> {
    const isDone = (m: KernelMessage): m is Done => m.type === "done" && m.cell === cell;
    await expect.poll(() => this.messages.some(isDone), { timeout: 20_000, interval: 10 }).toBe(true);
    return {
      displays: this.messages.filter((m): m is Display => m.type === "display" && m.cell === cell),
      done: this.messages.find(isDone)!,
      stdout: this.stdout.slice(this.cellStart),
    };
  }

  run(code: string): Promise<KernelCell> {
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

/** A starter of ready kernels made by `make`; every kernel it started is closed after each test. */
export function hostKernels<A extends unknown[]>(make: (...args: A) => HostKernel): (...args: A) => Promise<HostKernel> {
  const open: HostKernel[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((kernel) => kernel.close()));
  });
  return async (...args: A) => {
    const kernel = make(...args);
    open.push(kernel);
    await kernel.ready();
    return kernel;
  };
}
