import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import type { CellError } from "@isol8/kit";
import { HostKernel, hostKernels, type Display, type KernelCell as Cell } from "../../../test/host-kernel.js";
import { nodeRuntimeDefinition } from "./index.js";
import { NODE_CONTEXT_KERNEL } from "./context-kernel.js";

// The node kernel on the host's node, wired as the executor wires it: fd 3 a pipe of cells, fd 4
// a pipe of messages, fds 1 and 2 the cells' output, fd 0 /dev/null, in a process group of its
// own (SIGINT goes to the group). Its run in the node image: test/integration/context-kernels.test.ts.

const work = mkdtempSync(join(tmpdir(), "isol8-node-kernel-"));
writeFileSync(join(work, "local.mjs"), "export const answer = 42;\n");
writeFileSync(join(work, "local.cjs"), "module.exports = { kind: 'cjs' };\n");
afterAll(() => rmSync(work, { recursive: true, force: true }));

const start = hostKernels(() => new HostKernel(["node", "-e", NODE_CONTEXT_KERNEL], { cwd: work, env: { PATH: process.env.PATH, NO_COLOR: "1" } }));

const text = (d: Display) => Buffer.from(d.data, "base64").toString("utf8");
const result = (cell: Cell) => cell.displays.filter((d) => d.result).map((d) => [d.mime, text(d)]);
const errorOf = (cell: Cell): CellError => {
  expect(cell.done.error).toBeDefined();
  return cell.done.error!;
};

describe("node context kernel", { timeout: 60_000 }, () => {
  test("the runtime registers it: node -e with the kernel, interruptible", () => {
    expect(nodeRuntimeDefinition.context).toEqual({ command: ["node", "-e", NODE_CONTEXT_KERNEL], interruptible: true });
  });

  test("const a = 1 then a + 1 sends text/plain 2 as the result; undefined sends none", async () => {
    const kernel = await start();
    const first = await kernel.run("const a = 1");
    expect(first.displays).toEqual([]);
    expect(first.done).toEqual({ type: "done", cell: 1 });
    expect(result(await kernel.run("a + 1"))).toEqual([["text/plain", "2"]]);
    expect(result(await kernel.run("({ b: [1, 'x'] })"))).toEqual([["text/plain", "{ b: [ 1, 'x' ] }"]]);
    expect((await kernel.run("undefined")).displays).toEqual([]);
  });

  test("let and const declared again in a later cell do not fail; top-level await works", async () => {
    const kernel = await start();
    await kernel.run("let b = 1; const c = 1");
    const again = await kernel.run("let b = 2; const c = 3; b + c");
    expect(again.done.error).toBeUndefined();
    expect(result(again)).toEqual([["text/plain", "5"]]);
    const awaited = await kernel.run("const v = await new Promise((resolve) => setTimeout(() => resolve(7), 20)); v * 6");
    expect(result(awaited)).toEqual([["text/plain", "42"]]);
    expect(result(await kernel.run("v"))).toEqual([["text/plain", "7"]]);
  });

  test("require resolves built-ins and the cwd's files; import() loads built-ins and relative ES modules", async () => {
    const kernel = await start();
    expect(result(await kernel.run("require('node:path').join('a', 'b')"))).toEqual([["text/plain", "'a/b'"]]);
    expect(result(await kernel.run("require('./local.cjs').kind"))).toEqual([["text/plain", "'cjs'"]]);
    expect(result(await kernel.run("const os = await import('node:os'); typeof os.platform"))).toEqual([["text/plain", "'function'"]]);
    expect(result(await kernel.run("(await import ('./local.mjs')).answer"))).toEqual([["text/plain", "42"]]);
    // "import(" inside strings, comments, templates and regexes is code's text, left as it is.
    const texts = await kernel.run("const s = 'import(x)'; // import(y)\nconst t = `import(${'z'})`; /import\\(/.source + s + t");
    expect(result(texts)).toEqual([["text/plain", "'import\\\\(import(x)import(z)'"]]);
  });

  test("display(value, mime?) sends outputs over fd 4 as the preload's rules say", async () => {
    const kernel = await start();
    const cell = await kernel.run("display('<b>x</b>', 'text/html'); display({ a: 1 }); display('plain'); 5");
    expect(cell.displays.map((d) => [d.mime, text(d), d.result ?? false])).toEqual([
      ["text/html", "<b>x</b>", false],
      ["application/json", '{"a":1}', false],
      ["text/plain", "plain", false],
      ["text/plain", "5", true],
    ]);
  });

  test("a thrown error ends the cell with its name, message and stack (no kernel frames); state survives", async () => {
    const kernel = await start();
    await kernel.run("const kept = 'yes'");
    const failed = await kernel.run("function boom() { throw new TypeError('bad thing'); }\nboom()");
    const error = errorOf(failed);
    expect(error).toMatchObject({ name: "TypeError", value: "bad thing" });
    expect(error.traceback[0]).toBe("TypeError: bad thing");
    expect(error.traceback[1]).toMatch(/at boom \(<cell-2>:1:\d+\)/);
    expect(error.traceback.join("\n")).not.toMatch(/node:inspector|\[eval\]/);
    expect(errorOf(await kernel.run("await Promise.reject(new RangeError('later'))")).name).toBe("RangeError");
    expect(errorOf(await kernel.run("let = ;")).name).toBe("SyntaxError");
    expect(result(await kernel.run("kept"))).toEqual([["text/plain", "'yes'"]]);
  });

  test("an uncaught exception or unhandled rejection of earlier async work is printed on stderr and the kernel stays", async () => {
    const kernel = await start();
    await kernel.run("setTimeout(() => { throw new Error('late throw'); }, 10); Promise.reject(new Error('late reject')); 1");
    await expect.poll(() => kernel.stderr).toContain("late throw");
    await expect.poll(() => kernel.stderr).toContain("late reject");
    expect(result(await kernel.run("1 + 1"))).toEqual([["text/plain", "2"]]);
  });

  test("stdout of a cell is written before its done", async () => {
    const kernel = await start();
    const cell = await kernel.run("console.log('first'); process.stdout.write('second'); 3");
    expect(cell.stdout).toBe("first\nsecond");
  });

  test("SIGINT ends an awaiting cell and a busy one (also inside a function) with an Interrupt error and keeps the state; a SIGINT between cells is ignored", async () => {
    const kernel = await start();
    await kernel.run("const kept = 1");
    kernel.interrupt();
    expect(result(await kernel.run("kept"))).toEqual([["text/plain", "1"]]);
    const waiting = kernel.send("console.log('waiting'); await new Promise(() => {})");
    await expect.poll(() => kernel.stdout).toContain("waiting");
    kernel.interrupt();
    expect(errorOf(await kernel.finish(waiting)).name).toBe("Interrupt");
    expect(result(await kernel.run("kept + 1"))).toEqual([["text/plain", "2"]]);
    for (const code of [
      "let spins = 0; console.log('busy'); while (true) spins++",
      "function spin() { for (;;) spins++; }\nconsole.log('busy'); spin()",
      "await new Promise((resolve) => setTimeout(resolve, 10)); console.log('busy'); for (;;) spins++",
    ]) {
      const before = kernel.stdout.length;
      const busy = kernel.send(code);
      await expect.poll(() => kernel.stdout.slice(before)).toContain("busy");
      kernel.interrupt();
      expect(errorOf(await kernel.finish(busy)), code).toEqual({ name: "Interrupt", value: "the cell was interrupted (SIGINT)", traceback: [] });
      expect(result(await kernel.run("kept + (spins > 0)")), code).toEqual([["text/plain", "2"]]);
    }
  });

  test("a cell's child process does not inherit fds 3 and 4; process.exit ends the kernel", async () => {
    const kernel = await start();
    const probe = await kernel.run(
      "require('child_process').execFileSync('sh', ['-c', 'for f in 1 3 4; do [ -e /proc/$$/fd/$f ] && echo \"child has fd $f\"; done; echo probed'], { encoding: 'utf8' })",
    );
    const listing = result(probe)[0]![1];
    expect(listing).toContain("child has fd 1");
    expect(listing).toContain("probed");
    expect(listing).not.toContain("child has fd 3");
    expect(listing).not.toContain("child has fd 4");
    kernel.send("process.exit(4)");
    expect(await kernel.exited).toBe(4);
  });
});
