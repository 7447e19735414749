#!/usr/bin/env bash
# The main job: sets everything up, runs the bundled default model over a
# sample file (tokens, next-token predictions, every residual-stream hook
# written to .cache/start/), then opens Loupe in a real VS Code in the browser
# (code-server on 127.0.0.1) on the samples/ folder. Ctrl-C stops VS Code.
#
#   bash scripts/start.sh            # NO_VSCODE=1 skips opening VS Code
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
mkdir -p .cache/start
echo "start: the default model on samples/tokens.py"
bin/loupe tokenize --text samples/tokens.py --json > .cache/start/tokens.json
bin/loupe run --text samples/tokens.py --hooks resid --out .cache/start/tokens.safetensors
node -e '
  const tokens = require("./.cache/start/tokens.json");
  console.log(`start: ${tokens.length} tokens; residual stream of every layer in .cache/start/tokens.safetensors`);
'
bin/loupe hooks | head -5
echo "..."
if [ "${NO_VSCODE:-0}" != "1" ]; then
  exec bash scripts/vscode-open.sh samples
fi
