#!/usr/bin/env bash
# The README's test command: installs what is missing, then runs static checks and every test
# suite (unit, integration, e2e) and prints `N passed, N failed, N skipped`. Needs root for the
# integration and e2e suites; without root they are reported as skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export PATH="$PWD/node_modules/.bin:$PATH"
exec node scripts/run-tests.ts "$@"
