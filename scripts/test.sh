#!/usr/bin/env bash
# The README's test command, and what CI runs: provision, type-check, then every test
# (unit and real-Docker integration; the integration tests a second time with the Docker-exec
# path forced), then the examples' own checks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh

printf '\n==> Type-checking\n' >&2
pnpm run typecheck

printf '\n==> Tests\n' >&2
report=$(mktemp)
exec_report=$(mktemp)
status=0
pnpm exec vitest run --reporter=default --reporter=json --outputFile.json="$report" || status=$?

# The same integration tests again with the Docker-exec path forced (the engine uses the
# in-container executor by default): both ways of starting a program must pass the same tests.
printf '\n==> Integration tests again with ISOL8_LAUNCHER=exec\n' >&2
ISOL8_LAUNCHER=exec pnpm exec vitest run --project integration --reporter=default --reporter=json --outputFile.json="$exec_report" || status=$?

# A plain closing line that any CI reads, whatever the runner prints: the totals of both runs.
node -e '
  const fs = require("fs");
  const runs = process.argv.slice(1).map((file) => {
    try { return JSON.parse(fs.readFileSync(file, "utf8")); } catch { return undefined; }
  });
  const sum = (key) => runs.reduce((n, r) => n + (r ? r[key] : 0), 0);
  const [all, exec] = runs;
  const part = (name, r) => r ? `${name}: ${r.numPassedTests} passed, ${r.numFailedTests} failed` : `${name}: no report`;
  console.error(`(${part("executor (default)", all)}; ${part("exec path, integration", exec)})`);
  const failed = sum("numFailedTests") + runs.filter((r) => !r).length;
  const skipped = sum("numPendingTests");
  console.log(`${sum("numPassedTests")} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ""));
' "$report" "$exec_report" || true
rm -f "$report" "$exec_report"
exit $status
