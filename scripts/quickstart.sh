#!/usr/bin/env bash
# The README's first command: set everything up, then run a sample in each of the five runtimes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh

isol8() { node packages/cli/dist/bin.js "$@"; }
printf '\n==> One execution in each runtime\n' >&2
isol8 run -e 'import sys; print(f"python {sys.version.split()[0]}: {sum(range(10))}")'
isol8 run -r node -e 'console.log(`node ${process.version}: ${[1, 2, 3].map((x) => x * 2)}`)'
isol8 run -r bun -e 'const n: number = 21; console.log(`bun ${Bun.version}: ${n * 2}`)'
isol8 run -r deno -e 'const n: number = 6; console.log(`deno ${Deno.version.deno}: ${n * 7}`)'
isol8 run -r bash -e 'echo "bash ${BASH_VERSION}: $((6 * 7))"'
