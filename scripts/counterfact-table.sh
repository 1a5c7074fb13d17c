#!/usr/bin/env bash
# The CounterFact table on the bundled model: every method over the first N cases of the edit split, in two lanes
# (ROME alone; FT, FT+L, KN in sequence), then the summary with 95% CIs into results/.
# Env: N (cases for FT/FT+L/KN, default 500), N_ROME (default = N), OUT (default out/counterfact), EXTRA (more eval flags).
# Resumable: rerunning skips finished cases.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-500}"
N_ROME="${N_ROME:-$N}"
OUT="${OUT:-out/counterfact}"
CLI="node dist/lib/cli/main.js"
test -f dist/lib/cli/main.js || npm run build
mkdir -p "$OUT" results
( $CLI eval counterfact --method rome --n "$N_ROME" --out "$OUT/rome" ${EXTRA:-} ) > "$OUT/rome.log" 2>&1 &
lane=$!
for m in ft ft-l kn; do
  $CLI eval counterfact --method "$m" --n "$N" --out "$OUT/$m" ${EXTRA:-} > "$OUT/$m.log" 2>&1
done
wait "$lane"
$CLI summarize "$OUT/rome" "$OUT/ft" "$OUT/ft-l" "$OUT/kn" --md results/counterfact-table.md --json results/counterfact-table.json
cat results/counterfact-table.md
