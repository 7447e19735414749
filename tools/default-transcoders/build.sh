#!/usr/bin/env bash
# Trains the transcoder set Loupe ships for its default model (every layer),
# chosen from a small sweep, and writes models/default-transcoders/:
#
#   bash tools/default-transcoders/build.sh      # TOKENS, EVAL_TOKENS, SEED override the defaults
#
# Each setting of the sweep is trained on the default model's training corpus
# and evaluated on its held-out split (`loupe eval-transcoder`); the one with
# the most loss recovered ships, in f16 when that costs under 0.005 nats of
# next-token loss against its f32 weights (both are measured and kept in
# sweep.json). Needs the default model's corpus (rebuilt by
# tools/default-model/build_corpus.mjs from pinned packages if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."

CACHE=.cache/default-model
WORK=.cache/default-transcoders
OUT=${OUT:-models/default-transcoders}
TOKENS=${TOKENS:-600000}
EVAL_TOKENS=${EVAL_TOKENS:-30000}
SEED=${SEED:-42}
# name: train-transcoder flags
SWEEP=(
  "topk-k32-8x:--arch topk --k 32 --expansion 8"
  "topk-k32-8x-skip:--arch topk --k 32 --expansion 8 --skip"
  "topk-k16-8x-skip:--arch topk --k 16 --expansion 8 --skip"
)

[ -f dist/cli.js ] || bash scripts/setup.sh
[ -f "$CACHE/corpus/train.jsonl" ] || node tools/default-model/build_corpus.mjs "$CACHE"
mkdir -p "$WORK"

evaluate() { # SET_DIR OUT_JSON
  node bin/loupe eval-transcoder --model models/default --transcoders "$1" \
    --corpus "$CACHE/corpus/heldout.jsonl" --tokens "$EVAL_TOKENS" --context 128 --json > "$2"
}

for entry in "${SWEEP[@]}"; do
  name=${entry%%:*}
  flags=${entry#*:}
  if [ ! -f "$WORK/$name/eval.json" ]; then
    rm -rf "$WORK/$name"
    start=$(date +%s)
    # shellcheck disable=SC2086
    node bin/loupe train-transcoder --model models/default --layer all --corpus "$CACHE/corpus/train.jsonl" \
      --out "$WORK/$name" $flags --tokens "$TOKENS" --batch 4096 --context 128 --seed "$SEED" --lr 0.0004
    echo $(( $(date +%s) - start )) > "$WORK/$name/seconds"
    evaluate "$WORK/$name" "$WORK/$name/eval.json"
  fi
  echo "$name: $(cat "$WORK/$name/eval.json")"
done

best=$(node -e '
  const fs = require("fs");
  const [work, ...names] = process.argv.slice(1);
  const score = (n) => JSON.parse(fs.readFileSync(`${work}/${n}/eval.json`, "utf8")).loss_recovered;
  console.log(names.reduce((a, b) => (score(b) > score(a) ? b : a)));
' "$WORK" "${SWEEP[@]%%:*}")
echo "chosen: $best"

rm -rf "$WORK/$best-f16"
npx tsx tools/default-transcoders/to_f16.ts "$WORK/$best" "$WORK/$best-f16"
evaluate "$WORK/$best-f16" "$WORK/$best-f16/eval.json"

node -e '
  const fs = require("fs");
  const [work, best, ...entries] = process.argv.slice(1);
  const read = (f) => JSON.parse(fs.readFileSync(f, "utf8"));
  const runs = entries.map((e) => {
    const name = e.slice(0, e.indexOf(":"));
    return { name, flags: e.slice(e.indexOf(":") + 1), seconds: Number(fs.readFileSync(`${work}/${name}/seconds`, "utf8")), eval: read(`${work}/${name}/eval.json`) };
  });
  const f16 = read(`${work}/${best}-f16/eval.json`);
  const f32 = runs.find((r) => r.name === best).eval;
  const lossDifference = f16.ce_replaced - f32.ce_replaced;
  fs.writeFileSync(`${work}/sweep.json`, JSON.stringify({ chosen: best, runs, f16: { eval: f16, loss_difference: lossDifference, shipped: Math.abs(lossDifference) < 0.005 } }, null, 1) + "\n");
' "$WORK" "$best" "${SWEEP[@]}"

ship=$(node -e 'const s = require(process.argv[1]); console.log(s.f16.shipped ? `${s.chosen}-f16` : s.chosen)' "$PWD/$WORK/sweep.json")
rm -rf "$OUT.tmp"
cp -r "$WORK/$ship" "$OUT.tmp"
rm -f "$OUT.tmp/seconds"
cp "$WORK/sweep.json" "$OUT.tmp/sweep.json"
[ -f "$OUT/TRANSCODER_CARD.md" ] && cp "$OUT/TRANSCODER_CARD.md" "$OUT.tmp/"
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
echo "default-transcoders: $ship $(cat "$OUT/eval.json")"
