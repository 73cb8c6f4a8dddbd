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

# Provisioning for the packaging check (scripts/pack-check.mjs), which installs the packed packages
# offline: this fills its npm cache from the registry (the check itself contacts no host); again
# whenever the lockfile changed.
pack_stamp=node_modules/.cache/isol8-pack-check/provisioned.sha256
if ! sha256sum --check --status "$pack_stamp" 2>/dev/null; then
  step "Filling the npm cache of the packaging check"
  node scripts/pack-check.mjs --provision
  sha256sum pnpm-lock.yaml >"$pack_stamp"
fi

step "Making sure a Docker engine answers"
bash scripts/ensure-docker.sh

# Debian's HAProxy, for the fleet test (test/integration/fleet.test.ts, deploy/test): three
# `isol8 serve` nodes behind it on loopback. Installed like the Docker engine: from Debian, only
# when missing, only as root (elsewhere the fleet test says HAProxy is missing).
if ! command -v haproxy >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    step "Installing Debian's HAProxy (the fleet test)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null; }
  else
    step "HAProxy is missing and this script is not root: install it (apt-get install haproxy) for the fleet test"
  fi
fi

# Debian's Chromium, for the browser tests of the web page (test/integration/playground.test.ts,
# playwright-core drives it; no browser is downloaded). The same way: from Debian, when missing, as root.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    step "Installing Debian's Chromium (the web page's browser tests)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
  else
    step "Chromium is missing and this script is not root: install it (apt-get install chromium) for the browser tests"
  fi
fi

step "Building runtime images (isol8 setup)"
node packages/cli/dist/bin.js setup
