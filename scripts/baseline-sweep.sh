#!/usr/bin/env bash
# Tunes the fine-tuning baselines for a model, so the CounterFact comparison with ROME is fair (issue 14):
#   1. FT (unconstrained): the edited layer, swept over LAYERS on the first N cases;
#   2. FT+L: the L∞ norm bound ε, swept over EPSILONS at FT+L's layer (FTL_LAYER, default: FT's best layer).
# The best setting by the score S (harmonic mean of ES, PS, NS; ties broken by EM) is printed and written into the hparams files'
# "layer" / "normConstraint" fields (with a "…ChosenBy" note) unless WRITE=0.
# Two lanes (one per core). Resumable: rerunning skips finished cases.
# Env: MODEL (default the bundled model), N (cases per setting, 50), LAYERS (0 … nLayer−1), EPSILONS
#      ("5e-5 1e-4 5e-4 1e-3 5e-3 1e-2"), OUT (out/baseline-sweep), MD (results/baseline-sweep.md), STAGES ("ft ftl").
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${MODEL:-models/rome-fact-gpt2}"
N="${N:-50}"
OUT="${OUT:-out/baseline-sweep}"
MD="${MD:-results/baseline-sweep.md}"
EPSILONS="${EPSILONS:-5e-5 1e-4 5e-4 1e-3 5e-3 1e-2}"
STAGES=" ${STAGES:-ft ftl} "
WRITE="${WRITE:-1}"
CLI="node dist/lib/cli/main.js"
test -f dist/lib/cli/main.js || npm run build
test -f "$MODEL/config.json" || { echo "baseline-sweep: $MODEL/config.json not found" >&2; exit 2; }
L=$(node -e "console.log(JSON.parse(require('fs').readFileSync(process.argv[1],'utf8')).n_layer)" "$MODEL/config.json")
LAYERS="${LAYERS:-$(seq -s ' ' 0 $((L - 1)))}"
FT_HP=hparams/FT/rome-fact-gpt2_unconstr.json
FTL_HP=hparams/FT/rome-fact-gpt2_constr.json
mkdir -p "$OUT/hparams" "$(dirname "$MD")"
say() { echo "[$(date -u +%H:%M:%S)] $*"; }
has() { [[ "$STAGES" == *" $1 "* ]]; }
# Runs "method|setting|extra args" jobs in two lanes.
lanes() {
  local a=() b=() i=0
  for j in "$@"; do if (( i++ % 2 == 0 )); then a+=("$j"); else b+=("$j"); fi; done
  lane() { for j in "$@"; do IFS='|' read -r m dir args <<< "$j"
    # shellcheck disable=SC2086
    $CLI eval counterfact --method "$m" --n "$N" --model "$MODEL" --out "$OUT/$dir" $args > "$OUT/$dir.log" 2>&1 || { echo "failed: $j (see $OUT/$dir.log)" >&2; return 1; }
  done; }
  lane "${a[@]}" & local p=$!
  lane "${b[@]}"
  wait "$p"
}
# The setting with the highest S among summarize's JSON rows (arguments: JSON file, then the settings in row order;
# summarize's first row is the unedited model, from the first directory's pre-edit measurements).
best() {
  node -e "
    const rows = JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8')).rows.slice(1);
    const keys = process.argv.slice(2);
    let k = 0;
    // Ties in S (e.g. every setting at ES = 0) are broken by the efficacy magnitude EM.
    const key = (r) => [r.metrics.S.mean, r.metrics.EM.mean];
    rows.forEach((r, i) => { const [a, b] = key(r), [c, d] = key(rows[k]); if (a > c || (a === c && b > d)) k = i; });
    console.log(keys[k]);" "$@"
}
# Sets a field (and its note) of an hparams file.
setField() {
  node -e "
    const fs = require('fs');
    const [file, key, value, noteKey, note] = process.argv.slice(1);
    const h = JSON.parse(fs.readFileSync(file, 'utf8'));
    h[key] = Number(value);
    h[noteKey] = note;
    fs.writeFileSync(file, JSON.stringify(h, null, 2) + '\n');" "$@"
}

# Runs a sweep's jobs, tables them into $MD under a heading and prints the best setting.
# Arguments: name, heading, what the rows after the unedited one are, label of the best, then "job" and "key" pairs.
sweep() {
  local name="$1" heading="$2" rowsNote="$3" label="$4"; shift 4
  local jobs=() dirs=() keys=()
  while (( $# )); do jobs+=("$1"); IFS='|' read -r _ d _ <<< "$1"; dirs+=("$OUT/$d"); keys+=("$2"); shift 2; done
  lanes "${jobs[@]}" >&2
  $CLI summarize "${dirs[@]}" --md "$OUT/$name.md" --json "$OUT/$name.json" --force > /dev/null
  local b; b=$(best "$OUT/$name.json" "${keys[@]}")
  { echo "## $heading"; echo; echo "Rows: the unedited model, then $rowsNote."; echo; cat "$OUT/$name.md"; echo; echo "Best by S: $label $b."; echo; } >> "$MD"
  echo "$b"
}

{ echo "# Baseline tuning on $MODEL (first $N CounterFact edit cases per setting)"; echo; } > "$MD"
if has ft; then
  say "FT layer sweep: layers $LAYERS"
  args=()
  for l in $LAYERS; do args+=("ft|ft-layer$l|--layer $l --hparams $FT_HP" "$l"); done
  FT_BEST=$(sweep ft-layers "FT (unconstrained): edited layer" "layers $LAYERS" layer "${args[@]}")
  say "FT: best layer $FT_BEST"
  if [[ "$WRITE" == 1 ]]; then
    setField "$FT_HP" layer "$FT_BEST" layerChosenBy "Best score S of layers $LAYERS on the first $N CounterFact cases (scripts/baseline-sweep.sh; $MD)."
  fi
fi
if has ftl; then
  FTL_LAYER="${FTL_LAYER:-${FT_BEST:-$(node -e "console.log(require('./$FTL_HP').layer)")}}"
  say "FT+L ε sweep at layer $FTL_LAYER: $EPSILONS"
  args=()
  for e in $EPSILONS; do
    hp="$OUT/hparams/ft-l-eps$e.json"
    node -e "
      const fs = require('fs');
      const h = JSON.parse(fs.readFileSync(process.argv[1], 'utf8'));
      h.normConstraint = Number(process.argv[2]);
      if (!(h.normConstraint > 0)) throw new Error('bad epsilon ' + process.argv[2]);
      fs.writeFileSync(process.argv[3], JSON.stringify(h, null, 2) + '\n');" "$FTL_HP" "$e" "$hp"
    args+=("ft-l|ft-l-eps$e|--layer $FTL_LAYER --hparams $hp" "$e")
  done
  EPS_BEST=$(sweep ft-l-eps "FT+L: norm bound ε at layer $FTL_LAYER" "ε = $EPSILONS" "ε =" "${args[@]}")
  say "FT+L: best ε $EPS_BEST"
  if [[ "$WRITE" == 1 ]]; then
    setField "$FTL_HP" normConstraint "$EPS_BEST" normConstraintNote "Best score S of ε ∈ {$EPSILONS} at layer $FTL_LAYER on the first $N CounterFact cases (scripts/baseline-sweep.sh; $MD)."
    setField "$FTL_HP" layer "$FTL_LAYER" layerChosenBy "FT's best layer (scripts/baseline-sweep.sh; $MD)."
  fi
fi
say done
