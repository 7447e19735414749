#!/usr/bin/env bash
# Installs a real VS Code for the end-to-end tests and `scripts/vscode-open.sh`:
# code-server (VS Code's workbench served to a browser, with a Node extension
# host) from npm, plus Debian's Chromium for Playwright to drive it. Nothing
# here downloads from anywhere but npm and Debian.
#
# The result is cached in .cache/code-server/ (git-ignored); a stamp file marks
# a finished install, so running this again does nothing. Remove the folder to
# start over. Needs root, or sudo, for the Debian packages.
set -euo pipefail
cd "$(dirname "$0")/.."

CODE_SERVER_VERSION=4.100.3 # 4.100.x is the newest line that runs on Node 20
DIR=.cache/code-server
RECIPE=2                    # bump when the steps below change, to redo them once
STAMP="$DIR/.installed-$CODE_SERVER_VERSION-$RECIPE"
ENTRY="$DIR/node_modules/code-server/out/node/entry.js"

# Debian packages: Kerberos headers and a compiler toolchain for the native
# rebuilds, ripgrep for VS Code's search, Chromium for the browser side with
# fonts for CJK text and emoji.
bash "$(dirname "$0")/apt-install.sh" libkrb5-dev ripgrep chromium fonts-wqy-microhei fonts-noto-color-emoji \
  build-essential python3 pkg-config

if [ -f "$STAMP" ] && [ -f "$ENTRY" ]; then
  echo "vscode-setup: code-server $CODE_SERVER_VERSION already installed"
  exit 0
fi

echo "vscode-setup: installing code-server $CODE_SERVER_VERSION (once per machine; a few minutes)"
rm -rf "$DIR"
mkdir -p "$DIR"
(
  cd "$DIR"
  export npm_config_yes=true # node-pty's build runs `npx node-gyp`
  export npm_config_nodedir="${npm_config_nodedir:-/usr}" # Node's headers from the Debian package
  [ -f /usr/include/node/node.h ] || unset npm_config_nodedir
  echo '{ "name": "loupe-code-server", "private": true }' >package.json
  # --ignore-scripts: code-server's postinstall would download ripgrep from GitHub.
  npm install --ignore-scripts --no-audit --no-fund --loglevel=error "code-server@$CODE_SERVER_VERSION"

  cd node_modules/code-server/lib/vscode
  npm install --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error
  npm rebuild --loglevel=error @parcel/watcher @vscode/deviceid @vscode/spdlog kerberos native-watchdog node-pty
  mkdir -p node_modules/@vscode/ripgrep/bin
  cp "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
  [ -e node_modules.asar ] || ln -s node_modules node_modules.asar
  ln -sf code-linux.sh bin/remote-cli/code # `code` in VS Code's terminal
  ln -sf browser-linux.sh bin/helpers/browser.sh

  # The built-in extensions' shared dependency: TypeScript, for the TS/JS language features.
  (cd extensions && npm install --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)

  cd ../../../..
  npm rebuild --loglevel=error argon2
)
node "$ENTRY" --version >/dev/null
touch "$STAMP"
echo "vscode-setup: code-server $CODE_SERVER_VERSION ready in $DIR"
