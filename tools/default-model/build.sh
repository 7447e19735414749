#!/usr/bin/env bash
# Rebuilds Loupe's default model (models/default) from scratch:
#
#   bash tools/default-model/build.sh
#
# system packages -> corpus -> tokenizer -> token files -> held-out sample
# -> training (CPU, ~50 min on 2 cores) -> export + evaluation -> MODEL_CARD.md
#
# Rerunnable: downloads, the corpus and the tokenizer are rebuilt (they are
# deterministic and take a minute); training is skipped when
# .cache/default-model/train/final.pt was trained on the same token files,
# config, hyperparameters and scripts, and resumes from its last checkpoint if
# it was interrupted. Delete .cache/default-model to start over completely.
set -euo pipefail
cd "$(dirname "$0")/../.."

CACHE=.cache/default-model
OUT=models/default
PYTHON=${PYTHON:-/usr/bin/python3}
HERE=tools/default-model

# ---- system packages (Debian): PyTorch on CPU, and the Python standard library sources ----
DEBS=(python3-torch python3-numpy libopenblas0-pthread libpython3.11-minimal libpython3.11-stdlib)
missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=
  [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "build: installing ${missing[*]}"
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi

# ---- node packages: Hugging Face tokenizers (a dependency of Loupe) ----
if ! node -e "require.resolve('tokenizers')" 2>/dev/null; then
  echo "build: installing node packages"
  npm ci
fi

mkdir -p "$CACHE" "$OUT"
node "$HERE/build_corpus.mjs" "$CACHE"
node "$HERE/train_tokenizer.mjs" "$CACHE" "$OUT"
node "$HERE/heldout_sample.mjs" "$CACHE" "$OUT"
"$PYTHON" "$HERE/train_model.py" --cache "$CACHE" --out "$OUT"
"$PYTHON" "$HERE/evaluate.py" --cache "$CACHE" --out "$OUT"
"$PYTHON" "$HERE/write_card.py" --cache "$CACHE" --out "$OUT"
echo "build: done; $(du -sh "$OUT" | cut -f1) in $OUT"
