#!/usr/bin/env bash
# The README's main command: installs what is missing, then runs the antrea-lab demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export PATH="$PWD/node_modules/.bin:$PATH"
exec node src/cmd/antrea-lab.ts demo "$@"
