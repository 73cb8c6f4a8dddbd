import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { buildDerivedImage, DockerDriver, IMAGE_LABELS, type BuildProgressEvent, type DerivedImage } from "@isol8/core";
import { bashRuntime } from "@isol8/plugin-runtime-bash";
import { bunRuntime } from "@isol8/plugin-runtime-bun";
import { nodeRuntime } from "@isol8/plugin-runtime-node";
import { pythonRuntime } from "@isol8/plugin-runtime-python";
import { DockerIsol8 } from "isol8";
import { startNpmRegistry, startPythonIndex, type LocalRegistry } from "../fixtures/local-registries.js";
import { isol8Cli } from "../helpers.js";

// Builds are slow on this machine: four in all, and the last two reuse the first ones' cached layers.
// Every image made here is tagged with this run's id and removed by tag at the end.
const run = `${process.pid}-${Date.now().toString(36)}`;
const driver = new DockerDriver();
const madeTags = new Set<string>();
let dir: string;
let pypi: LocalRegistry;
let engine: DockerIsol8;

async function imageId(tag: string): Promise<string | undefined> {
  return driver.docker
    .getImage(tag)
    .inspect()
    .then(
      (info) => info.Id,
      (error: { statusCode?: number }) => {
        if (error.statusCode === 404) return undefined;
        throw error;
      },
    );
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "isol8-custom-images-"));
  await writeFile(join(dir, "greeting.txt"), "hello from a file\n");
  // A package index on 127.0.0.1: the build reaches it with buildNetwork "host".
  pypi = await startPythonIndex("isol8_testpkg", "1.2.3", "def shout(s):\n    return s.upper() + '!'\n");
  const recipe: DerivedImage = {
    runtime: "python",
    apt: ["jq"],
    packages: ["isol8_testpkg==1.2.3"],
    files: { "/opt/isol8-test/greeting.txt": join(dir, "greeting.txt") },
    setupScript: "python3 -c 'import isol8_testpkg' && echo built-by-setup > /opt/isol8-test/marker",
    buildNetwork: "host",
  };
  // Network "none": what the code uses must come from the image, not from a registry at run time.
  engine = new DockerIsol8(
    { image: "testsci", images: { testsci: recipe }, timeoutMs: 60_000 },
    { plugins: [pythonRuntime({ indexUrl: pypi.url }), bashRuntime()] },
  );
  madeTags.add(engine.imageFor("python"));
});

afterAll(async () => {
  await engine?.stop();
  await pypi?.close();
  await rm(dir, { recursive: true, force: true });
  for (const tag of madeTags) {
    await driver.docker
      .getImage(tag)
      .remove()
      .catch((error: { statusCode?: number }) => {
        if (error.statusCode !== 404) throw error;
      });
  }
});

describe("derived images (engine option images)", () => {
  test("a derived image has a Debian package, a pip package from a local index, a file and its setup script's work; an unchanged recipe is not rebuilt", async () => {
    const tag = engine.imageFor("python");
    expect(tag).toMatch(/^isol8\/image-testsci:[0-9a-f]{12}$/);
    const events: BuildProgressEvent[] = [];
    const build = () =>
      buildDerivedImage(engine.docker, {
        name: "testsci",
        recipe: engine.options.images.testsci!,
        runtime: engine.kit.runtimes.get("python"),
        onProgress: (e) => events.push(e),
      });

    const first = await build();
    expect(first).toMatchObject({ name: "testsci", runtime: "python", image: tag, status: "built" });
    // Progress is shown as for runtime images: its Dockerfile steps, under the image's name.
    expect(events.some((e) => e.target === "testsci" && e.kind === "step" && /RUN apt-get .*jq/.test(e.message))).toBe(true);
    // The wheel came from the test's index, during the build.
    expect(pypi.requests.some((r) => r.includes("isol8_testpkg"))).toBe(true);
    const id = await imageId(tag);
    expect(id).toMatch(/^sha256:/);
    expect((await driver.imageLabels(tag))?.[IMAGE_LABELS.executor]).toBeDefined();

    const result = await engine.execute({
      runtime: "python",
      code: [
        "import subprocess, isol8_testpkg",
        "print(isol8_testpkg.shout('hi'))",
        "print(subprocess.run(['jq', '-n', '1+1'], capture_output=True, text=True, check=True).stdout.strip())",
        "print(open('/opt/isol8-test/greeting.txt').read().strip())",
        "print(open('/opt/isol8-test/marker').read().strip())",
      ].join("\n"),
    });
    expect(result.stderr).toBe("");
    expect(result.stdout).toBe("HI!\n2\nhello from a file\nbuilt-by-setup\n");
    expect(result.exitCode).toBe(0);

    // Another runtime of the same engine keeps its own image (no jq there).
    const bash = await engine.execute({ runtime: "bash", code: "command -v jq || echo no-jq" });
    expect(bash.stdout).toBe("no-jq\n");

    // Unchanged recipe: reported up to date, the same image, and the index is not asked again.
    const asked = pypi.requests.length;
    const second = await build();
    expect(second.status).toBe("up-to-date");
    expect(second.image).toBe(tag);
    expect(await imageId(tag)).toBe(id);
    expect(pypi.requests.length).toBe(asked);
  });

  test("derived node and bun images have an npm package from a local registry, found from /sandbox", async () => {
    const npm = await startNpmRegistry({ "is-number": { version: "7.0.0", files: { "index.js": "module.exports = (n) => typeof n === 'number';" } } });
    try {
      const nodeEngine = new DockerIsol8(
        { image: "testnode", images: { testnode: { runtime: "node", packages: ["is-number@7.0.0"], buildNetwork: "host" } } },
        { plugins: [nodeRuntime({ registry: npm.url })] },
      );
      const tag = nodeEngine.imageFor("node");
      madeTags.add(tag);
      const report = await buildDerivedImage(nodeEngine.docker, {
        name: "testnode",
        recipe: nodeEngine.options.images.testnode!,
        runtime: nodeEngine.kit.runtimes.get("node"),
      });
      expect(report).toMatchObject({ image: tag, status: "built" });
      expect(npm.requests).toEqual(expect.arrayContaining(["GET /is-number", "GET /is-number/-/is-number-7.0.0.tgz"]));
      const result = await nodeEngine.execute({ runtime: "node", code: "console.log(require('is-number')(5), require.resolve('is-number'))" });
      await nodeEngine.stop();
      expect(result.stderr).toBe("");
      expect(result.stdout).toBe("true /usr/local/lib/isol8-npm/node_modules/is-number/index.js\n");

      // bun, with the same registry: its own install beside bun, resolved from /sandbox too.
      const bunEngine = new DockerIsol8(
        { image: "testbun", images: { testbun: { runtime: "bun", packages: ["is-number@7.0.0"], buildNetwork: "host" } } },
        { plugins: [bunRuntime({ registry: npm.url })] },
      );
      madeTags.add(bunEngine.imageFor("bun"));
      const bunBuild = await buildDerivedImage(bunEngine.docker, {
        name: "testbun",
        recipe: bunEngine.options.images.testbun!,
        runtime: bunEngine.kit.runtimes.get("bun"),
      });
      expect(bunBuild.status).toBe("built");
      const bunResult = await bunEngine.execute({ runtime: "bun", code: "import isNumber from 'is-number';\nconsole.log(isNumber(7))" });
      await bunEngine.stop();
      expect(bunResult.stderr).toBe("");
      expect(bunResult.stdout).toBe("true\n");
    } finally {
      await npm.close();
    }
  });

  test("a changed recipe gets another tag (so isol8 setup rebuilds it)", async () => {
    const other = new DockerIsol8(
      { image: "testsci", images: { testsci: { runtime: "python", apt: ["jq", "bc"] } } },
      { plugins: [pythonRuntime(), bashRuntime()] },
    );
    const same = new DockerIsol8(
      { image: "testsci", images: { testsci: { runtime: "python", apt: ["jq", "bc"] } } },
      { plugins: [pythonRuntime(), bashRuntime()] },
    );
    expect(other.imageFor("python")).toMatch(/^isol8\/image-testsci:/);
    expect(other.imageFor("python")).not.toBe(engine.imageFor("python"));
    expect(same.imageFor("python")).toBe(other.imageFor("python"));
    // A file's content is part of the recipe: the same path with new content is another image.
    const changing = join(dir, "changing.txt");
    const tagWithFile = () =>
      new DockerIsol8({ image: "f", images: { f: { runtime: "python", files: { "/opt/f.txt": changing } } } }, { plugins: [pythonRuntime()] }).imageFor(
        "python",
      );
    await writeFile(changing, "one");
    const before = tagWithFile();
    expect(tagWithFile()).toBe(before);
    await writeFile(changing, "two");
    expect(tagWithFile()).not.toBe(before);
  });

  test("bad recipes are refused with the field named", () => {
    expect(() => new DockerIsol8({ images: { x: { runtime: "python", apt: ["jq; rm -rf /"] } } })).toThrow(
      /images\.x\.apt\.?\[0\]: expected a Debian package name/,
    );
    expect(() => new DockerIsol8({ images: { x: { runtime: "python", files: { "/sandbox/a": "/etc/hostname" } } } })).toThrow(
      /images\.x\.files\.\/sandbox\/a: expected a path outside \/sandbox/,
    );
    const badPackage = new DockerIsol8(
      { image: "x", images: { x: { runtime: "python", packages: ["--index-url=http://evil"] } } },
      { plugins: [pythonRuntime()] },
    );
    expect(() => badPackage.imageFor("python")).toThrow(/images\.x\.packages\[0\]: "--index-url=http:\/\/evil" is not a valid python package name/);
    const noInstaller = new DockerIsol8({ image: "x", images: { x: { runtime: "bash", packages: ["jq"] } } }, { plugins: [bashRuntime()] });
    expect(() => noInstaller.imageFor("bash")).toThrow(/images\.x\.packages: runtime "bash" cannot install packages into an image/);
    const unknownRuntime = new DockerIsol8({ image: "x", images: { x: { runtime: "cobol" } } }, { plugins: [bashRuntime()] });
    expect(() => unknownRuntime.imageFor("bash")).toThrow(/images\.x\.runtime: unknown runtime "cobol"; registered: bash/);
    // Positive control: the same engine without the derived image resolves bash's own image.
    expect(new DockerIsol8({}, { plugins: [bashRuntime()] }).imageFor("bash")).toMatch(/^isol8\/bash:[0-9a-f]{12}$/);
    // An image name outside `images` stays a Docker image for every runtime, as before.
    expect(new DockerIsol8({ image: "debian:bookworm-slim" }, { plugins: [bashRuntime()] }).imageFor("bash")).toBe("debian:bookworm-slim");
  });
});

describe("isol8 setup and isol8 build", () => {
  test("isol8 setup builds a config's derived image with progress, then reports it up to date; isol8 run --image runs in it", async () => {
    const name = `t-${run}`;
    const config = join(dir, "images.config.json");
    await writeFile(config, JSON.stringify({ defaults: { images: { [name]: { runtime: "bash", apt: ["jq"] } } } }));
    const first = await isol8Cli(["--config", config, "setup", "--runtime", "bash"]);
    const tag = first.stdout.match(new RegExp(`^${name}\\s+built\\s+(isol8/image-${name}:[0-9a-f]{12})`, "m"))?.[1];
    if (tag) madeTags.add(tag);
    expect(first.stderr).toMatch(new RegExp(`\\[${name}\\] Step \\d+/\\d+ : RUN apt-get`));
    expect(first.code).toBe(0);
    expect(tag).toBeDefined();
    const id = await imageId(tag!);
    expect(id).toMatch(/^sha256:/);

    const second = await isol8Cli(["--config", config, "setup", "--runtime", "bash"]);
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(new RegExp(`^${name}\\s+up-to-date\\s+${tag!.replace(/[/.]/g, "\\$&")}`, "m"));
    expect(await imageId(tag!)).toBe(id);

    const ran = await isol8Cli(["--config", config, "run", "--image", name, "-r", "bash", "-e", "jq -n 6*7"]);
    expect(ran).toMatchObject({ stdout: "42\n", code: 0 });
  });

  test("isol8 build makes a one-off image and prints its tag; a failing recipe names its step, shows its output and tags nothing", async () => {
    const good = `isol8-test-oneoff-${run}:1`;
    madeTags.add(good);
    const built = await isol8Cli(["build", "-r", "bash", "--apt", "jq", "--file", `${join(dir, "greeting.txt")}:/opt/isol8-test/greeting.txt`, "--tag", good]);
    expect(built.stderr).toMatch(/\[isol8-test-oneoff-.*\] Built /);
    expect(built).toMatchObject({ stdout: `${good}\n`, code: 0 });
    const ran = await isol8Cli(["run", "--image", good, "-r", "bash", "-e", "jq -n 2+3 && cat /opt/isol8-test/greeting.txt"]);
    expect(ran).toMatchObject({ stdout: "5\nhello from a file\n", code: 0 });

    const broken = `isol8-test-broken-${run}:1`;
    madeTags.add(broken);
    const failed = await isol8Cli(["build", "-r", "bash", "--apt", "jq", "--setup", "echo about-to-fail >&2; exit 3", "--tag", broken]);
    expect(failed.code).toBe(125);
    expect(failed.stderr).toMatch(/failed at step \d+\/\d+ \(setupScript: RUN \["bash","-e","\/usr\/lib\/isol8\/image-setup\.sh"\]\)/);
    expect(failed.stderr).toMatch(/returned a non-zero code: 3/);
    expect(failed.stderr).toMatch(/Last output:[\s\S]*about-to-fail/);
    expect(failed.stderr).toMatch(/\[ISOL8_ERR_IMAGE_BUILD\]/);
    expect(failed.stdout).toBe("");
    // Nothing under the failing recipe's tag; the good one-off tag (same path, same builder) exists.
    expect(await imageId(broken)).toBeUndefined();
    expect(await imageId(good)).toMatch(/^sha256:/);
  });

  test("isol8 build refuses bad flags before building, naming the flag", async () => {
    const cases: [string[], RegExp][] = [
      [["--apt", "jq;id"], /--apt #1: expected a Debian package name/],
      [["--pip", "requests"], /--pip: for runtime python, not "bash"/],
      [["--file", "nocolon"], /--file: expected SRC:DEST/],
      [["--file", `${join(dir, "greeting.txt")}:/tmp/x`], /--file \(DEST \/tmp\/x\): expected a path outside \/sandbox, \/tmp/],
    ];
    expect(cases).toHaveLength(4);
    for (const [flags, message] of cases) {
      const result = await isol8Cli(["build", "-r", "bash", "--tag", `isol8-test-bad-${run}`, ...flags]);
      expect(result.stderr, flags.join(" ")).toMatch(message);
      expect(result.code).toBe(125);
    }
    expect((await isol8Cli(["build", "-r", "bash", "--tag", "isol8/python:x"])).stderr).toMatch(/--tag: names under isol8\/ are isol8 setup's own/);
    expect(await imageId(`isol8-test-bad-${run}`)).toBeUndefined();
  });
});
