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
# The model's context is 256 tokens: the job reads the sample's opening lines.
head -n 16 samples/tokens.py > .cache/start/excerpt.py
echo "start: the default model and SAE on the first lines of samples/tokens.py"
bin/loupe run --text .cache/start/excerpt.py --hooks resid --out .cache/start/excerpt.safetensors
bin/loupe features --text .cache/start/excerpt.py --sae models/default-sae --top 3 --json > .cache/start/features.json
node -e '
  const tokens = require("./.cache/start/features.json");
  const db = require("./models/default-sae/features/index.json");
  console.log(`start: ${tokens.length} tokens; every residual-stream hook is in .cache/start/excerpt.safetensors`);
  for (const t of tokens.slice(1, 13)) {
    const f = t.features.map((x) => `#${x.index} ${db.features.label[x.index]} (${x.act.toFixed(2)})`).join(", ");
    console.log(`  ${JSON.stringify(t.text).padEnd(14)} ${f}`);
  }
'
if [ "${NO_VSCODE:-0}" != "1" ]; then
  exec bash scripts/vscode-open.sh samples
fi
