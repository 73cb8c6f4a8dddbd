#!/usr/bin/env node
// `pnpm release --dry-run`: everything a release does except publishing, in a scratch copy of the
// committed tree (HEAD), so no file of this checkout changes:
//   changeset version → build → pack every published package → publint and attw on each tarball →
//   npm installs the tarballs into an empty project → the CLI and the library run there.
// Nothing is published. `--keep` leaves the scratch directory for inspection. See RELEASING.md.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const args = process.argv.slice(2);
const unknown = args.filter((arg) => arg !== "--dry-run" && arg !== "--keep");
if (unknown.length > 0) fail(`unknown argument ${unknown[0]}: expected --dry-run and optionally --keep`);
if (!args.includes("--dry-run")) {
  fail("pnpm release only rehearses a release here: run `pnpm release --dry-run`. Publishing is a maintainer's step (RELEASING.md).", 2);
}
const keep = args.includes("--keep");

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const scratch = mkdtempSync(join(tmpdir(), "isol8-release-"));
const repo = join(scratch, "repo");
const tarballs = join(scratch, "tarballs");
const consumer = join(scratch, "consumer");
const started = Date.now();
let finished = false;

const children = new Set();

process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
  if (keep) console.error(`\nscratch directory kept: ${scratch}`);
  else rmSync(scratch, { recursive: true, force: true });
  if (finished) console.error(`release dry run passed in ${Math.round((Date.now() - started) / 1000)} s`);
});
process.on("SIGINT", () => process.exit(130));
process.on("SIGTERM", () => process.exit(143));

function fail(message, code = 1) {
  console.error(`release dry run: ${message}`);
  process.exit(code);
}

function step(title) {
  console.error(`\n==> ${title} (${Math.round((Date.now() - started) / 1000)} s)`);
}

/** Runs a command; its output goes to a log that is printed only when it fails. */
function run(command, commandArgs, options = {}) {
  const result = spawnSync(command, commandArgs, { cwd: repo, encoding: "utf8", maxBuffer: 64 * 1024 * 1024, ...options });
  if (result.error) fail(`${command} ${commandArgs.join(" ")}: ${result.error.message}`);
  if (result.status !== 0) {
    const output = `${result.stdout ?? ""}${result.stderr ?? ""}`.trimEnd().split("\n").slice(-60).join("\n");
    fail(`\`${command} ${commandArgs.join(" ")}\` in ${options.cwd ?? repo} exited with ${result.status ?? result.signal}:\n${output}`);
  }
  return result.stdout;
}

/** `run` without blocking, for checks that may overlap. */
function runAsync(command, commandArgs) {
  return new Promise((done) => {
    const child = spawn(command, commandArgs, { cwd: repo, stdio: ["ignore", "pipe", "pipe"] });
    children.add(child);
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    child.on("error", (error) => fail(`${command} ${commandArgs.join(" ")}: ${error.message}`));
    child.on("close", (status, signal) => {
      children.delete(child);
      if (status === 0) return done(output);
      fail(`\`${command} ${commandArgs.join(" ")}\` exited with ${status ?? signal}:\n${output.trimEnd().split("\n").slice(-60).join("\n")}`);
    });
  });
}

const readJson = (file) => JSON.parse(readFileSync(file, "utf8"));

/** The workspace packages that get published: every non-private package under packages/ and plugins/. */
function publishedPackages(base) {
  const found = [];
  for (const group of ["packages", "plugins"]) {
    for (const name of readdirSync(join(base, group)).sort()) {
      const manifest = join(base, group, name, "package.json");
      if (!existsSync(manifest)) continue;
      const pkg = readJson(manifest);
      if (!pkg.private) found.push({ dir: join(base, group, name), name: pkg.name, version: pkg.version });
    }
  }
  return found;
}

// 1. A scratch copy of what is committed: a clone of HEAD carries no node_modules, no build output
//    and none of the uncommitted work of this checkout; its history gives changelogs real commits.
step(`Cloning HEAD into ${repo}`);
run("git", ["clone", "--quiet", "--shared", "--no-tags", root, repo], { cwd: scratch });
const head = run("git", ["rev-parse", "HEAD"], { cwd: root }).trim();
run("git", ["checkout", "--quiet", "--detach", head]);
console.error(`  commit ${head}`);

step("Installing the workspace (pnpm, frozen lockfile)");
run("pnpm", ["install", "--frozen-lockfile", "--prefer-offline", "--reporter=append-only"]);

// 2. Versions and changelogs, as a release would write them.
step("changeset version");
const before = new Map(publishedPackages(repo).map((pkg) => [pkg.name, pkg.version]));
const pending = readdirSync(join(repo, ".changeset")).filter((file) => file.endsWith(".md") && file !== "README.md");
run("pnpm", ["exec", "changeset", "version"]);
const packages = publishedPackages(repo);
if (packages.length === 0) fail("no published package found under packages/ and plugins/");
for (const pkg of packages) {
  const changelog = existsSync(join(pkg.dir, "CHANGELOG.md")) ? "CHANGELOG.md written" : "no CHANGELOG.md";
  console.error(`  ${pkg.name}: ${before.get(pkg.name)} → ${pkg.version} (${changelog})`);
}
if (pending.length > 0 && packages.every((pkg) => pkg.version === before.get(pkg.name))) {
  fail(`${pending.length} changeset(s) pending (${pending.join(", ")}) but changeset version bumped nothing`);
}
if (pending.length === 0) console.error("  no pending changeset: versions unchanged");
const versions = new Set(packages.map((pkg) => pkg.version));
if (versions.size !== 1) fail(`the packages are released together at one version, got ${[...versions].join(", ")}`);
const [version] = versions;

// 3. Build and pack (pnpm pack turns workspace: and catalog: ranges into real versions).
step("Building every package");
run("pnpm", ["run", "build"]);

step("Packing every published package");
mkdirSync(tarballs);
for (const pkg of packages) run("pnpm", ["pack", "--pack-destination", tarballs], { cwd: pkg.dir });
const packed = readdirSync(tarballs)
  .filter((file) => file.endsWith(".tgz"))
  .sort();
if (packed.length !== packages.length) fail(`expected ${packages.length} tarballs, found ${packed.length}: ${packed.join(", ")}`);
for (const file of packed) {
  const listing = run("tar", ["-tzf", join(tarballs, file)]).split("\n");
  for (const required of ["package/package.json", "package/README.md", "package/LICENSE", "package/dist/index.js", "package/dist/index.d.ts"]) {
    if (!listing.includes(required)) fail(`${file} lacks ${required.slice("package/".length)}`);
  }
  const manifest = JSON.parse(run("tar", ["-xzOf", join(tarballs, file), "package/package.json"]));
  const ranges = Object.entries({ ...manifest.dependencies, ...manifest.peerDependencies });
  const unresolved = ranges.filter(([, range]) => /^(workspace|catalog):/.test(range));
  if (unresolved.length > 0) fail(`${file} still names ${unresolved.map(([name, range]) => `${name}@${range}`).join(", ")}`);
}
console.error(`  ${packed.length} tarballs: ${packed.join(" ")}`);

// 4. What consumers' tools see: publint (package.json vs files) and attw (types per resolution).
//    attw: every resolution is checked (node10, node16 from ESM and CJS, bundler); the one rule left
//    out is cjs-resolves-to-esm, since the packages are ESM-only on purpose (RELEASING.md).
step("publint (warnings count as errors) and attw on every tarball");
const bin = (name) => join(repo, "node_modules", ".bin", name);
const lint = async (file) => {
  const tarball = join(tarballs, file);
  await runAsync(bin("publint"), ["run", tarball, "--strict"]);
  await runAsync(bin("attw"), [tarball, "--ignore-rules", "cjs-resolves-to-esm", "--format", "ascii", "--no-color"]);
  console.error(`  ${file}: publint and attw clean`);
};
// Two at a time (CI has 2 CPUs); the first failure ends the run with its output.
const queue = [...packed];
await Promise.all(
  [0, 1].map(async () => {
    for (let file = queue.shift(); file; file = queue.shift()) await lint(file);
  }),
);

// 5. An empty project installs the tarballs with npm, as a user would, offline: third-party
//    dependencies come from the npm cache bootstrap.sh fills (scripts/pack-check.mjs --provision),
//    so the dry run contacts no registry; no install scripts, none of ours has one.
step("npm install of the tarballs into an empty project");
mkdirSync(consumer);
writeFileSync(join(consumer, "package.json"), JSON.stringify({ name: "isol8-release-smoke", private: true, type: "module" }, null, 2));
const tarballPaths = packed.map((file) => join(tarballs, file));
const npmCache = join(root, "node_modules", ".cache", "isol8-pack-check", "npm");
if (!existsSync(npmCache)) fail(`no npm cache at ${npmCache}: fill it with \`node scripts/pack-check.mjs --provision\` (bootstrap.sh does)`);
run("npm", ["install", "--offline", "--cache", npmCache, "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error", ...tarballPaths], {
  cwd: consumer,
});
// Every isol8 package must come from a tarball made here, never from a registry.
const lock = readJson(join(consumer, "package-lock.json"));
const ours = new Set(packages.map((pkg) => pkg.name));
const installed = Object.entries(lock.packages).filter(([path]) => ours.has(path.replace(/^.*node_modules\//, "")));
const foreign = installed.filter(([, entry]) => !String(entry.resolved ?? "").startsWith("file:") && !entry.link);
if (foreign.length > 0) fail(`installed from elsewhere than the tarballs: ${foreign.map(([path, entry]) => `${path} (${entry.resolved})`).join(", ")}`);
for (const pkg of packages) {
  const manifest = join(consumer, "node_modules", pkg.name, "package.json");
  if (!existsSync(manifest) || readJson(manifest).version !== version) fail(`${pkg.name}@${version} is not installed in the smoke project`);
}

// 6. The CLI and the library, from the installed packages. None of this needs a Docker engine.
step("Running the installed CLI and library");
const isol8 = join(consumer, "node_modules", ".bin", "isol8");
const printed = run(isol8, ["--version"], { cwd: consumer }).trim();
if (printed !== version) fail(`isol8 --version printed ${JSON.stringify(printed)}, expected ${version}`);
console.error(`  isol8 --version: ${printed}`);
if (!run(isol8, ["--help"], { cwd: consumer }).includes("run")) fail("isol8 --help does not list the run command");

// A TypeScript config file found by the CLI: the config loader (jiti) and a plugin's options.
writeFileSync(
  join(consumer, "isol8.config.ts"),
  [
    'import { defineConfig } from "@isol8/core";',
    'import { pythonRuntime } from "@isol8/plugin-runtime-python";',
    "const timeoutMs: number = 1234;",
    'export default defineConfig({ plugins: [pythonRuntime({ indexUrl: "https://pypi.example.com/simple" })], defaults: { timeoutMs } });',
    "",
  ].join("\n"),
);
const config = JSON.parse(run(isol8, ["config"], { cwd: consumer }));
if (!String(config.file).endsWith("isol8.config.ts")) fail(`isol8 config did not find isol8.config.ts: file ${config.file}`);
if (JSON.stringify(config.runtimes) !== '["python"]') fail(`isol8 config: runtimes ${JSON.stringify(config.runtimes)}, expected ["python"]`);
if (config.options?.timeoutMs?.value !== 1234) fail(`isol8 config: timeoutMs ${JSON.stringify(config.options?.timeoutMs)}, expected 1234 from the file`);
console.error("  isol8 config: isol8.config.ts loaded (python only, timeoutMs 1234)");

// Each plugin package, its factory and the options it needs to be made (none reach the network).
const plugins = {
  "@isol8/plugin-runtime-python": ["pythonRuntime"],
  "@isol8/plugin-runtime-python-data": ["pythonDataRuntime"],
  "@isol8/plugin-runtime-node": ["nodeRuntime"],
  "@isol8/plugin-runtime-bun": ["bunRuntime"],
  "@isol8/plugin-runtime-deno": ["denoRuntime"],
  "@isol8/plugin-runtime-bash": ["bashRuntime"],
  "@isol8/plugin-pool-fast": ["fastPool"],
  "@isol8/plugin-pool-secure": ["securePool"],
  "@isol8/plugin-seccomp": ["seccomp"],
  "@isol8/plugin-network-filter": ["networkFilter"],
  "@isol8/plugin-driver-kubernetes": ["kubernetesDriver"],
  "@isol8/plugin-audit-stdout": ["stdoutAudit"],
  "@isol8/plugin-audit-file": ["fileAudit", { dir: join(consumer, "audit") }],
  "@isol8/plugin-audit-http": ["httpAudit", { url: "http://127.0.0.1:9/audit" }],
};
const missing = packages.map((pkg) => pkg.name).filter((name) => name.startsWith("@isol8/plugin-") && !(name in plugins));
if (missing.length > 0) fail(`no import check for ${missing.join(", ")}: add its factory to the plugins table`);
const esmCheck = `
  import assert from "node:assert/strict";
  import * as isol8 from "isol8";
  import { loadConfig } from "@isol8/core/config";
  import { FakePoolContext } from "@isol8/kit/testing";
  import * as kit from "@isol8/kit";
  import { RemoteIsol8 } from "@isol8/remote";
  import { createServer } from "@isol8/server";
  assert.equal(typeof isol8.DockerIsol8, "function", "isol8 exports DockerIsol8");
  assert.equal(typeof isol8.defineConfig, "function", "isol8 re-exports @isol8/core");
  assert.equal(isol8.RemoteIsol8, RemoteIsol8, "isol8 re-exports RemoteIsol8");
  assert.equal(typeof loadConfig, "function", "@isol8/core/config exports loadConfig");
  assert.equal(typeof FakePoolContext, "function", "@isol8/kit/testing exports FakePoolContext");
  assert.equal(typeof kit.definePlugin, "function", "@isol8/kit exports definePlugin");
  assert.equal(isol8.definePlugin, kit.definePlugin, "isol8 re-exports the one @isol8/kit");
  assert.equal(typeof createServer, "function", "@isol8/server exports createServer");
  const engine = new isol8.DockerIsol8({ timeoutMs: 1000 }); // no Docker call until start()
  assert.equal(typeof engine.execute, "function");
  for (const [name, [factory, options]] of Object.entries(${JSON.stringify(plugins)})) {
    const plugin = (await import(name))[factory](options);
    assert.match(plugin.name, /^isol8:/, name + " " + factory + "() returns a plugin");
  }
  console.log("ok");
`;
if (run(process.execPath, ["--input-type=module", "-e", esmCheck], { cwd: consumer }).trim() !== "ok") fail("the ESM import check printed no ok");
console.error(`  import: isol8, @isol8/core/config, @isol8/kit, @isol8/kit/testing, @isol8/remote, @isol8/server and ${Object.keys(plugins).length} plugins`);

// CommonJS consumers: require(esm), which Node.js has without a flag from 20.19 (the engines floor).
const cjsCheck = `
  const { DockerIsol8 } = require("isol8");
  const { loadConfig } = require("@isol8/core/config");
  if (typeof DockerIsol8 !== "function" || typeof loadConfig !== "function") process.exit(3);
  console.log("ok");
`;
if (run(process.execPath, ["-e", cjsCheck], { cwd: consumer }).trim() !== "ok") fail("the require(esm) check printed no ok");
console.error(`  require (CommonJS, Node ${process.versions.node}): isol8, @isol8/core/config`);
finished = true;
