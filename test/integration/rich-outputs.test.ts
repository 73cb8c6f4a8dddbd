import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { ExecutionResult, RichOutput, StreamEvent } from "@isol8/core";
import { DockerIsol8 } from "isol8";
import { isol8Containers } from "../helpers.js";

// Rich outputs (result.outputs): python's display() builtin and node's display() global write
// one file per output into /tmp/.isol8-outputs; the engine reads them back after the program,
// bounded, and removes them. Each case runs on the executor with its warm start, the executor
// without it, and the exec launcher (one `docker exec` per program), whatever ISOL8_LAUNCHER says.

const TIMEOUT = 60_000;
const common = { poolStrategy: "fast", poolSize: { clean: 0, dirty: 1 }, timeoutMs: 30_000 } as const;
const engines = {
  "executor, warm start": { engine: new DockerIsol8({ ...common, launcher: "executor" }), warm: true },
  "executor, cold": { engine: new DockerIsol8({ ...common, launcher: "executor", warmStart: false }), warm: false },
  "exec launcher": { engine: new DockerIsol8({ ...common, launcher: "exec" }), warm: false },
};
const all = Object.values(engines).map(({ engine }) => engine);

beforeAll(async () => {
  await Promise.all(all.map((engine) => engine.start({ prewarm: { runtimes: ["python", "node"] } })));
}, 180_000);
afterAll(async () => {
  await Promise.all(all.map((engine) => engine.stop()));
  for (const engine of all) expect(await isol8Containers(engine.id)).toEqual([]);
}, 120_000);

/** A valid 3×2 RGB PNG, built by the program itself (no image library in the python image). */
const PYTHON_PNG = String.raw`
import zlib, struct, base64
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
rows = b"".join(b"\x00" + b"\xff\x00\x00" * 3 for _ in range(2))
PNG = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 2, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
`;

const PYTHON_DISPLAYS = `${PYTHON_PNG}
import sys
class Html:
    def _repr_html_(self): return "<table><tr><td>1</td></tr></table>"
    def __repr__(self): return "Html()"
class Data:
    def _repr_json_(self): return {"a": [1, 2], "b": None}
    def _repr_markdown_(self): return "# Title"
    def __repr__(self): return "Data()"
class Picture:
    def _repr_png_(self): return PNG
    def __repr__(self): return "Picture()"
print("before")
display(Html())
display(Data())
display(Picture())
display("<b>raw</b>", mime="text/html")
print("after")
print(open("/proc/self/cmdline").read().split("\\0")[1])
print(base64.b64encode(PNG).decode())
`;

/** Width and height from a PNG's IHDR. */
function pngSize(data: string): { signature: string; width: number; height: number } {
  const bytes = Buffer.from(data, "base64");
  return { signature: bytes.subarray(0, 8).toString("hex"), width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}
const PNG_SIGNATURE = "89504e470d0a1a0a";

describe.each(Object.entries(engines))("rich outputs (%s)", (_name, { engine, warm }) => {
  test(
    "python: display() of HTML, JSON, Markdown and a _repr_png_ object come back in order, each with text/plain, as result.outputs and display events",
    async () => {
      const events: StreamEvent[] = [];
      for await (const event of engine.executeStream({ runtime: "python", code: PYTHON_DISPLAYS })) events.push(event);
      const exit = events.at(-1);
      expect(exit?.type).toBe("exit");
      const result = (exit as { result: ExecutionResult }).result;
      expect(result.exitCode, result.stderr).toBe(0);
      const [before, after, argv1, png] = result.stdout.trim().split("\n");
      expect([before, after]).toEqual(["before", "after"]);
      // The warm start's interpreter is `python3 -c …`; a fresh one is `python3 /sandbox/main.py`.
      expect(argv1).toBe(warm ? "-c" : "/sandbox/main.py");
      expect(result.outputs).toEqual([
        { type: "text/html", data: "<table><tr><td>1</td></tr></table>" },
        { type: "text/plain", data: "Html()" },
        { type: "text/markdown", data: "# Title" },
        { type: "application/json", data: '{"a": [1, 2], "b": null}' },
        { type: "text/plain", data: "Data()" },
        { type: "image/png", data: png },
        { type: "text/plain", data: "Picture()" },
        { type: "text/html", data: "<b>raw</b>" },
      ]);
      expect(pngSize(result.outputs![5]!.data)).toEqual({ signature: PNG_SIGNATURE, width: 3, height: 2 });
      // The stream carries each output as a display event, before the exit event.
      const displayed = events.filter((event): event is Extract<StreamEvent, { type: "display" }> => event.type === "display");
      expect(displayed.map((event) => event.output)).toEqual(result.outputs);
      expect(displayed.map((event) => event.data)).toEqual(result.outputs!.map((output) => output.type));
    },
    TIMEOUT,
  );

  test(
    "node: display(value, mime?) gives HTML, JSON, a PNG and text in order",
    async () => {
      const code = [
        "const png = Buffer.from(process.env.PNG, 'base64');",
        "display('<i>node</i>', 'text/html');",
        "display({ a: [1, 2] });",
        "display(png);",
        "display('plain');",
        "display('# md', 'text/markdown');",
        "console.log(require('fs').readFileSync('/proc/self/cmdline', 'utf8').split('\\0').slice(1, -1).join(' '));",
      ].join("\n");
      const png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";
      const result = await engine.execute({ runtime: "node", code, env: { PNG: png } });
      expect(result.exitCode, result.stderr).toBe(0);
      // Node's warm start shows its preload on the command line; a fresh start does not.
      expect(result.stdout.trim()).toBe(warm ? "-r /usr/local/lib/isol8/node-warm-start.cjs /sandbox/main.js" : "/sandbox/main.js");
      expect(result.outputs).toEqual([
        { type: "text/html", data: "<i>node</i>" },
        { type: "application/json", data: '{"a":[1,2]}' },
        { type: "image/png", data: png },
        { type: "text/plain", data: "plain" },
        { type: "text/markdown", data: "# md" },
      ]);
      expect(pngSize(result.outputs![2]!.data)).toMatchObject({ signature: PNG_SIGNATURE, width: 1, height: 1 });
    },
    TIMEOUT,
  );

  test(
    "outputs do not leak into the next execution in the same (reused) container",
    async () => {
      const a = await engine.execute({ runtime: "python", code: "display('from A', mime='text/plain')" });
      expect(a.exitCode, a.stderr).toBe(0);
      expect(a.outputs).toEqual([{ type: "text/plain", data: "from A" }]);
      const b = await engine.execute({ runtime: "python", code: "import os; print(os.path.exists('/tmp/.isol8-outputs'))" });
      expect(b.exitCode, b.stderr).toBe(0);
      expect(b.containerId).toBe(a.containerId);
      expect(b.stdout).toBe("False\n");
      expect(b.outputs).toEqual([]);
    },
    TIMEOUT,
  );

  test(
    "garbage the program puts in the outputs directory is skipped with a note, and its real outputs still come back",
    async () => {
      const code = [
        "import os",
        "display('first', mime='text/plain')",
        "d = '/tmp/.isol8-outputs'",
        "open(d + '/garbage', 'w').write('x')",
        "open(d + '/*', 'w').write('x')",
        "os.symlink('/etc/passwd', d + '/00000000000000000001-1-text_plain')",
        "os.mkfifo(d + '/00000000000000000002-1-text_plain')",
        "os.mkdir(d + '/00000000000000000003-1-text_plain')",
        "open(d + '/00000000000000000004-1-text_plain', 'wb').write(b'bad utf-8: \\xff\\xfe')",
        "display('last', mime='text/plain')",
      ].join("\n");
      const result = await engine.execute({ runtime: "python", code });
      expect(result.exitCode, result.stderr).toBe(0);
      // Names sort by the clock: the planted ones (small numbers) come first.
      expect(result.outputs).toEqual([
        { type: "text/plain", data: "bad utf-8: \uFFFD\uFFFD" },
        { type: "text/plain", data: "first" },
        { type: "text/plain", data: "last" },
      ]);
      expect(result.stderr).toContain("[isol8] ignored 5 entries of /tmp/.isol8-outputs that are not a rich output");
      expect(result.stderr).toContain('"garbage" (not an output)');
      expect(result.stderr).toContain('"00000000000000000001-1-text_plain" (not a regular file)');
    },
    TIMEOUT,
  );

  test(
    "an outputs directory replaced by a file or a symbolic link leaves the engine unharmed",
    async () => {
      const asFile = await engine.execute({ runtime: "python", code: "open('/tmp/.isol8-outputs', 'w').write('x')\nprint('ran')" });
      expect(asFile.exitCode, asFile.stderr).toBe(0);
      expect(asFile.stdout).toBe("ran\n");
      expect(asFile.outputs).toEqual([]);
      const asLink = await engine.execute({ runtime: "python", code: "import os\nos.symlink('/etc', '/tmp/.isol8-outputs')\nprint('ran')" });
      expect(asLink.exitCode, asLink.stderr).toBe(0);
      expect(asLink.outputs).toEqual([]);
      expect(asLink.stderr).toContain("entries of /tmp/.isol8-outputs that are not a rich output");
      // The engine still works: the next run displays as usual.
      const next = await engine.execute({ runtime: "python", code: "display('ok', mime='text/plain')" });
      expect(next.outputs).toEqual([{ type: "text/plain", data: "ok" }]);
    },
    TIMEOUT,
  );
});

describe("rich outputs in a persistent sandbox (no wipe between executions)", () => {
  let persistent: DockerIsol8;
  beforeAll(async () => {
    persistent = new DockerIsol8({ mode: "persistent", timeoutMs: 30_000 });
    await persistent.start();
  }, 120_000);
  afterAll(async () => {
    await persistent.stop();
    expect(await isol8Containers(persistent.id)).toEqual([]);
  }, 60_000);

  test(
    "each execution gets only its own outputs: the read-back removes them, while the sandbox's files stay",
    async () => {
      const a = await persistent.execute({ runtime: "python", code: "open('/tmp/kept', 'w').write('k')\ndisplay('from A', mime='text/plain')" });
      expect(a.exitCode, a.stderr).toBe(0);
      expect(a.outputs).toEqual([{ type: "text/plain", data: "from A" }]);
      const b = await persistent.execute({ runtime: "python", code: "print(open('/tmp/kept').read())\ndisplay('from B', mime='text/plain')" });
      expect(b.exitCode, b.stderr).toBe(0);
      expect(b.containerId).toBe(a.containerId);
      // Positive control: /tmp kept A's file, so only the read-back can have removed A's output.
      expect(b.stdout).toBe("k\n");
      expect(b.outputs).toEqual([{ type: "text/plain", data: "from B" }]);
    },
    TIMEOUT,
  );
});

describe("rich output bounds", () => {
  let bounded: DockerIsol8;
  beforeAll(async () => {
    bounded = new DockerIsol8({ ...common, maxOutputFileSize: 64 * 1024, maxOutputFilesSize: 100 * 1024 });
    await bounded.start();
  }, 120_000);
  afterAll(async () => {
    await bounded.stop();
    expect(await isol8Containers(bounded.id)).toEqual([]);
  }, 60_000);

  test(
    "an output past maxOutputFileSize and one past maxOutputFilesSize are omitted (truncated, with their size and bound); those within come back",
    async () => {
      const code = [
        "display('x' * 100_000, mime='text/plain')", // past the per-output bound
        "display('a' * 40_000, mime='text/plain')",
        "display('b' * 40_000, mime='text/plain')",
        "display('c' * 40_000, mime='text/plain')", // 120 000 in total: past the total bound
        "display('small', mime='text/plain')",
      ].join("\n");
      const result = await bounded.execute({ runtime: "python", code });
      expect(result.exitCode, result.stderr).toBe(0);
      expect(result.outputs).toEqual([
        { type: "text/plain", data: "", truncated: true, omitted: "output-too-large", sizeBytes: 100_000, limitBytes: 64 * 1024 },
        { type: "text/plain", data: "a".repeat(40_000) },
        { type: "text/plain", data: "b".repeat(40_000) },
        { type: "text/plain", data: "", truncated: true, omitted: "total-too-large", sizeBytes: 40_000, limitBytes: 100 * 1024 },
        { type: "text/plain", data: "small" },
      ]);
    },
    TIMEOUT,
  );

  test(
    "past 1000 outputs the rest are marked too-many",
    async () => {
      const result = await bounded.execute({ runtime: "python", code: "for i in range(1003):\n    display(str(i), mime='text/plain')" });
      expect(result.exitCode, result.stderr).toBe(0);
      const outputs = result.outputs as RichOutput[];
      expect(outputs).toHaveLength(1003);
      expect(outputs[999]).toEqual({ type: "text/plain", data: "999" });
      expect(outputs.slice(1000)).toEqual([1000, 1001, 1002].map(() => ({ type: "text/plain", data: "", truncated: true, omitted: "too-many", sizeBytes: 0 })));
    },
    TIMEOUT,
  );
});
