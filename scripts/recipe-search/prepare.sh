#!/usr/bin/env bash
# Builds the corpus variants of the recipe search and exports each as token streams + eval sets for search.py.
# Runs here (Node); writes build/recipe-search/<variant>/. All variants use build/tokenizer.json so that only the
# data changes between them. Needs build/corpus (npm run build:corpus) and build/tokenizer.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=build/recipe-search
mkdir -p "$OUT"
cp scripts/recipe-search/search.py scripts/recipe-search/run.sh "$OUT/"
npx tsx scripts/recipe-search/export.ts build/corpus build/tokenizer.json "$OUT/t6"
for v in "t16 --max-templates 16 --fact-share 0.88" "fs70 --max-templates 6 --fact-share 0.70" "fs80 --max-templates 6 --fact-share 0.80"; do
  set -- $v
  n=$1
  shift
  npx tsx scripts/build-corpus.ts --out "$OUT/corpus-$n" --tokens 1900000 --chars-per-token 2.65 --cf-cases 550 "$@" > "$OUT/corpus-$n.log" 2>&1
  npx tsx scripts/recipe-search/export.ts "$OUT/corpus-$n" build/tokenizer.json "$OUT/$n"
  rm -rf "$OUT/corpus-$n"
done
du -sh "$OUT"
