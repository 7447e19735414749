#!/usr/bin/env bash
# The test command: sets up what the tests need, then builds, type-checks,
# lints, checks formatting, and runs the unit tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run --silent typecheck
npm run --silent lint
npx mocha
