import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { buildImages, runtimeImageTag } from "@isol8/core";
import { DockerIsol8, defaultPlugins } from "isol8";
import { cliPids, expectNoContainersOfProcesses, isol8Cli, isol8Containers } from "../../../test/helpers.js";
import { pythonDataRuntime } from "../src/index.js";

// The engine a user gets from the README's config: the default plugins plus python-data. The
// executor launcher is forced (the warm start needs it), whatever ISOL8_LAUNCHER says.
const engine = new DockerIsol8({ launcher: "executor", poolSize: 1, timeoutMs: 60_000 }, { plugins: defaultPlugins(pythonDataRuntime()) });

const PNG_SIGNATURE = "89504e470d0a1a0a";

/** A PNG's signature, then its first chunk (IHDR: length 13, type, width, height, big-endian). */
function pngHeader(base64: string): { signature: string; chunk: string; width: number; height: number } {
  const bytes = Buffer.from(base64, "base64");
  return {
    signature: bytes.subarray(0, 8).toString("hex"),
    chunk: bytes.subarray(12, 16).toString("latin1"),
    width: bytes.readUInt32BE(16),
    height: bytes.readUInt32BE(20),
  };
}

/** The warm start shows in the program's own command line (`python3 -c <warm-start program>`). */
const CMDLINE = "open('/proc/self/cmdline', 'rb').read().split(b'\\0')[1].decode()";

beforeAll(async () => {
  // What `isol8 setup` does for this config's python-data: the one image build of this file
  // (minutes the first time; later runs find it up to date). The default runtimes' images are
  // checked by the global setup.
  const definition = engine.kit.runtimes.get("python-data");
  const reports = await buildImages(engine.docker, [definition], {
    onProgress: (event) => event.kind !== "log" && console.log(`[${event.target}] ${event.message}`),
  });
  expect(reports).toHaveLength(1);
  expect(reports[0]!.image).toBe(runtimeImageTag(definition));
  expect(["built", "up-to-date"]).toContain(reports[0]!.status);
  await engine.start({ prewarm: { runtimes: ["python-data"] } });
}, 1_800_000);

afterAll(async () => {
  await engine.stop();
  expect(await isol8Containers(engine.id)).toEqual([]);
});

test("numpy computes, pandas prints a DataFrame, and matplotlib imports, with nothing on stderr", async () => {
  const result = await engine.execute({
    runtime: "python-data",
    code: [
      "import numpy as np, pandas as pd, matplotlib",
      'matplotlib.use("Agg")',
      "a = np.arange(1, 7).reshape(2, 3)",
      "print(a.sum(), a @ np.array([1, 0, -1]), np.linalg.det(np.array([[2.0, 1.0], [1.0, 3.0]])).round(6))",
      'df = pd.DataFrame({"x": [1, 2, 3], "y": [0.5, 1.5, 2.5]})',
      'df["z"] = df.x * df.y',
      "print(df.to_string())",
      "print(matplotlib.get_backend())",
    ].join("\n"),
  });
  expect(result.stderr).toBe("");
  expect(result.exitCode).toBe(0);
  const lines = result.stdout.split("\n");
  expect(lines[0]).toBe("21 [-2 -2] 5.0");
  expect(lines.slice(1, 5)).toEqual(["   x    y    z", "0  1  0.5  0.5", "1  2  1.5  3.0", "2  3  2.5  7.5"]);
  expect(lines.slice(5)).toEqual(["agg", ""]);
});

test("pyplot draws without a display, with python's matplotlib backend, and a saved PNG is figsize × dpi pixels", async () => {
  // python's environment names isol8's headless backend; python-data inherits it.
  const backend = engine.kit.runtimes.get("python").env?.MPLBACKEND;
  expect(backend).toMatch(/\S/);
  const result = await engine.execute({
    runtime: "python-data",
    code: [
      // No matplotlib.use(): the runtime's environment picks the backend.
      "import matplotlib",
      "print(matplotlib.get_backend())",
      "import matplotlib.pyplot as plt, numpy as np",
      "fig, ax = plt.subplots(figsize=(5, 2.5), dpi=80)",
      "x = np.linspace(0, 2 * np.pi, 50)",
      "ax.plot(x, np.sin(x))",
      'fig.savefig("/sandbox/plot.png")',
      "plt.close(fig)",
    ].join("\n"),
    outputPaths: ["/sandbox/plot.png"],
  });
  expect(result.stderr).toBe("");
  expect(result.exitCode).toBe(0);
  expect(result.stdout).toBe(`${backend}\n`);
  expect(Object.keys(result.files ?? {})).toEqual(["/sandbox/plot.png"]);
  const png = pngHeader(result.files!["/sandbox/plot.png"]!);
  expect(png.signature).toBe(PNG_SIGNATURE);
  expect(png.chunk).toBe("IHDR");
  expect(png.width).toBe(5 * 80);
  expect(png.height).toBe(2.5 * 80);
});

test("figures come back as image/png outputs in order, each figsize × dpi, and a DataFrame's display() as text/html with a <table", async () => {
  const result = await engine.execute({
    runtime: "python-data",
    code: [
      "import matplotlib.pyplot as plt, pandas as pd",
      "plt.figure(figsize=(4, 3), dpi=50)",
      "plt.plot([1, 2, 3])",
      "plt.figure(figsize=(2, 5), dpi=40)",
      "plt.plot([3, 2, 1])",
      "plt.show()",
      'display(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}))',
    ].join("\n"),
  });
  expect(result.stderr).toBe("");
  expect(result.exitCode).toBe(0);
  const outputs = result.outputs ?? [];
  expect(outputs.map((output) => output.type)).toEqual(["image/png", "image/png", "text/html", "text/plain"]);
  const [first, second, html, text] = outputs;
  expect(pngHeader(first!.data)).toEqual({ signature: PNG_SIGNATURE, chunk: "IHDR", width: 4 * 50, height: 3 * 50 });
  expect(pngHeader(second!.data)).toEqual({ signature: PNG_SIGNATURE, chunk: "IHDR", width: 2 * 40, height: 5 * 40 });
  expect(html!.data).toContain("<table");
  expect(text!.data).toBe("   a  b\n0  1  x\n1  2  y");
});

test("the plain python runtime's image has no numpy (ModuleNotFoundError) while python-data's has it", async () => {
  const code = "import numpy\nprint(numpy.__name__)";
  const python = await engine.execute({ runtime: "python", code });
  expect(python.exitCode).toBe(1);
  expect(python.stderr).toContain("ModuleNotFoundError: No module named 'numpy'");
  // The control: the same program on the same engine, in python-data.
  const data = await engine.execute({ runtime: "python-data", code });
  expect(data.stderr).toBe("");
  expect(data.exitCode).toBe(0);
  expect(data.stdout).toBe("numpy\n");
});

test("python-data keeps python's warm start, and its code file is /sandbox/main (it claims no extension)", async () => {
  const result = await engine.execute({ runtime: "python-data", code: `print(${CMDLINE})\nprint(__file__)` });
  expect(result.exitCode, result.stderr).toBe(0);
  const [argv1, file] = result.stdout.split("\n");
  // Started warm: the waiting interpreter's `python3 -c <program>` ran it (cold: `python3 /sandbox/main`).
  expect(argv1).toBe("-c");
  expect(file).toBe("/sandbox/main");
});

test("the engine lists python-data with its recipe version, no extension and installPackages, beside python's .py", async () => {
  const runtimes = await engine.runtimes();
  // python's recipe version is part of python-data's.
  const python = runtimes.find((r) => r.name === "python")!;
  expect(runtimes.find((r) => r.name === "python-data")).toMatchObject({ version: `2+python.${python.version}`, extensions: [], packages: true });
  expect(runtimes.find((r) => r.name === "python")).toMatchObject({ extensions: [".py"] });
  expect(runtimes.filter((r) => r.extensions.includes(".py")).map((r) => r.name)).toEqual(["python"]);
});

test("the image stays lean: fonttools' scipy-or-munkres dependency is met by munkres, so no scipy, pythran or C/C++ compiler", async () => {
  const result = await engine.execute({
    runtime: "python-data",
    code: [
      "import importlib.util, shutil",
      "import fontTools, munkres",
      "print(munkres.__name__)",
      'print([m for m in ("scipy", "pythran") if importlib.util.find_spec(m)])',
      'print([c for c in ("gcc", "g++", "cc", "c++") if shutil.which(c)])',
    ].join("\n"),
  });
  expect(result.stderr).toBe("");
  expect(result.exitCode).toBe(0);
  const [munkres, modules, compilers] = result.stdout.split("\n");
  expect(munkres).toBe("munkres");
  expect(modules).toBe("[]");
  expect(compilers).toBe("[]");
});

describe("a python-data context (cells that keep state)", () => {
  // A persistent engine: contexts live in its one sandbox.
  const notebook = new DockerIsol8({ mode: "persistent", launcher: "executor", timeoutMs: 60_000 }, { plugins: defaultPlugins(pythonDataRuntime()) });
  let id: string;
  const cell = (code: string) => notebook.execute({ runtime: "python-data", code, context: id });

  beforeAll(async () => {
    await notebook.start();
    id = (await notebook.createContext({ runtime: "python-data" })).id;
  }, 120_000);
  afterAll(async () => {
    await notebook.stop();
    expect(await isol8Containers(notebook.id)).toEqual([]);
  });

  test("a matplotlib line plot left open by a cell comes back as image/png whose IHDR is figsize × dpi, without savefig or show", async () => {
    expect((await cell("import matplotlib.pyplot as plt, numpy as np")).exitCode).toBe(0);
    const result = await cell("fig = plt.figure(figsize=(5, 2.5), dpi=80)\nx = np.linspace(0, 6.28, 50)\nplt.plot(x, np.sin(x));");
    expect(result.exitCode, result.stderr).toBe(0);
    const images = (result.outputs ?? []).filter((output) => output.type === "image/png");
    expect(images).toHaveLength(1);
    expect(pngHeader(images[0]!.data)).toEqual({ signature: PNG_SIGNATURE, chunk: "IHDR", width: 5 * 80, height: 2.5 * 80 });
  });

  test("a DataFrame as a cell's last expression gives text/html with a <table and its text/plain", async () => {
    expect((await cell('import pandas as pd\ndf = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})')).exitCode).toBe(0);
    const result = await cell("df");
    expect(result.exitCode, result.stderr).toBe(0);
    const forms = (result.outputs ?? []).filter((output) => output.result);
    expect(forms.map((output) => output.type)).toEqual(["text/html", "text/plain"]);
    expect(forms[0]!.data).toContain("<table");
    expect(forms[1]!.data).toBe("   a  b\n0  1  x\n1  2  y");
  });

  test("two figures in one cell give two images, in the order they were made", async () => {
    const result = await cell("plt.figure(figsize=(4, 3), dpi=50)\nplt.plot([1, 2, 3])\nplt.figure(figsize=(2, 5), dpi=40)\nplt.plot([3, 2, 1]);");
    expect(result.exitCode, result.stderr).toBe(0);
    const images = (result.outputs ?? []).filter((output) => output.type === "image/png");
    expect(images.map((image) => pngHeader(image.data))).toEqual([
      { signature: PNG_SIGNATURE, chunk: "IHDR", width: 4 * 50, height: 3 * 50 },
      { signature: PNG_SIGNATURE, chunk: "IHDR", width: 2 * 40, height: 5 * 40 },
    ]);
  });
});

describe("the CLI, with the README's config", () => {
  // The image is the one this file's beforeAll built: `isol8 setup` here would find it up to date.
  const pluginDir = fileURLToPath(new URL("..", import.meta.url));
  let dir: string;

  beforeAll(() => {
    // Inside the package, so the config's imports ("isol8", the plugin's source) resolve as they would in a project.
    dir = mkdtempSync(join(pluginDir, ".cli-test-"));
    writeFileSync(
      join(dir, "isol8.config.ts"),
      [
        'import { defaultPlugins, defineConfig } from "isol8";',
        `import { pythonDataRuntime } from ${JSON.stringify(join(pluginDir, "src", "index.ts"))};`,
        "export default defineConfig({ plugins: defaultPlugins(pythonDataRuntime()) });",
        "",
      ].join("\n"),
    );
    writeFileSync(join(dir, "analysis.py"), 'import numpy as np\nprint("numpy", np.arange(4).sum())\n');
  });

  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await expectNoContainersOfProcesses(cliPids);
  });

  test("`isol8 run FILE.py` still picks python (no numpy there); `-r python-data` runs the same file with numpy", async () => {
    const python = await isol8Cli(["run", "analysis.py"], { cwd: dir });
    expect(python.stderr).toContain("ModuleNotFoundError: No module named 'numpy'");
    expect(python.code).toBe(1);
    const data = await isol8Cli(["run", "-r", "python-data", "analysis.py"], { cwd: dir });
    expect(data.stderr).toBe("");
    expect(data.stdout).toBe("numpy 6\n");
    expect(data.code).toBe(0);
  });
});
