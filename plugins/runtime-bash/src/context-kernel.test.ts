import { describe, expect, test } from "vitest";
import { HostKernel, hostKernels } from "../../../test/host-kernel.js";
import { BASH_CONTEXT_KERNEL } from "./context-kernel.js";
import { bashRuntimeDefinition } from "./index.js";

// The bash kernel on the host's bash, wired as the executor wires it: fd 3 a pipe of cells, fd 4
// a pipe of messages, fds 1 and 2 the cells' output, fd 0 /dev/null, in a process group of its
// own (SIGINT goes to the group). Its run in the bash image: test/integration/context-kernels.test.ts.

const start = hostKernels(
  (env: Record<string, string> = {}) =>
    new HostKernel(["bash", "--norc", "--noprofile", "-c", BASH_CONTEXT_KERNEL, "bash"], { env: { PATH: process.env.PATH, ...env } }),
);

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
