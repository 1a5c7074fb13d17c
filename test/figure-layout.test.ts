/**
 * Every figure the notebooks draw, built from synthetic results shaped like the bundled model's (6 layers) and
 * like GPT-2 XL's (48 layers), rendered headlessly with vega: the rendered SVG must fit JupyterLab's output area
 * (MAX_FIGURE_WIDTH px at a 1366-px window with the file browser open), and the specs must keep the readability
 * rules of issue 18 (opaque legend swatches, integer layer ticks, no quote characters in labels, every series of a
 * line chart distinguishable when lines coincide, categories as bars).
 */
import test from 'ava';
import { plot } from '../lib/display/index.js';
import { MAX_FIGURE_WIDTH, type JsonValue, type VegaLiteSpec } from '../lib/display/spec.js';
import { renderVegaLiteSvg, svgSize } from '../lib/display/render.js';
import { aieHeatmapSpec, aieLineSpec, severedSpec, tracePanelsSpec, type AverageEffects, type CausalTraceResult, type StateKind } from '../lib/trace/index.js';
import { BUCKETS } from '../lib/trace/averageEffects.js';

const TOKENS = ['The', ' E', 'iff', 'el', ' Tower', ' is', ' located', ' in', ' the', ' city', ' of'];

function wave(n: number, phase: number, scale = 0.1): number[] {
  return Array.from({ length: n }, (_, i) => scale * Math.abs(Math.sin(i * 0.7 + phase)));
}

function traceResult(kind: StateKind, nLayer: number): CausalTraceResult {
  return {
    scores: TOKENS.map((_, t) => wave(nLayer, t).map((v) => 0.01 + v)),
    pStar: 0.42,
    pLow: 0.01,
    answer: { id: 5, token: ' Antarctica' },
    tokens: TOKENS,
    subjectRange: { start: 1, end: 5 },
    kind,
    window: kind === 'hidden' ? 1 : 2,
    noise: 0.1,
    samples: 10,
    seed: 0,
    prompt: TOKENS.join(''),
    subject: 'Eiffel Tower',
  };
}

function averageEffects(nLayer: number): AverageEffects {
  const kind = (k: StateKind) => ({
    kind: k,
    window: k === 'hidden' ? 1 : 2,
    buckets: BUCKETS.map((b, i) => ({ name: b.name, label: b.label, count: 20, meanIE: wave(nLayer, i), ci: wave(nLayer, i, 0.02), meanScore: wave(nLayer, i) })),
  });
  const curve = (p: number) => ({ count: 20, mean: wave(nLayer, p), ci: wave(nLayer, p, 0.02) });
  return {
    nLayer,
    nFacts: 25,
    nKnown: 20,
    nSkipped: 5,
    meanPStar: 0.4,
    meanPLow: 0.05,
    ate: 0.35,
    ateCI: 0.05,
    kinds: { hidden: kind('hidden'), mlp: kind('mlp'), attn: kind('attn') },
    severed: { ordinary: curve(0), mlpSevered: curve(1), attnSevered: curve(2) },
    noise: 0.1,
    samples: 10,
  };
}

const layers = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Every figure of notebooks 01-06, as the notebooks build them, for a model with `nLayer` layers. */
function notebookFigures(nLayer: number): [string, VegaLiteSpec][] {
  const avg = averageEffects(nLayer);
  const top = [' London', ' Paris', ' the', ' a', ' Rome', ',', ' New', ' Berlin'];
  return [
    ['01 next-token bars', plot.bar(top.map(plot.tokenLabel), top.map((_, i) => 0.5 / (i + 1)), { title: 'next-token distribution', xTitle: 'probability' })],
    [
      '01 ablation lines',
      plot.line({ 'MLP zeroed at the last subject token': wave(nLayer, 0), clean: wave(nLayer, 0).map(() => 0.2) }, { x: layers(nLayer), title: `p(${plot.tokenLabel(' Paris')}) when one layer's MLP is ablated`, xTitle: 'layer', yTitle: 'probability' }),
    ],
    ['01 logit lens', plot.heatmap(layers(nLayer).map((l) => wave(TOKENS.length, l)), { rowLabels: layers(nLayer).map((l) => `blocks.${l}`), colLabels: TOKENS, xTitle: 'token', yTitle: 'residual stream after', title: 'logit lens', valueTitle: 'p', showValues: false })],
    ['02 Figure 1 panels', tracePanelsSpec((['hidden', 'mlp', 'attn'] as const).map((k) => traceResult(k, nLayer)))],
    ['03 Figure 2 lines', aieLineSpec(avg)],
    ['03 Figure 2 heatmaps', aieHeatmapSpec(avg)],
    ['03 Figure 3 severed', severedSpec(avg.severed!)],
    ['04 v* losses', plot.line({ loss: wave(25, 0), nll: wave(25, 0), kl: wave(25, 0).map(() => 0) }, { title: 'v* optimisation', xTitle: 'step', yTitle: 'loss' })],
    ['05 CounterFact bars', plot.groupedBar(['ROME', 'FT', 'FT+L', 'KN', 'GPT-2'], { ES: [90, 80, 70, 50, 20], PS: [80, 60, 50, 40, 20], NS: [70, 50, 60, 70, 80] }, { yTitle: 'score ×100', title: 'efficacy / generalisation / specificity per method' })],
    ['06 layer sweep', plot.line({ efficacy: wave(nLayer, 0), paraphrase: wave(nLayer, 1), neighbourhood: wave(nLayer, 2) }, { x: layers(nLayer), xTitle: 'edited layer', yTitle: 'score ×100', title: 'ROME at each layer' })],
    ['06 causal trace', plot.line({ 'MLP AIE, last subject token': wave(nLayer, 0) }, { x: layers(nLayer), xTitle: 'layer', yTitle: 'AIE', title: 'causal trace' })],
  ];
}

/** Every object inside a spec (depth-first), to check encodings wherever they are nested. */
function* objects(v: JsonValue): Generator<{ [key: string]: JsonValue }> {
  if (Array.isArray(v)) for (const x of v) yield* objects(x);
  else if (v !== null && typeof v === 'object') {
    yield v;
    for (const x of Object.values(v)) yield* objects(x);
  }
}

/** Text a reader sees: titles, subtitles, label expressions and label-like data fields. */
function visibleStrings(spec: VegaLiteSpec): string[] {
  const out: string[] = [];
  for (const o of objects(spec)) {
    for (const key of ['title', 'subtitle', 'text', 'label', 'bucket', 'series', 'token', 'category']) {
      const v = o[key];
      if (typeof v === 'string') out.push(v);
    }
    if (typeof o.labelExpr === 'string') {
      // Labels are given as a JSON array inside the expression: check the labels themselves.
      const m = /^(\[.*\])\[datum\.value\]$/.exec(o.labelExpr);
      if (m) out.push(...(JSON.parse(m[1]!) as string[]));
    }
  }
  return out;
}

for (const nLayer of [6, 48]) {
  test(`every notebook figure fits ${MAX_FIGURE_WIDTH} px (${nLayer}-layer model)`, async (t) => {
    for (const [name, spec] of notebookFigures(nLayer)) {
      const { width, height } = svgSize(await renderVegaLiteSvg(spec));
      t.log(`${name}: ${Math.round(width)} x ${Math.round(height)} px`);
      t.true(width > 100 && height > 50, `${name}: rendered ${width}x${height}`);
      t.true(width <= MAX_FIGURE_WIDTH, `${name}: ${width} px wide (limit ${MAX_FIGURE_WIDTH})`);
    }
  });
}

test('figures with several series or colour scales draw their legends (one per figure or panel)', async (t) => {
  const figures = new Map(notebookFigures(6));
  const legends = async (name: string): Promise<number> => {
    const svg = await renderVegaLiteSvg(figures.get(name)!);
    return (svg.match(/class="mark-group role-legend"/g) ?? []).length;
  };
  t.is(await legends('03 Figure 2 lines'), 1, 'Figure 2: one shared bucket legend');
  t.is(await legends('02 Figure 1 panels'), 3, 'Figure 1: a colour legend under each panel');
  t.is(await legends('03 Figure 3 severed'), 1);
  t.is(await legends('04 v* losses'), 1, 'one legend for colour + dashes');
  t.is(await legends('05 CounterFact bars'), 1);
});

test('the width check fails for a figure wider than the limit', async (t) => {
  const wide = plot.line([1, 2, 3], { width: MAX_FIGURE_WIDTH + 50 });
  t.true(svgSize(await renderVegaLiteSvg(wide)).width > MAX_FIGURE_WIDTH);
});

test('readability: opaque legend swatches, integer layer ticks, no quotes in labels, bars for categories', (t) => {
  for (const [name, spec] of notebookFigures(6)) {
    for (const s of visibleStrings(spec)) t.false(/["“”]/.test(s), `${name}: label with a quote character: ${s}`);
    for (const o of objects(spec)) {
      const field = o.field;
      const title = typeof o.title === 'string' ? o.title : '';
      // A quantitative layer/step axis must not show fractional ticks.
      if ((field === 'layer' || field === 'x') && o.type === 'quantitative' && (field === 'layer' || /layer|step/.test(title))) {
        const axis = o.axis as { tickMinStep?: number; format?: string } | undefined;
        t.true(axis?.tickMinStep === 1 && axis.format === 'd', `${name}: integer axis for ${String(field)} (${title})`);
      }
      // Translucent marks (CI bands) must not lend their opacity to the legend.
      const mark = o.mark as { opacity?: number } | undefined;
      if (mark && typeof mark === 'object' && typeof mark.opacity === 'number' && mark.opacity < 1) {
        const color = (o.encoding as { color?: { legend?: { symbolOpacity?: number } | null } } | undefined)?.color;
        t.true(color === undefined || color.legend?.symbolOpacity === 1, `${name}: a translucent layer's legend needs opaque swatches`);
      }
    }
  }
  const aie = JSON.stringify(aieLineSpec(averageEffects(6)));
  t.regex(aie, /"symbolOpacity":1/, 'Figure 2 legend swatches must be opaque');
  // Coinciding series (v* loss = nll when kl = 0) must stay distinguishable: dashes differ per series.
  const losses = plot.line({ loss: [1, 2], nll: [1, 2] }) as { encoding: { strokeDash?: { field?: string } } };
  t.is(losses.encoding.strokeDash?.field, 'series');
  const bars = plot.groupedBar(['ROME', 'FT'], { ES: [1, 2], PS: [3, 4] }) as { mark: JsonValue };
  t.is(typeof bars.mark === 'object' ? (bars.mark as { type: string }).type : bars.mark, 'bar');
  t.is(plot.tokenLabel(' London'), '␣London');
  t.is(plot.tokenLabel('a\nb'), 'a\\nb');
});
