#!/usr/bin/env bash
# Opens Loupe in a real VS Code: builds the extension, packs it into a .vsix,
# installs it into code-server (VS Code in the browser) and serves the
# workbench on this machine only (127.0.0.1, no password), on the samples/
# folder or the folder given. Runs in the foreground until Ctrl-C.
#
#   bash scripts/vscode-open.sh [FOLDER]        # PORT=8080 by default; the next free port if taken
#
# Reach it from another machine through an SSH tunnel:
#   ssh -L 8080:127.0.0.1:8080 HOST   then open the printed address locally.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

FOLDER="$(cd "${1:-samples}" && pwd)"
PORT="${PORT:-8080}"
STATE="$ROOT/.cache/vscode-user"
ENTRY="$ROOT/.cache/code-server/node_modules/code-server/out/node/entry.js"
VSIX="$ROOT/.cache/vsix/loupe.vsix"

[ -d node_modules/@vscode/vsce ] || bash scripts/setup.sh
bash scripts/vscode-setup.sh

echo "vscode-open: building and packing the extension"
npm run --silent package:vsix >/dev/null
mkdir -p "$STATE/data/User" "$STATE/extensions"
node "$ENTRY" --user-data-dir "$STATE/data" --extensions-dir "$STATE/extensions" \
  --install-extension "$VSIX" --force >/dev/null
# First run only: a quiet workbench (the user's later changes are kept).
if [ ! -f "$STATE/data/User/settings.json" ]; then
  cat >"$STATE/data/User/settings.json" <<'EOF'
{
  "telemetry.telemetryLevel": "off",
  "update.mode": "none",
  "extensions.autoCheckUpdates": false,
  "extensions.autoUpdate": false,
  "security.workspace.trust.enabled": false,
  "git.openRepositoryInParentFolders": "never"
}
EOF
fi

# The first free port from $PORT on.
PORT="$(node -e '
const net = require("node:net");
const tryPort = (p) => {
  const s = net.createServer();
  s.once("error", () => (p < 65535 ? tryPort(p + 1) : process.exit(1)));
  s.listen(p, "127.0.0.1", () => s.close(() => console.log(p)));
};
tryPort(Number(process.argv[1]));
' "$PORT")"

LOG="$STATE/code-server.log"
# Its own process group (setsid), so that stopping it also stops the extension
# host and the engine processes it started.
setsid node "$ENTRY" --auth none --bind-addr "127.0.0.1:$PORT" \
  --disable-telemetry --disable-update-check --disable-workspace-trust \
  --user-data-dir "$STATE/data" --extensions-dir "$STATE/extensions" \
  "$FOLDER" >"$LOG" 2>&1 &
CS_PID=$!
stop() {
  trap - EXIT INT TERM
  kill -TERM -- "-$CS_PID" 2>/dev/null || true
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    kill -0 "$CS_PID" 2>/dev/null || break
    sleep 0.5
  done
  kill -KILL -- "-$CS_PID" 2>/dev/null || true
}
trap stop EXIT
trap 'echo; echo "vscode-open: stopping"; stop; exit 130' INT TERM

# Wait until it answers.
for _ in $(seq 1 120); do
  if node -e '
    require("node:http")
      .get({ host: "127.0.0.1", port: Number(process.argv[1]), path: "/healthz", timeout: 1000 }, (r) =>
        process.exit(r.statusCode === 200 ? 0 : 1))
      .on("error", () => process.exit(1));
  ' "$PORT"; then
    break
  fi
  if ! kill -0 "$CS_PID" 2>/dev/null; then
    echo "vscode-open: code-server exited at start; its log:" >&2
    tail -n 30 "$LOG" >&2
    exit 1
  fi
  sleep 0.5
done

URL="http://127.0.0.1:$PORT/?folder=$(node -p 'encodeURI(process.argv[1])' "$FOLDER")"
echo "vscode-open: VS Code (code-server) with Loupe installed; log in ${LOG#"$ROOT"/}"
echo "Open $URL"
echo "Then open a file and the Loupe sidebar (the magnifier in the activity bar), and click a token. Ctrl-C stops it."
wait "$CS_PID"
