/**
 * Render check of executed notebooks in a real browser (headless Chromium): each notebook becomes one HTML page
 * laid out like a JupyterLab notebook in a 1366-px window with the file browser open (output area 910 px), whose
 * Vega-Lite outputs are rendered client-side by vega + vega-lite (the libraries JupyterLab's renderer is built on,
 * from rome-ts's own node_modules: no network). For each notebook it writes build/render-check/<name>.html and a
 * full-page screenshot <name>.png, and checks in the DOM that every figure rendered through Vega-Lite, fits the
 * output area, and that the page logged no console errors; build/render-check/report.json holds the results.
 *
 * JupyterLab itself is not a Debian package (only python3-jupyterlab-server and -pygments are), so this check
 * does not start JupyterLab; scripts/screenshot-notebook.sh keeps the nbconvert-HTML screenshots (static SVG).
 *
 * Usage: npx tsx scripts/render-check.ts [executed.ipynb ...]   (default: build/notebooks/*.ipynb, from
 * scripts/run-notebooks.sh). Needs Debian's chromium (CHROMIUM=path to override). Exit code 1 when a check fails.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MAX_FIGURE_WIDTH } from '../lib/display/spec.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = join(ROOT, 'build', 'render-check');
const CHROMIUM = process.env.CHROMIUM ?? 'chromium';
const WINDOW_WIDTH = 1366;
const VEGA_LITE_MIME = 'application/vnd.vegalite.v5+json';

interface Output {
  output_type: string;
  name?: string;
  text?: string | string[];
  data?: Record<string, unknown>;
  ename?: string;
  evalue?: string;
  traceback?: string[];
}
interface Cell {
  cell_type: string;
  source: string | string[];
  execution_count?: number | null;
  outputs?: Output[];
}

/** What the page reports about itself once every figure has been rendered (or failed). */
interface PageReport {
  figures: { index: number; ok: boolean; width: number; height: number; error?: string }[];
  consoleErrors: string[];
  pageHeight: number;
}

const joined = (s: string | string[] | undefined): string => (Array.isArray(s) ? s.join('') : (s ?? ''));
const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
// Terminal colours in tracebacks are not HTML.
const stripAnsi = (s: string): string => s.replace(/\x1b\[[0-9;]*m/g, '');

/** The notebook as one HTML page; figures are placeholders filled in by the page script. */
function notebookHtml(title: string, cells: Cell[], libs: string): { html: string; figures: number } {
  const specs: unknown[] = [];
  const body: string[] = [];
  for (const c of cells) {
    if (c.cell_type === 'markdown') {
      body.push(`<div class="cell md"><pre>${esc(joined(c.source))}</pre></div>`);
      continue;
    }
    if (c.cell_type !== 'code') continue;
    const prompt = `[${c.execution_count ?? ' '}]:`;
    const outs: string[] = [];
    for (const o of c.outputs ?? []) {
      if (o.output_type === 'stream') outs.push(`<pre class="stream ${o.name}">${esc(joined(o.text))}</pre>`);
      else if (o.output_type === 'error') outs.push(`<pre class="stream stderr">${esc(stripAnsi((o.traceback ?? [`${o.ename}: ${o.evalue}`]).join('\n')))}</pre>`);
      else {
        const d = o.data ?? {};
        const out = o.output_type === 'execute_result' ? `<span class="prompt">[${c.execution_count ?? ' '}]:</span>` : '';
        if (VEGA_LITE_MIME in d) {
          outs.push(`<div class="figure" data-figure="${specs.length}"></div>`);
          specs.push(d[VEGA_LITE_MIME]);
        } else if ('text/html' in d) outs.push(`<div class="html">${joined(d['text/html'] as string | string[])}</div>`);
        else if ('text/plain' in d) outs.push(`<pre class="result">${out}${esc(joined(d['text/plain'] as string | string[]))}</pre>`);
      }
    }
    body.push(
      `<div class="cell code"><div class="input"><span class="prompt">${esc(prompt)}</span><pre>${esc(joined(c.source))}</pre></div>` +
        `<div class="outputs">${outs.join('\n')}</div></div>`,
    );
  }
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
  body { margin: 0; font: 13px system-ui, sans-serif; background: #fff; }
  /* JupyterLab at ${WINDOW_WIDTH} px with the file browser open leaves ~${MAX_FIGURE_WIDTH + 10} px for outputs. */
  main { margin-left: ${WINDOW_WIDTH - 60 - (MAX_FIGURE_WIDTH + 10) - 120}px; width: ${MAX_FIGURE_WIDTH + 10 + 60}px; padding: 8px 0; }
  .cell { margin: 6px 0; } .input { display: flex; background: #f5f5f5; border: 1px solid #e0e0e0; }
  .prompt { color: #307fc1; width: 60px; flex: none; font-family: monospace; padding: 4px; }
  .input pre { margin: 4px; white-space: pre-wrap; } .md pre { white-space: pre-wrap; font-family: inherit; }
  .outputs { margin-left: 60px; width: ${MAX_FIGURE_WIDTH + 10}px; overflow-x: auto; }
  .stream { margin: 2px 0; white-space: pre-wrap; } .stderr { background: #fdd; }
  .figure { margin: 4px 0; display: inline-block; }
</style></head><body><main>${body.join('\n')}</main>
<pre id="render-report" hidden></pre>
<script>
  window.__errors = [];
  const origError = console.error.bind(console);
  console.error = (...a) => { window.__errors.push(a.map(String).join(' ')); origError(...a); };
  window.addEventListener('error', (e) => window.__errors.push('error: ' + e.message));
  window.addEventListener('unhandledrejection', (e) => window.__errors.push('unhandled rejection: ' + String(e.reason)));
</script>
<script>${libs}</script>
<script>
  const specs = ${JSON.stringify(specs).replace(/</g, '\\u003c')};
  (async () => {
    const figures = [];
    for (const el of document.querySelectorAll('.figure')) {
      const index = Number(el.dataset.figure);
      try {
        const compiled = vegaLite.compile(specs[index]).spec;
        const view = new vega.View(vega.parse(compiled), { renderer: 'canvas', container: el, hover: true });
        await view.runAsync();
        const canvas = el.querySelector('canvas');
        if (!canvas) throw new Error('no canvas rendered');
        const box = canvas.getBoundingClientRect();
        figures.push({ index, ok: true, width: Math.round(box.width), height: Math.round(box.height) });
      } catch (e) {
        figures.push({ index, ok: false, width: 0, height: 0, error: String(e && e.message || e) });
      }
    }
    const report = document.getElementById('render-report');
    report.textContent = JSON.stringify({ figures, consoleErrors: window.__errors, pageHeight: document.documentElement.scrollHeight });
    document.body.dataset.rendered = 'true';
  })();
</script></body></html>`;
  return { html, figures: specs.length };
}

function chromium(args: string[]): { ok: boolean; stdout: string; stderr: string } {
  const r = spawnSync(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--hide-scrollbars', ...args], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    timeout: 180_000,
  });
  return { ok: r.status === 0, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

function main(): number {
  const args = process.argv.slice(2);
  const notebooks = args.length ? args.map((a) => resolve(a)) : readdirSync(join(ROOT, 'build', 'notebooks')).filter((f) => f.endsWith('.ipynb')).sort().map((f) => join(ROOT, 'build', 'notebooks', f));
  if (notebooks.length === 0) {
    console.error('render-check: no executed notebooks: run scripts/run-notebooks.sh first');
    return 1;
  }
  if (spawnSync(CHROMIUM, ['--version'], { stdio: 'ignore' }).status !== 0) {
    console.error(`render-check: ${CHROMIUM} not found (apt-get install -y chromium, or set CHROMIUM)`);
    return 1;
  }
  const require = createRequire(import.meta.url);
  const libs = [require.resolve('vega/build/vega.min.js'), require.resolve('vega-lite/build/vega-lite.min.js')]
    .map((f) => readFileSync(f, 'utf8').replace(/<\/script/gi, '<\\/script'))
    .join('\n;\n');
  mkdirSync(OUT, { recursive: true });
  const results: Record<string, unknown>[] = [];
  let failed = false;
  for (const nb of notebooks) {
    const name = basename(nb, '.ipynb');
    const cells = (JSON.parse(readFileSync(nb, 'utf8')) as { cells: Cell[] }).cells;
    const { html, figures } = notebookHtml(name, cells, libs);
    const htmlPath = join(OUT, `${name}.html`);
    writeFileSync(htmlPath, html);
    const url = pathToFileURL(htmlPath).href;
    // Virtual time lets the page's async rendering finish before the DOM is dumped.
    const dom = chromium([`--window-size=${WINDOW_WIDTH},900`, '--virtual-time-budget=60000', '--dump-dom', url]);
    const m = /<pre id="render-report" hidden="">([\s\S]*?)<\/pre>/.exec(dom.stdout);
    const problems: string[] = [];
    let report: PageReport | null = null;
    if (!m || m[1]!.trim() === '') problems.push(`the page did not finish rendering (chromium ${dom.ok ? 'ok' : 'failed'}: ${dom.stderr.trim().split('\n').slice(-3).join(' | ')})`);
    else {
      report = JSON.parse(m[1]!.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')) as PageReport;
      if (report.figures.length !== figures) problems.push(`${report.figures.length} of ${figures} figures reported`);
      for (const f of report.figures) {
        if (!f.ok) problems.push(`figure ${f.index}: ${f.error}`);
        else if (f.width > MAX_FIGURE_WIDTH) problems.push(`figure ${f.index}: ${f.width} px wide (limit ${MAX_FIGURE_WIDTH})`);
      }
      for (const e of report.consoleErrors) problems.push(`console error: ${e}`);
    }
    const png = join(OUT, `${name}.png`);
    const height = Math.min(16_000, Math.max(900, (report?.pageHeight ?? 4000) + 20));
    const shot = chromium([`--window-size=${WINDOW_WIDTH},${height}`, '--virtual-time-budget=60000', `--screenshot=${png}`, url]);
    if (!shot.ok) problems.push(`screenshot failed: ${shot.stderr.trim().split('\n').slice(-2).join(' | ')}`);
    const widths = report?.figures.map((f) => f.width) ?? [];
    console.log(`render-check: ${name}: ${report?.figures.filter((f) => f.ok).length ?? 0}/${figures} figures rendered, widest ${widths.length ? Math.max(...widths) : 0} px, ${report?.consoleErrors.length ?? '?'} console errors -> ${png}`);
    for (const p of problems) console.log(`  FAIL ${p}`);
    failed ||= problems.length > 0;
    results.push({ notebook: name, figures, report, problems, screenshot: png });
  }
  writeFileSync(join(OUT, 'report.json'), JSON.stringify(results, null, 1));
  return failed ? 1 : 0;
}

process.exit(main());
