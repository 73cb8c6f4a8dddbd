import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { InvalidRequestError, PackageInstallError } from "@isol8/core";
import { DockerIsol8 } from "isol8";
import type { LocalRegistry } from "../fixtures/local-registries.js";
import { startEngineWithLocalRegistries, type LocalRegistriesEngine } from "../fixtures/local-registries-engine.js";

// Registries served by this test on 127.0.0.1; the sandboxes reach them through network "host".
let started: LocalRegistriesEngine | undefined;
let npm: LocalRegistry;
let pypi: LocalRegistry;
let engine: DockerIsol8;

beforeAll(async () => {
  started = await startEngineWithLocalRegistries({
    npmPackages: {
      "is-number": {
        version: "7.0.0",
        files: { "index.js": "module.exports = (n) => typeof n === 'number' ? n - n === 0 : typeof n === 'string' && n.trim() !== '' && Number.isFinite(+n);" },
      },
    },
    pythonPackage: { name: "isol8_testpkg", version: "1.2.3", moduleSource: "def shout(s):\n    return s.upper() + '!'\n" },
    timeoutMs: 60_000,
  });
  ({ npm, pypi, engine } = started);
});

afterAll(async () => {
  await started?.stop();
});

/** Runs `code` on `runtime` with `pkg` installed before it (installPackages). */
function executeInstalling(runtime: string, pkg: string, code: string) {
  return engine.execute({ runtime, code, installPackages: [pkg] });
}

describe("installPackages", () => {
  test("node installs from the configured npm registry before the code runs", async () => {
    const result = await executeInstalling("node", "is-number", "const isNumber = require('is-number'); console.log(isNumber(5), isNumber('x'))");
    expect(result.stderr).toBe("");
    expect(result.stdout).toBe("true false\n");
    expect(npm.requests).toContain("GET /is-number");
  });

  test.each([
    ["bun installs from the configured npm registry", "bun", "import isNumber from 'is-number';\nconsole.log(isNumber(7))", "is-number@7.0.0"],
    ["deno caches npm: packages from the configured registry", "deno", "import isNumber from 'npm:is-number';\nconsole.log(isNumber(8))", "is-number"],
  ])("%s", async (_name, runtime, code, pkg) => {
    const before = npm.requests.length;
    const result = await executeInstalling(runtime, pkg, code);
    expect(result.stdout).toBe("true\n");
    expect(result.exitCode).toBe(0);
    // The metadata and the tarball came from the test's registry, during this run.
    expect(npm.requests.slice(before)).toEqual(expect.arrayContaining(["GET /is-number", "GET /is-number/-/is-number-7.0.0.tgz"]));
  });

  test("python installs from a local package index", async () => {
    const result = await executeInstalling("python", "isol8_testpkg==1.2.3", "import isol8_testpkg\nprint(isol8_testpkg.shout('hi'))");
    expect(result.stderr).toBe("");
    expect(result.stdout).toBe("HI!\n");
    expect(pypi.requests.some((r) => r.includes("isol8_testpkg"))).toBe(true);
  });

  test("a package that does not exist fails with the package manager's message", async () => {
    const error = await engine.execute({ runtime: "node", code: "1", installPackages: ["no-such-package-here"] }).catch((e) => e);
    expect(error).toBeInstanceOf(PackageInstallError);
    expect(error.message).toMatch(/no-such-package-here/);
  });

  test("bad package names are refused before anything runs", async () => {
    for (const name of ["; rm -rf /", "--registry=http://evil", "-e", "a b", "$(id)", "../x", "http://x/y.tgz"]) {
      const before = npm.requests.length;
      const error = await engine.execute({ runtime: "node", code: "1", installPackages: [name] }).catch((e) => e);
      expect(error, name).toBeInstanceOf(InvalidRequestError);
      expect(error.message).toMatch(/request\.installPackages\[0\]/);
      expect(npm.requests.length).toBe(before);
    }
    const error = await engine.execute({ runtime: "bash", code: "true", installPackages: ["jq"] }).catch((e) => e);
    expect(error.message).toMatch(/runtime "bash" has no package installer/);
  });

  test("with network none, installPackages is refused with a message that says what to do", async () => {
    const offline = new DockerIsol8();
    const error = await offline.execute({ runtime: "node", code: "1", installPackages: ["is-number"] }).catch((e) => e);
    expect(error).toBeInstanceOf(InvalidRequestError);
    expect(error.message).toMatch(/network is "none".*"filtered".*"host"/);
    await offline.stop();
  });
});
