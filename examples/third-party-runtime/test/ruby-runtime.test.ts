import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, test } from "vitest";
import { buildImages, createEngine, InvalidOptionsError, type DockerIsol8 } from "@isol8/core";
import { loadConfig } from "@isol8/core/config";
import { rubyRuntime } from "../src/ruby-runtime.js";

const root = fileURLToPath(new URL("..", import.meta.url));
let engine: DockerIsol8;

beforeAll(async () => {
  // The example's own isol8.config.ts, loaded the way the CLI loads one.
  const config = await loadConfig({ cwd: root });
  expect(config.filepath).toBe(`${root}isol8.config.ts`);
  engine = createEngine(config);
  // What `isol8 setup` does for this config: build the ruby image (once; later runs find it up to date).
  const [report] = await buildImages(engine.docker, [engine.kit.runtimes.get("ruby")], {
    onProgress: (e) => e.kind !== "log" && console.log(`[${e.target}] ${e.message}`),
  });
  expect(["built", "up-to-date"]).toContain(report!.status);
}, 900_000);

afterAll(async () => {
  await engine?.stop();
});

test("ruby code runs in the sandbox, as the sandbox user", async () => {
  const result = await engine.execute({
    runtime: "ruby",
    code: 'require "etc"\nputs "ruby #{RUBY_VERSION.split(".").first}: #{(1..6).reduce(:*)}"\nputs Process.uid, File.stat("/sandbox").uid, Etc.getlogin || Etc.getpwuid.name',
  });
  expect(result.exitCode).toBe(0);
  // The sandbox's own uid (one per container, from isol8's range), owner of /sandbox, named sandbox.
  const [version, uid, owner, name] = result.stdout.split("\n");
  expect(version).toMatch(/^ruby \d: 720$/);
  expect(Number(uid)).toBeGreaterThanOrEqual(1_000_000_000);
  expect(owner).toBe(uid);
  expect(name).toBe("sandbox");
});

test("the runtime's own options are validated when the factory is called, naming the plugin", () => {
  expect(() => rubyRuntime({ extraPackages: ["; rm -rf /"] })).toThrow(InvalidOptionsError);
  expect(() => rubyRuntime({ extraPackages: ["; rm -rf /"] })).toThrow(/example:runtime-ruby.*extraPackages\[0\]: expected a Debian package name/);
});

test("other runtimes are not there: the error lists the registered ones", async () => {
  await expect(engine.execute({ runtime: "python", code: "print(1)" })).rejects.toThrow(/Registered runtimes: ruby/);
});
