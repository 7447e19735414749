#!/usr/bin/env bash
# Installs what Loupe needs on a fresh Debian machine with Node 20: the npm
# packages (and any Debian packages named as arguments), then builds dist/.
# Safe to run again; it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -gt 0 ] && bash scripts/apt-install.sh "$@"

# onnxruntime-node's install step would fetch CUDA files; the CPU build ships in the package.
if [ ! -d node_modules/onnxruntime-node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages"
  npm_config_onnxruntime_node_install=skip npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
