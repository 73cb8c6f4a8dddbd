#!/usr/bin/env bash
# The README's test command, and what CI runs: provision, type-check, lint, then every test (unit,
# real-Docker integration including the examples' tests, exclusive), then the integration tests a
# second time with the Docker-exec path forced, then the release check of the packed packages.
# TESTING.md says how to run one part alone.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh

printf '\n==> Type-checking\n' >&2
pnpm run typecheck

printf '\n==> Lint and format check (pnpm lint)\n' >&2
pnpm lint

printf '\n==> Tests\n' >&2
report=$(mktemp)
exec_report=$(mktemp)
status=0
pnpm exec vitest run --reporter=default --reporter=json --outputFile.json="$report" || status=$?

# The same integration tests again with the Docker-exec path forced (the engine uses the
# in-container executor by default): both ways of starting a program must pass the same tests.
# Left out: the files that pin launcher "executor" on every engine they make (ISOL8_LAUNCHER does
# not override an explicit launcher), so a second run of them would test the executor again.
# Not run again on the exec path: tests of the executor itself, of what needs it (warm starts,
# contexts, the Kubernetes driver, the page's notebook), and of what no launcher changes (the
# kernels in their images, the fleet behind HAProxy, pushing images to a registry).
EXECUTOR_ONLY=(
  test/integration/executor.test.ts test/integration/end-with-process.test.ts test/integration/warm-start.test.ts test/integration/warm-start-js.test.ts test/integration/warm-start-bun.test.ts
  test/integration/playground.test.ts test/integration/contexts.test.ts test/integration/contexts-remote.test.ts test/integration/context-kernels.test.ts
  test/integration/kubernetes-driver.test.ts test/integration/kubernetes-filtered.test.ts test/integration/fleet.test.ts test/integration/setup-push.test.ts
  packages/mcp/test/http-contexts.test.ts
)
exec_files=()
while read -r _project file; do
  [[ " ${EXECUTOR_ONLY[*]} " == *" $file "* ]] || exec_files+=("$file")
done < <(pnpm exec vitest list --project integration --filesOnly)
printf '\n==> Integration tests again with ISOL8_LAUNCHER=exec (%d files; not %s)\n' "${#exec_files[@]}" "${EXECUTOR_ONLY[*]}" >&2
if [ "${#exec_files[@]}" -eq 0 ]; then
  echo "no integration test files listed for the exec-path pass" >&2
  status=1
else
  ISOL8_LAUNCHER=exec pnpm exec vitest run --project integration "${exec_files[@]}" --reporter=default --reporter=json --outputFile.json="$exec_report" || status=$?
fi

# The packages as a user installs them: publint and attw over every packed package, and the
# release dry run (version, build, pack, npm install of the tarballs, the CLI and imports there).
printf '\n==> Release check (scripts/release-check.sh)\n' >&2
bash scripts/release-check.sh || status=$?

# A plain closing line that any CI reads, whatever the runner prints: the totals of both runs.
node -e '
  const fs = require("fs");
  const runs = process.argv.slice(1).map((file) => {
    try { return JSON.parse(fs.readFileSync(file, "utf8")); } catch { return undefined; }
  });
  const sum = (key) => runs.reduce((n, r) => n + (r ? r[key] : 0), 0);
  const [all, exec] = runs;
  // The failed tests by name, with their first lines of failure, last: a CI that keeps only the
  // tail of the log still says what failed.
  // A file can fail with no test failed (a beforeAll/afterAll hook, an import error): named too.
  const lines = (text) => (text || "").split("\n").slice(0, 4).join("\n    ");
  const rel = (file) => file.name.replace(process.cwd() + "/", "");
  const failedFiles = (r) => (r ? r.testResults : []).filter((file) => file.status === "failed" && !file.assertionResults.some((a) => a.status === "failed"));
  for (const [name, r] of [["executor (default)", all], ["exec path", exec]]) {
    for (const file of r ? r.testResults : []) {
      for (const t of file.assertionResults.filter((a) => a.status === "failed")) {
        console.error(`FAILED (${name}) ${rel(file)} > ${t.fullName}\n    ${lines(t.failureMessages[0])}`);
      }
    }
    for (const file of failedFiles(r)) console.error(`FAILED (${name}) ${rel(file)} (the file, outside its tests)\n    ${lines(file.message)}`);
  }
  const part = (name, r) =>
    r ? `${name}: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (failedFiles(r).length ? `, ${failedFiles(r).length} file(s) failed outside their tests` : "") : `${name}: no report`;
  console.error(`(${part("executor (default)", all)}; ${part("exec path, integration", exec)})`);
  const failed = sum("numFailedTests") + runs.filter((r) => !r).length;
  const filesFailed = runs.reduce((n, r) => n + failedFiles(r).length, 0);
  const skipped = sum("numPendingTests");
  console.log(`${sum("numPassedTests")} passed, ${failed} failed` + (filesFailed ? `, ${filesFailed} file(s) failed outside their tests` : "") + (skipped ? `, ${skipped} skipped` : ""));
' "$report" "$exec_report" || true
rm -f "$report" "$exec_report"
exit $status
