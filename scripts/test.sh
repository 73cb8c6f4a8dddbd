#!/usr/bin/env bash
# The README's test command, and what CI runs: provision, type-check, then every test
# (unit and real-Docker integration), then the examples' own checks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh

printf '\n==> Type-checking\n' >&2
pnpm run typecheck

printf '\n==> Tests\n' >&2
report=$(mktemp)
status=0
pnpm exec vitest run --reporter=default --reporter=json --outputFile.json="$report" || status=$?
# A plain closing line that any CI reads, whatever the runner prints.
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (r.numPendingTests ? `, ${r.numPendingTests} skipped` : ""));
' "$report" || true
rm -f "$report"
exit $status
