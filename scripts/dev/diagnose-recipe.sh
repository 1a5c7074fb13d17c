#!/usr/bin/env bash
# Issue 14's diagnostics on one candidate model, in two lanes (one per core):
#   (a) probe, (b) causal trace (window 2, MLP, first N_TRACE known facts, two shards), (c) ROME on N_CF CounterFact
#   cases at each layer in LAYERS (default: every layer) plus the unedited model.
# Usage: bash scripts/dev/diagnose-recipe.sh MODEL_DIR OUT_DIR   (env N_TRACE=220, N_CF=50, LAYERS="0 1 2 3 4 5",
#        STAGES="probe trace rome")
set -euo pipefail
cd "$(dirname "$0")/../.."
M="$1"; O="$2"
N_TRACE="${N_TRACE:-220}"; N_CF="${N_CF:-50}"; STAGES=" ${STAGES:-probe trace rome} "
CLI="node dist/lib/cli/main.js"
L=$(node -e "console.log(JSON.parse(require('fs').readFileSync('$M/config.json','utf8')).n_layer)")
LAYERS="${LAYERS:-$(seq -s ' ' 0 $((L - 1)))}"
mkdir -p "$O"
say() { echo "[$(date -u +%H:%M:%S)] $*"; }
has() { [[ "$STAGES" == *" $1 "* ]]; }
if has probe; then
  say probe
  npx tsx scripts/probe-facts.ts --model "$M" --corpus build/corpus > "$O/probe.md" 2> "$O/probe.log" &
  p=$!
  npx tsx scripts/dev/leak-check.ts "$M" 0.2 100 > "$O/leak.txt" 2>&1
  wait "$p"
fi
if has trace; then
  say "trace ($N_TRACE facts)"
  $CLI trace-avg --model "$M" --n "$N_TRACE" --window 2 --kinds mlp --out "$O/trace" --shard 0/2 --resume > "$O/trace-0.log" 2>&1 &
  a=$!
  $CLI trace-avg --model "$M" --n "$N_TRACE" --window 2 --kinds mlp --out "$O/trace" --shard 1/2 --resume > "$O/trace-1.log" 2>&1
  wait "$a"
  $CLI trace-avg --merge "$O/trace" > "$O/trace-merge.log" 2>&1
  tail -9 "$O/trace-merge.log"
fi
if has rome; then
  say "ROME ($N_CF cases) at layers $LAYERS, and unedited"
  lane() { for l in "$@"; do
    if [[ "$l" == none ]]; then $CLI eval counterfact --method none --n "$N_CF" --model "$M" --out "$O/cf/none" > "$O/cf-none.log" 2>&1
    else $CLI eval counterfact --method rome --layer "$l" --n "$N_CF" --model "$M" --hparams hparams/ROME/rome-fact-gpt2.json --out "$O/cf/layer$l" > "$O/cf-layer$l.log" 2>&1; fi
  done; }
  even=(none); odd=()
  for l in $LAYERS; do if (( l % 2 == 0 )); then even+=("$l"); else odd+=("$l"); fi; done
  lane "${even[@]}" & a=$!
  lane "${odd[@]}"
  wait "$a"
  dirs=("$O/cf/none"); for l in $LAYERS; do dirs+=("$O/cf/layer$l"); done
  $CLI summarize "${dirs[@]}" --md "$O/rome-sweep.md" --json "$O/rome-sweep.json"
  cat "$O/rome-sweep.md"
fi
say done
