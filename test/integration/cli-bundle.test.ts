import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, expect, test } from "vitest";
import { CLI, isol8Cli, REPO_ROOT } from "../helpers.js";

// The `isol8` command is bundled (packages/cli/tsup.config.ts): a command loads the CLI's own
// dist files, not hundreds of packages from node_modules; the Docker client's parts a local run
// never calls stay out of the bundle and load from the installed packages at their first use.
// Run from an empty directory (no config found), as the bench does.
const DIST = dirname(CLI);
let dir: string;
let preload: string;
let log: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "isol8-cli-bundle-"));
  log = join(dir, "loaded.txt");
  preload = join(dir, "record-modules.mjs");
  // Records every file an ES module import resolved to (a resolve hook, on the hooks thread) and
  // every CommonJS module in require's cache when the process exits.
  const hook = `import { appendFileSync } from "node:fs";
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  if (resolved.url.startsWith("file:")) appendFileSync(${JSON.stringify(log)}, "esm " + resolved.url + "\\n");
  return resolved;
}`;
  await writeFile(
    preload,
    `import { register, createRequire } from "node:module";
import { appendFileSync } from "node:fs";
register("data:text/javascript," + encodeURIComponent(${JSON.stringify(hook)}));
const require = createRequire(import.meta.url);
process.on("exit", () => { for (const file of Object.keys(require.cache)) appendFileSync(${JSON.stringify(log)}, "cjs " + file + "\\n"); });
`,
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** What a CLI command loaded, as recorded by the preload: [kind, path]. */
async function loaded(): Promise<string[][]> {
  const text = await readFile(log, "utf8");
  await rm(log);
  return text
    .trim()
    .split("\n")
    .map((line) => {
      const [kind, where] = [line.slice(0, 3), line.slice(4)];
      return [kind, where.startsWith("file:") ? new URL(where).pathname : where];
    });
}

test("isol8 run loads the CLI's bundled files only: no module from node_modules", async () => {
  const result = await isol8Cli(["run", "-e", "print(1)"], { cwd: dir, env: { NODE_OPTIONS: `--import=${pathToFileURL(preload).href}` } });
  expect(result.stdout).toBe("1\n");
  expect(result.code).toBe(0);
  const files = await loaded();
  // The recorder saw the CLI's entry point: it worked.
  expect(files).toContainEqual(["esm", CLI]);
  expect(files.filter(([, file]) => !file.startsWith(DIST + "/"))).toEqual([]);
});

test("the Docker client's SSH transport, left out of the bundle, loads at its first use", async () => {
  // Nothing listens on port 1 of the loopback: the SSH transport (ssh2) is loaded and tries to connect.
  const result = await isol8Cli(["run", "-e", "print(1)"], {
    cwd: dir,
    env: { DOCKER_HOST: "ssh://nobody@127.0.0.1:1", NODE_OPTIONS: `--import=${pathToFileURL(preload).href}` },
  });
  expect(result.code).toBe(125);
  expect(result.stderr).toContain("connect ECONNREFUSED 127.0.0.1:1");
  expect(result.stderr).toContain("[ISOL8_ERR_DOCKER_UNAVAILABLE]");
  const files = (await loaded()).map(([, file]) => file);
  expect(files.some((file) => /[\\/]docker-modem[\\/]lib[\\/]ssh\.js$/.test(file))).toBe(true);
  expect(files.some((file) => /[\\/]ssh2[\\/]/.test(file))).toBe(true);
});

test("the bundle ships the executor source the image builds compile, the one @isol8/core has", async () => {
  const sha = async (path: string) =>
    createHash("sha256")
      .update(await readFile(path))
      .digest("hex");
  expect(await sha(join(DIST, "executor", "isol8-executor.c"))).toBe(await sha(join(REPO_ROOT, "packages", "core", "executor", "isol8-executor.c")));
});
