#!/usr/bin/env node
// Builds dist/ (tsup.config.ts) into dist.next/, then puts it in place of dist/ with two renames:
// tests and other engineers' processes that start dist/bin.js while a build runs find the
// previous build whole, never a half-written one.
import { spawnSync } from "node:child_process";
import { existsSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const next = join(root, "dist.next");
const dist = join(root, "dist");
const old = join(root, `dist.old-${process.pid}`);

rmSync(next, { recursive: true, force: true });
const tsup = spawnSync(join(root, "node_modules", ".bin", "tsup"), { cwd: root, stdio: "inherit", env: { ...process.env, ISOL8_CLI_OUT_DIR: "dist.next" } });
if (tsup.status !== 0) {
  rmSync(next, { recursive: true, force: true });
  process.exit(tsup.status ?? 1);
}
if (existsSync(dist)) renameSync(dist, old);
renameSync(next, dist);
rmSync(old, { recursive: true, force: true });
