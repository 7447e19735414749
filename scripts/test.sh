#!/usr/bin/env bash
# The test command: sets up what the tests need, then builds, type-checks,
# lints, checks formatting, and runs the unit tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run --silent typecheck
npm run --silent lint
npx mocha
# End-to-end: the packed extension in a real VS Code (code-server, driven
# through Chromium); screenshots in test-output/e2e/.
bash scripts/vscode-setup.sh
npm run --silent test:e2e
