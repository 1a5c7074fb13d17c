/**
 * Checks the notebooks: the committed ones are clean (no outputs, rome-ts kernelspec), and the executed copies that
 * scripts/run-notebooks.sh writes to build/notebooks/ ran without errors and carry every figure as both an
 * interactive Vega-Lite spec and a static SVG. Run `npm run build && scripts/run-notebooks.sh` before this test.
 */
import test from 'ava';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { svgSize } from '../lib/display/render.js';
import { MAX_FIGURE_WIDTH } from '../lib/display/spec.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SOURCE_DIR = join(ROOT, 'notebooks');
const EXECUTED_DIR = join(ROOT, 'build', 'notebooks');
const VEGA_LITE = 'application/vnd.vegalite.v5+json';
const SVG = 'image/svg+xml';

interface Output {
  output_type: string;
  name?: string;
  text?: string | string[];
  data?: Record<string, unknown>;
  ename?: string;
  evalue?: string;
}
interface NotebookCell {
  cell_type: string;
  source: string | string[];
  execution_count?: number | null;
  outputs?: Output[];
}
interface Notebook {
  cells: NotebookCell[];
  metadata: { kernelspec?: { name?: string; language?: string } };
}

const read = (file: string): Notebook => JSON.parse(readFileSync(file, 'utf8')) as Notebook;
const joined = (s: string | string[] | undefined): string => (Array.isArray(s) ? s.join('') : (s ?? ''));
const sources = readdirSync(SOURCE_DIR).filter((f) => f.endsWith('.ipynb')).sort();

test('there are notebooks, committed with outputs cleared and the rome-ts kernel', (t) => {
  t.true(sources.length > 0, 'no notebooks in notebooks/');
  for (const f of sources) {
    const nb = read(join(SOURCE_DIR, f));
    t.is(nb.metadata.kernelspec?.name, 'rome-ts', `${f}: kernelspec`);
    for (const [i, c] of nb.cells.entries()) {
      if (c.cell_type !== 'code') continue;
      t.deepEqual(c.outputs ?? [], [], `${f} cell ${i}: commit notebooks with outputs cleared`);
      t.is(c.execution_count ?? null, null, `${f} cell ${i}: execution_count should be cleared`);
    }
  }
});

test('every trace in the notebooks uses a window that fits the model (not the paper\'s 10 on a 6-layer model)', (t) => {
  let traces = 0;
  for (const f of sources) {
    for (const [i, c] of read(join(SOURCE_DIR, f)).cells.entries()) {
      const src = joined(c.source);
      if (c.cell_type !== 'code' || !/\b(averageIndirectEffect|tracePrompt|causalTrace)\(/.test(src)) continue;
      traces++;
      t.regex(src, /windows: \{[^}]*(fittingWindow|WINDOW|\bW\b)/, `${f} cell ${i} traces without a window that fits the model`);
    }
  }
  t.true(traces >= 4, `expected the traces of notebooks 02, 03 and 06, found ${traces}`);
});

for (const f of sources) {
  test(`${f}: executed without errors, execution counts, every figure has Vega-Lite + SVG within ${MAX_FIGURE_WIDTH} px`, (t) => {
    const executed = join(EXECUTED_DIR, f);
    if (!existsSync(executed)) {
      t.fail(`${executed} is missing: run \`npm run build && scripts/run-notebooks.sh\` first (it executes notebooks/ into build/notebooks/)`);
      return;
    }
    if (statSync(executed).mtimeMs < statSync(join(SOURCE_DIR, f)).mtimeMs) {
      t.fail(`${executed} is older than notebooks/${f}: rerun scripts/run-notebooks.sh`);
      return;
    }
    const nb = read(executed);
    const source = read(join(SOURCE_DIR, f));
    t.is(nb.cells.length, source.cells.length, 'executed copy does not match the source notebook');
    let figures = 0;
    let lastCount = 0;
    for (const [i, c] of nb.cells.entries()) {
      if (c.cell_type !== 'code') continue;
      t.is(joined(c.source), joined(source.cells[i]!.source), `cell ${i} differs from notebooks/${f}`);
      // In [n]: the kernel sends execute_input, so nbclient records increasing execution counts.
      t.true(typeof c.execution_count === 'number' && c.execution_count > lastCount, `cell ${i}: execution_count ${c.execution_count} (previous ${lastCount})`);
      lastCount = c.execution_count ?? lastCount;
      for (const o of c.outputs ?? []) {
        t.not(o.output_type, 'error', `cell ${i} raised ${o.ename}: ${o.evalue}`);
        const data = o.data ?? {};
        if (!(VEGA_LITE in data) && !(SVG in data)) continue;
        figures++;
        t.true(VEGA_LITE in data && SVG in data, `cell ${i}: a figure output must carry both ${VEGA_LITE} and ${SVG}`);
        const spec = data[VEGA_LITE];
        t.true(typeof spec === 'object' && spec !== null && !Array.isArray(spec), `cell ${i}: the Vega-Lite spec must be a JSON object`);
        t.regex(String((spec as { $schema?: unknown }).$schema), /vega-lite\/v5/);
        const svg = joined(data[SVG] as string | string[]);
        t.regex(svg, /^<svg[\s\S]*<\/svg>\s*$/, `cell ${i}: invalid SVG`);
        t.regex(svg, /class="mark-/, `cell ${i}: the SVG has no marks`);
        const { width } = svgSize(svg);
        t.true(width <= MAX_FIGURE_WIDTH, `cell ${i}: figure ${Math.round(width)} px wide (limit ${MAX_FIGURE_WIDTH}: JupyterLab's output area)`);
        t.true('text/plain' in data, `cell ${i}: figures also need text/plain`);
      }
    }
    t.true(figures > 0, `${f} produced no figures`);
  });
}
