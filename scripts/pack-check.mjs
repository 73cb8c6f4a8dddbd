#!/usr/bin/env node
// The packages as a user installs them, checked for what they cost: every published package is
// packed from this checkout's build (`pnpm pack`), and the tarballs are installed with npm into
// empty projects, offline, from a dedicated npm cache:
//   - @isol8/remote alone (with the workspace packages it needs): no Docker client (dockerode and
//     its gRPC/protobuf stack) and no TypeScript compiler installed; `import("@isol8/remote")` takes
//     at most IMPORT_BUDGET_MS (best of RUNS processes, timed inside node);
//   - isol8 (the CLI and batteries-included library): no `typescript` package installed;
//     `isol8 --version` takes at most VERSION_RATIO_BUDGET times `node -e 0` (wall, best of RUNS,
//     interleaved).
// It prints each figure and the size of each project's node_modules, and exits 1 on a violation.
//
// The check contacts no host: `--provision` fills the cache first (bootstrap.sh runs it; it is the
// step that reaches the npm registry), installing every tarball into a throwaway project.
// Needs the build (`pnpm run build`); no Docker engine. `--keep` leaves the scratch directory.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const IMPORT_BUDGET_MS = 60;
const VERSION_RATIO_BUDGET = 2;
const RUNS = 5;
/** What a pure HTTP client must not bring: the Docker client, its gRPC/protobuf stack, a compiler. */
const NOT_FOR_A_CLIENT = ["dockerode", "docker-modem", "@grpc/grpc-js", "@grpc/proto-loader", "protobufjs", "typescript"];

const args = process.argv.slice(2);
const unknown = args.filter((arg) => arg !== "--provision" && arg !== "--keep");
if (unknown.length > 0) fail(`unknown argument ${unknown[0]}: expected --provision and/or --keep`, 2);
const provision = args.includes("--provision");
const keep = args.includes("--keep");

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const cache = join(root, "node_modules", ".cache", "isol8-pack-check", "npm");
const scratch = mkdtempSync(join(tmpdir(), "isol8-pack-check-"));
process.on("exit", () => {
  if (keep) console.error(`scratch directory kept: ${scratch}`);
  else rmSync(scratch, { recursive: true, force: true });
});
process.on("SIGINT", () => process.exit(130));
process.on("SIGTERM", () => process.exit(143));

function fail(message, code = 1) {
  console.error(`pack check: ${message}`);
  process.exit(code);
}

/** Runs a command to its end; its output is shown only when it fails. */
function run(command, commandArgs, options = {}) {
  const result = spawnSync(command, commandArgs, { cwd: root, encoding: "utf8", maxBuffer: 64 * 1024 * 1024, ...options });
  if (result.error) fail(`${command} ${commandArgs.join(" ")}: ${result.error.message}`);
  if (result.status !== 0) {
    const output = `${result.stdout ?? ""}${result.stderr ?? ""}`.trimEnd().split("\n").slice(-40).join("\n");
    const hint = /ENOTCACHED/.test(output)
      ? "\nThe npm cache lacks a package: fill it with `node scripts/pack-check.mjs --provision` (bootstrap.sh does)."
      : "";
    fail(`\`${command} ${commandArgs.join(" ")}\` in ${options.cwd ?? root} exited with ${result.status ?? result.signal}:\n${output}${hint}`);
  }
  return result.stdout;
}

const readJson = (file) => JSON.parse(readFileSync(file, "utf8"));

/** Every non-private package under packages/ and plugins/, by name. */
function publishedPackages() {
  const found = new Map();
  for (const group of ["packages", "plugins"]) {
    for (const name of readdirSync(join(root, group)).sort()) {
      const manifest = join(root, group, name, "package.json");
      if (!existsSync(manifest)) continue;
      const pkg = readJson(manifest);
      if (!pkg.private) found.set(pkg.name, { dir: join(root, group, name), manifest: pkg });
    }
  }
  return found;
}

/** The package and every workspace package it pulls in (dependencies, and peers: npm installs those too). */
function closure(name, packages) {
  const seen = new Set();
  const visit = (current) => {
    if (seen.has(current)) return;
    seen.add(current);
    const { manifest } = packages.get(current);
    for (const dep of Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies })) if (packages.has(dep)) visit(dep);
  };
  visit(name);
  return [...seen];
}

/** Packs every package (pnpm turns workspace: and catalog: ranges into versions); name → tarball. */
function pack(packages) {
  const destination = join(scratch, "tarballs");
  mkdirSync(destination);
  const tarballs = new Map();
  for (const [name, { dir }] of packages) {
    if (!existsSync(join(dir, "dist", "index.js"))) fail(`${name} is not built (${join(dir, "dist", "index.js")} is missing): run \`pnpm run build\``);
    const printed = run("pnpm", ["pack", "--pack-destination", destination], { cwd: dir }).trim().split("\n").at(-1).trim();
    const tarball = printed.startsWith("/") ? printed : join(destination, printed);
    if (!tarball.endsWith(".tgz") || !existsSync(tarball)) fail(`pnpm pack of ${name} printed ${JSON.stringify(printed)}, not a tarball it made`);
    tarballs.set(name, tarball);
  }
  return tarballs;
}

/** An empty project with the tarballs installed by npm; `online` only when provisioning the cache. */
function install(label, tarballs, { online = false } = {}) {
  const project = join(scratch, label);
  mkdirSync(project);
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: `isol8-pack-check-${label}`, private: true, type: "module" }, null, 2));
  const network = online ? ["--prefer-online"] : ["--offline"];
  run("npm", ["install", ...network, "--cache", cache, "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error", ...tarballs], { cwd: project });
  return project;
}

/** The name of every package npm installed in the project, at any depth (from its lockfile). */
function installedNames(project) {
  const lock = readJson(join(project, "package-lock.json"));
  return new Set(
    Object.keys(lock.packages)
      .filter((path) => path.includes("node_modules/"))
      .map((path) => path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length)),
  );
}

function sizeMiB(project) {
  const kib = Number(run("du", ["-sk", join(project, "node_modules")]).split(/\s/)[0]);
  return (kib / 1024).toFixed(1);
}

/** Wall milliseconds of one run of a command (the time of spawning included, as a user waits for it). */
function wallMs(command, commandArgs, cwd) {
  const started = process.hrtime.bigint();
  run(command, commandArgs, { cwd });
  return Number(process.hrtime.bigint() - started) / 1e6;
}

const packages = publishedPackages();
for (const required of ["@isol8/remote", "isol8"]) if (!packages.has(required)) fail(`no published package ${required} under packages/`);
console.error(`==> Packing ${packages.size} packages from the build in ${root}`);
const tarballs = pack(packages);

if (provision) {
  console.error(`==> Filling the npm cache ${cache} (npm install of every tarball, from the registry)`);
  mkdirSync(cache, { recursive: true });
  install("provision", [...tarballs.values()], { online: true });
  // The checks below install subsets: npm may resolve a loose range (e.g. a types package's
  // "@types/node": "*") to another version without the other packages beside it, so each subset
  // fills the cache with what its own install resolves.
  for (const name of ["@isol8/remote", "isol8"]) {
    install(
      `provision-${name.replace(/[@/]/g, "")}`,
      closure(name, packages).map((member) => tarballs.get(member)),
      { online: true },
    );
  }
  console.error("npm cache filled: `node scripts/pack-check.mjs` installs offline from it");
  process.exit(0);
}
if (!existsSync(cache)) fail(`no npm cache at ${cache}: fill it with \`node scripts/pack-check.mjs --provision\` (bootstrap.sh does)`);

const violations = [];
const figures = [];

// 1. @isol8/remote alone.
const remoteSet = closure("@isol8/remote", packages);
console.error(`==> npm install --offline of @isol8/remote alone (${remoteSet.join(", ")})`);
const remote = install(
  "remote",
  remoteSet.map((name) => tarballs.get(name)),
);
const remoteInstalled = installedNames(remote);
// Positive controls: the scan sees the client and the HTTP library it does need.
for (const needed of ["@isol8/remote", "undici"]) if (!remoteInstalled.has(needed)) fail(`the lockfile scan of the remote project does not list ${needed}`);
const brought = NOT_FOR_A_CLIENT.filter((name) => remoteInstalled.has(name));
if (brought.length > 0) violations.push(`@isol8/remote installs ${brought.join(", ")} (a client must not bring ${NOT_FOR_A_CLIENT.join(", ")})`);
figures.push(
  `@isol8/remote alone: ${remoteInstalled.size} packages, node_modules ${sizeMiB(remote)} MiB; none of ${NOT_FOR_A_CLIENT.join(", ")}: ${brought.length === 0 ? "yes" : `no (${brought.join(", ")})`}`,
);

const importProbe = `
  const started = performance.now();
  const remote = await import("@isol8/remote");
  const ms = performance.now() - started;
  if (typeof remote.RemoteIsol8 !== "function") throw new Error("@isol8/remote exports no RemoteIsol8");
  console.log(ms.toFixed(1));
`;
const importMs = Array.from({ length: RUNS }, () => Number(run(process.execPath, ["--input-type=module", "-e", importProbe], { cwd: remote }).trim()));
const bestImport = Math.min(...importMs);
if (!(bestImport <= IMPORT_BUDGET_MS)) violations.push(`import("@isol8/remote") took ${bestImport.toFixed(1)} ms at best, over ${IMPORT_BUDGET_MS} ms`);
figures.push(
  `import("@isol8/remote"): best ${bestImport.toFixed(1)} ms of ${RUNS} processes (${importMs.map((ms) => ms.toFixed(1)).join(", ")}); budget ${IMPORT_BUDGET_MS} ms`,
);

// 2. isol8, the CLI and batteries-included library.
const cliSet = closure("isol8", packages);
console.error(`==> npm install --offline of isol8 (${cliSet.length} workspace packages)`);
const cli = install(
  "isol8",
  cliSet.map((name) => tarballs.get(name)),
);
const cliInstalled = installedNames(cli);
// Positive control: the scan sees transitive dependencies (dockerode comes through @isol8/core).
if (!cliInstalled.has("dockerode")) fail("the lockfile scan of the isol8 project does not list dockerode, which @isol8/core depends on");
if (cliInstalled.has("typescript")) violations.push("installing isol8 installs typescript (the TypeScript compiler)");
figures.push(`isol8: ${cliInstalled.size} packages, node_modules ${sizeMiB(cli)} MiB; no typescript: ${cliInstalled.has("typescript") ? "no" : "yes"}`);

const bin = join(cli, "node_modules", "isol8", readJson(join(cli, "node_modules", "isol8", "package.json")).bin.isol8);
const version = run(process.execPath, [bin, "--version"], { cwd: cli }).trim();
if (version !== packages.get("isol8").manifest.version)
  fail(`isol8 --version printed ${JSON.stringify(version)}, expected ${packages.get("isol8").manifest.version}`);
const cliMs = [];
const nodeMs = [];
for (let i = 0; i < RUNS; i++) {
  cliMs.push(wallMs(process.execPath, [bin, "--version"], cli));
  nodeMs.push(wallMs(process.execPath, ["-e", "0"], cli));
}
const ratio = Math.min(...cliMs) / Math.min(...nodeMs);
if (!(ratio <= VERSION_RATIO_BUDGET)) violations.push(`isol8 --version took ${ratio.toFixed(2)}x node -e 0 (best of ${RUNS}), over ${VERSION_RATIO_BUDGET}x`);
figures.push(
  `isol8 --version: best ${Math.min(...cliMs).toFixed(0)} ms wall against node -e 0 best ${Math.min(...nodeMs).toFixed(0)} ms: ${ratio.toFixed(2)}x; budget ${VERSION_RATIO_BUDGET}x`,
);

console.error("\nPacked-install figures:");
for (const figure of figures) console.error(`  ${figure}`);
if (violations.length > 0) fail(`${violations.length} violation(s):\n  ${violations.join("\n  ")}`);
console.error("pack check passed");
