#!/usr/bin/env bash
# Trains the SAE Loupe ships on its default model, evaluates it on the
# held-out split, and builds its feature database:
#
#   bash tools/default-sae/build.sh            # HOOK, ARCH, K, EXPANSION, TOKENS override the defaults
#
# Needs the default model's corpus (rebuilt by tools/default-model/build_corpus.mjs
# from pinned packages if missing). Writes models/default-sae/.
set -euo pipefail
cd "$(dirname "$0")/../.."

CACHE=.cache/default-model
OUT=${OUT:-models/default-sae}
HOOK=${HOOK:-blocks.0.hook_resid_post}
ARCH=${ARCH:-topk}
K=${K:-24}
EXPANSION=${EXPANSION:-8}
TOKENS=${TOKENS:-800000}
SEED=${SEED:-42}

[ -f dist/cli.js ] || bash scripts/setup.sh
[ -f "$CACHE/corpus/train.jsonl" ] || node tools/default-model/build_corpus.mjs "$CACHE"

rm -rf "$OUT.tmp"
node bin/loupe train-sae --model models/default --hook "$HOOK" --corpus "$CACHE/corpus/train.jsonl" \
  --out "$OUT.tmp" --arch "$ARCH" --k "$K" --expansion "$EXPANSION" --tokens "$TOKENS" \
  --batch 4096 --context 128 --seed "$SEED" --lr 0.0004
node bin/loupe eval-sae --model models/default --sae "$OUT.tmp" --corpus "$CACHE/corpus/heldout.jsonl" \
  --tokens 60000 --context 128 --json > "$OUT.tmp/eval.json"
node bin/loupe dashboards --model models/default --sae "$OUT.tmp" --corpus "$CACHE/corpus/heldout.jsonl" --tokens 100000
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
echo "default-sae: $(cat "$OUT/eval.json")"
