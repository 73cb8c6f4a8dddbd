#!/usr/bin/env bash
# Release readiness, runnable alone (CI runs it too): packs every published package from the
# committed tree and checks the tarballs with publint (package.json against the files) and attw
# (the types as TypeScript resolves them: node10, node16 from ESM and CJS, bundler), then installs
# them with npm into an empty project and runs the CLI and a library import there. All of it is
# `pnpm release --dry-run` (scripts/release-dry-run.mjs), in a scratch directory: nothing is
# published and no file of this checkout changes. Needs no Docker engine; takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=$(node -p "require('./package.json').packageManager.split('@')[1]")
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version)" != "$PNPM_VERSION" ]; then
  printf '==> Installing pnpm %s\n' "$PNPM_VERSION" >&2
  npm install -g "pnpm@$PNPM_VERSION" >/dev/null
fi
# The scratch copy installs from the same store: a populated one makes that quick.
[ -x node_modules/.bin/changeset ] || pnpm install --frozen-lockfile --reporter=append-only

# What the packages cost as installed (scripts/pack-check.mjs): @isol8/remote alone brings no Docker
# client or compiler and imports fast, isol8 brings no TypeScript compiler and starts fast. Packs
# this checkout's build and installs offline from the cache bootstrap.sh fills (filled here if
# bootstrap.sh has not run since the lockfile changed).
pack_stamp=node_modules/.cache/isol8-pack-check/provisioned.sha256
if ! sha256sum --check --status "$pack_stamp" 2>/dev/null; then
  node scripts/pack-check.mjs --provision
  sha256sum pnpm-lock.yaml >"$pack_stamp"
fi
node scripts/pack-check.mjs

pnpm release --dry-run
