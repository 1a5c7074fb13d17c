#!/usr/bin/env bash
# Render an executed notebook (default: every one in build/notebooks/) to HTML and take a full-page headless
# Chromium screenshot of each, into build/screenshots/ (never committed), to check by eye that figures show.
# Needs Debian's jupyter-nbconvert and chromium. Usage: scripts/screenshot-notebook.sh [executed.ipynb ...]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-/usr/bin/python3}"
CHROMIUM="${CHROMIUM:-chromium}"
OUT=build/screenshots
mkdir -p "$OUT"
shopt -s nullglob
if [ $# -gt 0 ]; then notebooks=("$@"); else notebooks=(build/notebooks/*.ipynb); fi
if [ ${#notebooks[@]} -eq 0 ]; then
  echo "screenshot-notebook: no executed notebooks: run scripts/run-notebooks.sh first" >&2
  exit 1
fi
for nb in "${notebooks[@]}"; do
  stem="$(basename "$nb" .ipynb)"
  # nbconvert 6.5's HTML template passes inline SVG through an HTML sanitizer that strips its tags, so figures
  # are shown through an <img> with a data URI instead (live Jupyter front ends render the SVG directly).
  "$PYTHON" - "$nb" "$OUT/$stem.ipynb" <<'PY'
import base64, sys, nbformat
nb = nbformat.read(sys.argv[1], as_version=4)
for cell in nb.cells:
    for out in cell.get("outputs", []):
        svg = out.get("data", {}).get("image/svg+xml")
        if svg:
            b64 = base64.b64encode(svg.encode()).decode()
            out["data"]["text/html"] = '<img src="data:image/svg+xml;base64,%s">' % b64
nbformat.write(nb, sys.argv[2])
PY
  "$PYTHON" -m jupyter nbconvert --to html --output-dir "$OUT" --output "$stem" "$OUT/$stem.ipynb"
  html="$(cd "$OUT" && pwd)/$stem.html"
  png="$OUT/$stem.png"
  # Tall window: headless --screenshot captures the viewport only.
  "$CHROMIUM" --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --hide-scrollbars --window-size="${SHOT_WIDTH:-1100},${SHOT_HEIGHT:-4200}" \
    --screenshot="$png" "file://$html" 2>/dev/null
  echo "screenshot-notebook: $png"
done
