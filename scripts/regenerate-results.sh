#!/usr/bin/env bash
# Regenerates the measurements behind results/ after the bundled model is retrained, in two lanes (one per core):
#   1. causal trace over the first N_TRACE known facts (two shards) → results/trace/
#   2. ROME's layer by the paper's rule (the layer where the MLP indirect effect at the last subject token peaks), from
#      a second, MLP-only trace with window 1: with window 2 the windows of layers l and l+1 share MLP l, so a peak in
#      one MLP shows as a near-tie that noise breaks either way. Written into hparams/ROME/rome-fact-gpt2.json
#      ("layer"; its "layerChosenBy" text is for a person to update)
#   3. model card (lane B) and the CounterFact table: ROME in lane A; FT, FT+L, KN in lane B
#   4. layer sweep (Figure 5), zsRE, and GE/RS on a subset
# Tables land in $OUT/*.md and results/*.json (overwritten: regenerating them is the point); the prose of results/*.md is written by a person from them.
# Env: N (CounterFact cases, 500), N_TRACE (140), N_SWEEP (20), N_ZSRE (100), N_GEN (40), OUT (out/results),
#      STAGES (default "trace card counterfact sweep zsre gen"). Resumable: every step skips finished records.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-500}"
N_TRACE="${N_TRACE:-140}"
N_SWEEP="${N_SWEEP:-20}"
N_ZSRE="${N_ZSRE:-100}"
N_GEN="${N_GEN:-40}"
OUT="${OUT:-out/results}"
STAGES=" ${STAGES:-trace card counterfact sweep zsre gen} "
CLI="node dist/lib/cli/main.js"
HP=hparams/ROME/rome-fact-gpt2.json
say() { echo "[$(date -u +%H:%M:%S)] $*"; }
has() { [[ "$STAGES" == *" $1 "* ]]; }
npm run build > /dev/null
mkdir -p "$OUT" results/trace

if has trace; then
  say "trace: first $N_TRACE known_1000 facts, window 2, two shards"
  $CLI trace-avg --n "$N_TRACE" --window 2 --out "$OUT/trace" --shard 0/2 --resume > "$OUT/trace-0.log" 2>&1 &
  a=$!
  $CLI trace-avg --n "$N_TRACE" --window 2 --out "$OUT/trace" --shard 1/2 --resume > "$OUT/trace-1.log" 2>&1
  wait "$a"
  $CLI trace-avg --merge "$OUT/trace" > "$OUT/trace-merge.log" 2>&1
  cp "$OUT/trace/summary.json" "results/trace/summary-window2-n$N_TRACE.json"
  cp "$OUT"/trace/*.svg results/trace/
  say "trace: window 1, MLP only (for the edit layer)"
  $CLI trace-avg --n "$N_TRACE" --window 1 --kinds mlp --out "$OUT/trace-w1" --shard 0/2 --resume > "$OUT/trace-w1-0.log" 2>&1 &
  a=$!
  $CLI trace-avg --n "$N_TRACE" --window 1 --kinds mlp --out "$OUT/trace-w1" --shard 1/2 --resume > "$OUT/trace-w1-1.log" 2>&1
  wait "$a"
  $CLI trace-avg --merge "$OUT/trace-w1" > "$OUT/trace-w1-merge.log" 2>&1
  cp "$OUT/trace-w1/summary.json" "results/trace/summary-window1-mlp-n$N_TRACE.json"
  L=$(node -e "
    const s = JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8'));
    const ie = s.kinds.mlp.buckets.find((b) => b.name === 'last_subject').meanIE;
    console.log(ie.indexOf(Math.max(...ie)));" "$OUT/trace-w1/summary.json")
  node -e "
    const fs = require('fs');
    const h = JSON.parse(fs.readFileSync(process.argv[1], 'utf8'));
    h.layer = Number(process.argv[2]);
    fs.writeFileSync(process.argv[1], JSON.stringify(h, null, 2) + '\n');" "$HP" "$L"
  say "trace done (ATE $(node -e "const s=require('./$OUT/trace/summary.json'); console.log(s.ate.toFixed(3), '±', s.ateCI.toFixed(3), 'known', s.nKnown)")); ROME layer by the paper's rule: $L"
fi

lane_b() {
  if has card; then
    say "model card"
    npx tsx scripts/model-card.ts > "$OUT/card.log" 2>&1
  fi
  if has counterfact; then
    for m in ft ft-l kn; do
      say "CounterFact $m ($N cases)"
      $CLI eval counterfact --method "$m" --n "$N" --out "$OUT/counterfact/$m" > "$OUT/cf-$m.log" 2>&1
    done
  fi
}
if has counterfact; then
  say "CounterFact rome ($N cases, layer $(node -e "console.log(require('./$HP').layer)"))"
  $CLI eval counterfact --method rome --n "$N" --out "$OUT/counterfact/rome" > "$OUT/cf-rome.log" 2>&1 &
  a=$!
  lane_b
  wait "$a"
  $CLI summarize "$OUT"/counterfact/{rome,ft,ft-l,kn} --md "$OUT/counterfact-table.md" --json results/counterfact-table.json --force
elif has card; then
  lane_b
fi

if has sweep; then
  say "layer sweep ($N_SWEEP cases per layer)"
  MD="$OUT/layer-sweep.md" N="$N_SWEEP" OUT="$OUT/layer-sweep" bash scripts/layer-sweep.sh > "$OUT/layer-sweep.log" 2>&1
fi

if has zsre; then
  say "zsRE ($N_ZSRE records)"
  $CLI eval zsre --method rome --n "$N_ZSRE" --shard 0/2 --out "$OUT/zsre/rome" > "$OUT/zsre-rome-0.log" 2>&1 &
  a=$!
  $CLI eval zsre --method rome --n "$N_ZSRE" --shard 1/2 --out "$OUT/zsre/rome" > "$OUT/zsre-rome-1.log" 2>&1
  wait "$a"
  $CLI eval zsre --method ft --n "$N_ZSRE" --out "$OUT/zsre/ft" > "$OUT/zsre-ft.log" 2>&1 &
  a=$!
  $CLI eval zsre --method ft-l --n "$N_ZSRE" --out "$OUT/zsre/ft-l" > "$OUT/zsre-ft-l.log" 2>&1
  wait "$a"
  $CLI summarize "$OUT"/zsre/{rome,ft,ft-l} --md "$OUT/zsre-table.md" --json results/zsre-table.json --force
fi

if has gen; then
  say "GE/RS ($N_GEN cases)"
  ( for m in rome ft-l; do $CLI eval counterfact --method "$m" --n "$N_GEN" --generation --out "$OUT/cf-gen/$m" > "$OUT/gen-$m.log" 2>&1; done ) &
  a=$!
  for m in ft kn; do $CLI eval counterfact --method "$m" --n "$N_GEN" --generation --out "$OUT/cf-gen/$m" > "$OUT/gen-$m.log" 2>&1; done
  wait "$a"
  $CLI summarize "$OUT"/cf-gen/{rome,ft,ft-l,kn} --md "$OUT/counterfact-generation.md" --json "results/counterfact-generation-n$N_GEN.json" --force
fi
say "done"
