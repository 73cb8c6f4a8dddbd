#!/usr/bin/env bash
# Brings a fresh machine (Node.js 20 and npm, nothing else) to a ready isol8 checkout:
# pnpm, dependencies, a build of every package, a Docker engine, and the runtime images.
# Safe to run again: every step skips what is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=$(node -p "require('./package.json').packageManager.split('@')[1]")
step() { printf '\n==> %s\n' "$*" >&2; }

if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version)" != "$PNPM_VERSION" ]; then
  step "Installing pnpm $PNPM_VERSION"
  # corepack's signature check fails against the registry reachable here; npm installs it fine.
  npm install -g "pnpm@$PNPM_VERSION" >/dev/null
fi

step "Installing dependencies"
pnpm install --frozen-lockfile --reporter=append-only

step "Building packages"
build_log=$(mktemp)
pnpm run build >"$build_log" 2>&1 || { tail -n 40 "$build_log" >&2; rm -f "$build_log"; exit 1; }
rm -f "$build_log"

step "Making sure a Docker engine answers"
bash scripts/ensure-docker.sh

step "Building runtime images (isol8 setup)"
node packages/cli/dist/bin.js setup
