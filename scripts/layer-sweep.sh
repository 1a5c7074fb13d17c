#!/usr/bin/env bash
# Figure 5-style sweep on the bundled model: ROME at every layer on the first N CounterFact cases, in two lanes
# (even and odd layers), then one summary row per layer into results/layer-sweep.json and a table into
# $OUT/table.md (results/layer-sweep.md holds the committed table with its reading, so it is not overwritten).
# Env: N (cases per layer, default 50, the committed sweep's), OUT (default out/layer-sweep), LAYERS (default 0 … nLayer−1),
# MD (the table's file, default $OUT/table.md).
# Resumable: rerunning skips finished cases.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-50}"
OUT="${OUT:-out/layer-sweep}"
CLI="node dist/lib/cli/main.js"
test -f dist/lib/cli/main.js || npm run build
L=$(node -e "console.log(JSON.parse(require('fs').readFileSync('models/rome-fact-gpt2/config.json','utf8')).n_layer)")
LAYERS="${LAYERS:-$(seq -s ' ' 0 $((L - 1)))}"
mkdir -p "$OUT" results
lane() {
  for l in "$@"; do
    $CLI eval counterfact --method rome --layer "$l" --n "$N" --out "$OUT/layer$l" > "$OUT/layer$l.log" 2>&1
  done
}
even=(); odd=()
for l in $LAYERS; do if (( l % 2 == 0 )); then even+=("$l"); else odd+=("$l"); fi; done
lane "${even[@]}" &
a=$!
lane "${odd[@]}"
wait "$a"
dirs=(); for l in $LAYERS; do dirs+=("$OUT/layer$l"); done
$CLI summarize "${dirs[@]}" --md "${MD:-$OUT/table.md}" --json results/layer-sweep.json --force
cat "${MD:-$OUT/table.md}"
