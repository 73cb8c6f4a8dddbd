import { describe, expect, it } from "vitest";
import { DockerDriver, MultiplexedStreamParser } from "../../src/docker/driver.js";
import { buildImages, type BuildProgressEvent } from "../../src/images/index.js";
import type { RuntimeDefinition } from "@isol8/kit";
import { bashRuntimeDefinition } from "../../../../plugins/runtime-bash/src/index.js";
import { bunRuntimeDefinition } from "../../../../plugins/runtime-bun/src/index.js";
import { denoRuntimeDefinition } from "../../../../plugins/runtime-deno/src/index.js";
import { nodeRuntimeDefinition } from "../../../../plugins/runtime-node/src/index.js";
import { pythonRuntimeDefinition } from "../../../../plugins/runtime-python/src/index.js";

const runtimes = [pythonRuntimeDefinition, nodeRuntimeDefinition, bunRuntimeDefinition, denoRuntimeDefinition, bashRuntimeDefinition];

// One line per runtime that must print "hello 42": it proves the interpreter runs the way
// the engine will start it (command(file), the runtime's env, read-only root, uid 1000).
const programs: Record<string, string> = {
  python: 'print("hello", 6 * 7)',
  node: 'console.log("hello", 6 * 7)',
  bun: 'const n: number = 6 * 7; console.log("hello", n)',
  deno: 'const n: number = 6 * 7; console.log("hello", n)',
  bash: "echo hello $((6 * 7))",
};

const driver = new DockerDriver();

/** Runs argv in a throwaway container hardened like the engine's; returns exit code and output. */
async function run(image: string, runtime: RuntimeDefinition, argv: string[]) {
  const container = await driver.docker.createContainer({
    Image: image,
    Cmd: argv,
    User: "1000:1000",
    Env: Object.entries(runtime.env ?? {}).map(([k, v]) => `${k}=${v}`),
    HostConfig: {
      ReadonlyRootfs: true,
      Tmpfs: { "/sandbox": "rw,exec,uid=1000,gid=1000", "/tmp": "rw,exec,mode=1777" },
      NetworkMode: "none",
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges"],
    },
  });
  try {
    await container.start();
    const { StatusCode } = await container.wait();
    const raw = (await container.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
    const out = { stdout: "", stderr: "" };
    new MultiplexedStreamParser((stream, chunk) => (out[stream] += chunk.toString())).push(raw);
    return { exitCode: StatusCode as number, ...out };
  } finally {
    await container.remove({ force: true });
  }
}

describe("runtime images", () => {
  it("builds the five images, then finds them up to date, and each runtime runs", async () => {
    const steps: BuildProgressEvent[] = [];
    const first = await buildImages(driver, runtimes, {
      onProgress: (event) => {
        steps.push(event);
        // A first build takes minutes: show where it is, as `isol8 setup` would.
        if (event.kind !== "log") console.log(`[${event.target}] ${event.message}`);
      },
    });
    expect(first.map((r) => r.runtime)).toEqual(runtimes.map((r) => r.name));
    for (const report of first) expect(["built", "up-to-date"]).toContain(report.status);
    // Build steps were reported exactly when something was built.
    expect(steps.some((e) => e.kind === "step")).toBe(first.some((r) => r.status === "built"));

    // A second call finds everything up to date and builds nothing (no build step at all).
    const secondSteps: typeof steps = [];
    const second = await buildImages(driver, runtimes, { onProgress: (event) => secondSteps.push(event) });
    expect(second.map((r) => r.status)).toEqual(runtimes.map(() => "up-to-date"));
    expect(secondSteps.filter((e) => e.kind === "step")).toEqual([]);

    for (const runtime of runtimes) {
      const image = second.find((r) => r.runtime === runtime.name)!.image;
      const version = await run(image, runtime, [runtime.command("/x")[0]!, "--version"]);
      expect(version, `${runtime.name} --version`).toMatchObject({ exitCode: 0 });
      expect(version.stdout).toMatch(/\d+\.\d+/);

      const file = `/sandbox/main${runtime.extensions[0]}`;
      // The code goes in through the environment, as a file under /sandbox, then the runtime's own argv runs it.
      const hello = await run(image, { ...runtime, env: { ...runtime.env, CODE: programs[runtime.name]! } }, [
        "bash",
        "-c",
        `printf '%s\\n' "$CODE" > ${file} && exec "$@"`,
        "bash",
        ...runtime.command(file),
      ]);
      expect(hello, `${runtime.name} runs ${file}`).toEqual({ exitCode: 0, stdout: "hello 42\n", stderr: "" });
    }
  }, 1_800_000);
});
