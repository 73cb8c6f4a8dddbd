import type { DockerIsol8 } from "isol8";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startEngineWithLocalRegistries, type LocalRegistriesEngine } from "../../../test/fixtures/local-registries-engine.js";
import { isol8Containers } from "../../../test/helpers.js";
import { seccomp } from "../src/index.js";

// Package managers (pip, npm, bun install, deno cache) under strict, from registries this test
// serves on 127.0.0.1 (the sandboxes reach them through network "host").
let started: LocalRegistriesEngine | undefined;
let engine: DockerIsol8;

beforeAll(async () => {
  started = await startEngineWithLocalRegistries({
    npmPackages: { "is-number": { version: "7.0.0", files: { "index.js": "module.exports = (n) => typeof n === 'number' && n - n === 0;" } } },
    pythonPackage: { name: "isol8_strictpkg", version: "1.0.0", moduleSource: "def shout(s):\n    return s.upper() + '!'\n" },
    timeoutMs: 90_000,
    plugins: [seccomp()],
  });
  engine = started.engine;
});

afterAll(async () => {
  await started?.stop();
  if (engine) expect(await isol8Containers(engine.id)).toEqual([]);
});

test("strict is in force", () => {
  expect(engine.seccompMode).toBe("strict");
});

test.each([
  ["python", "import isol8_strictpkg\nprint(isol8_strictpkg.shout('ok'))", "isol8_strictpkg==1.0.0", "OK!\n"],
  ["node", "console.log(require('is-number')(5))", "is-number", "true\n"],
  ["bun", "import isNumber from 'is-number';\nconsole.log(isNumber(6))", "is-number@7.0.0", "true\n"],
  ["deno", "import isNumber from 'npm:is-number';\nconsole.log(isNumber(7))", "is-number", "true\n"],
])("%s installs a package and uses it under strict", async (runtime, code, pkg, expected) => {
  const result = await engine.execute({ runtime, code, installPackages: [pkg] });
  expect(result.stdout).toBe(expected);
  expect(result.exitCode).toBe(0);
});
