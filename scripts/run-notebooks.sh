#!/usr/bin/env bash
# Execute every notebook in notebooks/ with the rome-ts kernel into build/notebooks/ (outputs kept there, never
# committed); fails on the first cell error. Needs: `npm run build`, Debian's jupyter-nbconvert +
# python3-nbclient + jupyter-client (for /usr/bin/python3). Registers the kernel spec (idempotent) first.
# Env: PYTHON (default /usr/bin/python3), ROME_TS_MODEL (model the kernel loads), NOTEBOOK_TIMEOUT (s per cell),
# NOTEBOOK_STARTUP_TIMEOUT (s for the kernel to start; nbclient's default of 60 is too short on a loaded machine).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-/usr/bin/python3}"
OUT=build/notebooks
if [ ! -f dist/kernel/launcher.js ]; then
  echo "run-notebooks: dist/kernel/launcher.js is missing: run \`npm run build\` first" >&2
  exit 1
fi
node --input-type=module -e "
  const { runKernelCommand } = await import('./dist/lib/cli/kernelCommand.js');
  process.exit(await runKernelCommand(['install', '--python', process.argv[1]]));
" "$PYTHON"
mkdir -p "$OUT"
shopt -s nullglob
notebooks=(notebooks/*.ipynb)
if [ ${#notebooks[@]} -eq 0 ]; then
  echo "run-notebooks: no notebooks in notebooks/" >&2
  exit 1
fi
for nb in "${notebooks[@]}"; do
  echo "run-notebooks: executing $nb"
  "$PYTHON" -m jupyter nbconvert --to notebook --execute \
    --ExecutePreprocessor.kernel_name=rome-ts \
    --ExecutePreprocessor.timeout="${NOTEBOOK_TIMEOUT:-600}" \
    --ExecutePreprocessor.startup_timeout="${NOTEBOOK_STARTUP_TIMEOUT:-300}" \
    --output-dir "$OUT" "$nb"
done
echo "run-notebooks: executed ${#notebooks[@]} notebook(s) into $OUT"
