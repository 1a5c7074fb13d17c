#!/usr/bin/env bash
# Runs the recipe-search variants (search.py) in parallel on one GPU and packs the results into $OUT/rs-<wave>.tgz
# (the device tool returns at most 8 files). Usage on the GPU machine, from the repository root, with
# build/recipe-search carried:  WAVE=1 bash build/recipe-search/run.sh   (then WAVE=2).
# Each run is ~2 min on an H100 with 12–14 at once; LIMIT (s) stops a wave that overruns and keeps what finished.
set -uo pipefail
cd "$(dirname "$0")"
WAVE="${WAVE:-1}"
R="/tmp/rs-$WAVE"
mkdir -p "$R"
job() { local name=$1; shift; echo "python3 search.py --out $R/$name.json $*"; }
{
  if [ "$WAVE" = 1 ]; then
    for s in 1 2; do
      job base-s$s --data t6 --seed $s
      job t16-s$s --data t16 --seed $s
      job drop10-s$s --data t6 --dropout 0.1 --seed $s
      job ow1-s$s --data t6 --ow 1 --seed $s
      job fs80-s$s --data fs80 --seed $s
      job align30-s$s --data t6 --align 0.3 --seed $s
      job ls10-s$s --data t6 --ls 0.1 --seed $s
    done
    for s in 1 2; do
      job fs70-s$s --data fs70 --seed $s
      job ow8-s$s --data t6 --ow 8 --seed $s
      job lr1e3-s$s --data t6 --lr 1e-3 --seed $s
      job wd03-s$s --data t6 --wd 0.3 --seed $s
      job d320-s$s --data t6 --d 320 --heads 5 --steps 1650 --seed $s
      job l8-s$s --data t6 --layers 8 --steps 1860 --seed $s
      job steps5k-s$s --data t6 --steps 5000 --seed $s
      job base-s$((s + 2)) --data t6 --seed $((s + 2))
    done
  else
    for s in 3 4 5 6; do job ow8-s$s --data t6 --ow 8 --seed $s; done
    for s in 1 2 3 4; do job ow8drop10-s$s --data t6 --ow 8 --dropout 0.1 --seed $s; done
    for s in 3 4; do job drop10-s$s --data t6 --dropout 0.1 --seed $s; done
    for s in 1 2; do job ow16-s$s --data t6 --ow 16 --seed $s; done
  fi
} > "$R/jobs.txt"
timeout "${LIMIT:-450}" xargs -P "${P:-14}" -I{} bash -c "{} >> $R/log.txt 2>&1" < "$R/jobs.txt"
pkill -f search.py
sleep 2
cp "$R/log.txt" "$OUT/log-$WAVE.txt"
tar czf "$OUT/rs-$WAVE.tgz" -C "$R" .
