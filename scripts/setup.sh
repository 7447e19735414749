#!/usr/bin/env bash
# Installs what Loupe needs on a fresh Debian machine with Node 20: the npm
# packages and the Debian packages for the tests' references and the
# end-to-end browser. Safe to run again; it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing Debian packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# onnxruntime-node's install step would fetch CUDA files; the CPU build ships in the package.
if [ ! -d node_modules/onnxruntime-node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages"
  npm_config_onnxruntime_node_install=skip npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
