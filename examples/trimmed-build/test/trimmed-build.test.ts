import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { beforeAll, expect, test } from "vitest";

const run = promisify(execFile);
const root = fileURLToPath(new URL("..", import.meta.url));
let bundle: string;
let inputs: string[];

beforeAll(async () => {
  const { stdout } = await run(process.execPath, ["scripts/bundle.mjs"], { cwd: root });
  inputs = JSON.parse(stdout).inputs;
  bundle = await readFile(`${root}/dist/main.mjs`, "utf8");
}, 60_000);

test("the bundle carries the core and the python runtime, and no other plugin", () => {
  expect(inputs.some((f) => f.includes("plugins/runtime-python/"))).toBe(true);
  expect(inputs.some((f) => f.includes("packages/core/"))).toBe(true);
  const otherPlugins = inputs.filter((f) => f.includes("plugins/") && !f.includes("plugins/runtime-python/"));
  expect(otherPlugins).toEqual([]);
  expect(bundle).toContain("isol8:runtime-python");
  for (const name of ["isol8:runtime-node", "isol8:runtime-bun", "isol8:runtime-deno", "isol8:runtime-bash", "isol8:pool-", "isol8:seccomp", "isol8:audit-"]) {
    expect(bundle).not.toContain(name);
  }
  // No config loader either: the config is bundled, not searched for.
  expect(inputs.some((f) => f.includes("cosmiconfig"))).toBe(false);
});

test("the bundled app runs python code in a real container", async () => {
  const { stdout } = await run(process.execPath, ["dist/main.mjs", "print('trimmed', 6 * 7)"], { cwd: root });
  expect(stdout).toBe("trimmed 42\n");
});
