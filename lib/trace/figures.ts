/**
 * Vega-Lite v5 specs for the paper's causal-tracing figures. Pure functions of result objects (no tensors), so
 * they work in notebooks (`display.vegaLite(spec)`), in the CLI (rendered to SVG), and on saved JSON.
 */
import { tokenLabel } from '../display/plot.js';
import { VEGA_LITE_SCHEMA, type JsonValue, type VegaLiteSpec } from '../display/spec.js';
import type { AverageEffects, CurveStats } from './averageEffects.js';
import type { CausalTraceResult } from './causalTrace.js';
import type { StateKind } from './engine.js';
import type { SeveredTraceResult } from './severed.js';

/** Colour scheme per kind, as in Figure 1: hidden purple, MLP green, attention red. */
export const KIND_SCHEME: Record<StateKind, string> = { hidden: 'purples', mlp: 'greens', attn: 'reds' };
/** Line/bar colour per kind. */
export const KIND_COLOR: Record<StateKind, string> = { hidden: '#6a51a3', mlp: '#238b45', attn: '#cb181d' };
const KIND_NAME: Record<StateKind, string> = { hidden: 'single restored layer', mlp: 'center of interval of 10 restored MLP layers', attn: 'center of interval of 10 restored attn layers' };
const KIND_TITLE: Record<StateKind, string> = {
  hidden: 'Impact of restoring state after corrupted input',
  mlp: 'Impact of restoring MLP after corrupted input',
  attn: 'Impact of restoring Attn after corrupted input',
};
const KIND_SHORT: Record<StateKind, string> = { hidden: 'hidden states', mlp: 'MLP', attn: 'attention' };
const BUCKET_COLORS = ['#1f77b4', '#17becf', '#d62728', '#ff7f0e', '#8c564b', '#2ca02c'];

/**
 * Plot width (px) of one panel when three sit side by side: with the axis labels, legends below the panels and
 * spacing, three panels stay within display/spec.ts's MAX_FIGURE_WIDTH (checked by test/figure-layout.test.ts).
 */
const PANEL_WIDTH = 180;

/** Layer-axis values to label: every layer on shallow models, every 5th or 10th on deep ones (labels collide). */
function layerTicks(nLayer: number): number[] | undefined {
  if (nLayer <= 16) return undefined;
  const every = nLayer <= 40 ? 5 : 10;
  return Array.from({ length: Math.ceil(nLayer / every) }, (_, i) => i * every);
}

/** Axis settings of an ordinal layer axis. */
function ordinalLayerAxis(nLayer: number): { [key: string]: JsonValue } {
  const ticks = layerTicks(nLayer);
  return { labelAngle: 0, ...(ticks ? { values: ticks } : {}) };
}

/** Legend whose swatches are opaque strokes, whatever the opacity of the marks (CI bands) it stands for. */
const OPAQUE_LEGEND = { symbolOpacity: 1, symbolType: 'stroke', symbolStrokeWidth: 3, symbolFillColor: null } as const;

/** Axis settings of a quantitative layer axis: integer ticks only (no 0.5 layers). */
const INTEGER_AXIS = { tickMinStep: 1, format: 'd' } as const;

/** A horizontal colour-gradient legend under a panel, as wide as the panel. */
function bottomGradientLegend(width: number): { [key: string]: JsonValue } {
  return { orient: 'bottom', direction: 'horizontal', gradientLength: Math.max(80, Math.min(width, 180)), titleLimit: width + 40 };
}

/** A Vega expression string literal (JSON escaping is valid in Vega expressions). */
function lit(s: string): string {
  return JSON.stringify(s);
}

/** Display labels of the tokens: visible whitespace, subject tokens starred. */
export function tokenLabels(tokens: readonly string[], range: { start: number; end: number }): string[] {
  return tokens.map((t, i) => `${JSON.stringify(t).slice(1, -1)}${i >= range.start && i < range.end ? '*' : ''}`);
}

function xAxisTitle(r: CausalTraceResult): string {
  return r.kind === 'hidden' || r.window === 1 ? 'single restored layer' : KIND_NAME[r.kind].replace('10', String(r.window));
}

function answerLine(r: { answer: { token: string }; pStar: number; pLow: number }): string {
  return `answer ${tokenLabel(r.answer.token)}: p* = ${r.pStar.toFixed(4)}, p_low = ${r.pLow.toFixed(4)}`;
}

function heatmapBody(r: CausalTraceResult, panel = false): VegaLiteSpec {
  const labels = tokenLabels(r.tokens, r.subjectRange);
  const nLayer = r.scores[0]?.length ?? 1;
  const values: JsonValue[] = [];
  let max = r.pLow;
  r.scores.forEach((row, t) =>
    row.forEach((score, layer) => {
      max = Math.max(max, score);
      values.push({ row: t, token: labels[t], layer, score, effect: score - r.pLow, pStar: r.pStar, pLow: r.pLow });
    }),
  );
  const labelExpr = `[${labels.map(lit).join(',')}][datum.value]`;
  // In a three-panel figure the panels share one title; each keeps a short one and its legend goes below.
  const width = panel ? PANEL_WIDTH : Math.max(8, Math.min(24, Math.floor(360 / nLayer))) * nLayer;
  return {
    title: panel ? KIND_SHORT[r.kind] : { text: KIND_TITLE[r.kind], subtitle: answerLine(r) },
    data: { values },
    mark: { type: 'rect' },
    width,
    height: { step: 18 },
    encoding: {
      x: { field: 'layer', type: 'ordinal', title: panel ? xAxisTitle(r).replace('center of interval of', 'center of') : xAxisTitle(r), axis: ordinalLayerAxis(nLayer) },
      y: { field: 'row', type: 'ordinal', title: null, axis: { labelExpr, labelLimit: 200 } },
      color: {
        field: 'score',
        type: 'quantitative',
        title: `p(${tokenLabel(r.answer.token.trim() || r.answer.token)})`,
        scale: { scheme: KIND_SCHEME[r.kind], domain: [r.pLow, Math.max(max, r.pLow + 1e-9)], clamp: true },
        ...(panel ? { legend: bottomGradientLegend(width) } : {}),
      },
      tooltip: [
        { field: 'token', title: 'token' },
        { field: 'layer', title: 'layer' },
        { field: 'score', title: 'p(answer) restored', format: '.5f' },
        { field: 'effect', title: 'indirect effect', format: '.5f' },
        { field: 'pStar', title: 'p* (clean)', format: '.5f' },
        { field: 'pLow', title: 'p_low (corrupted)', format: '.5f' },
      ],
    },
  };
}

/** Figure 1 heatmap of one kind: tokens down (subject starred), layers across, colour from p_low upward. */
export function traceHeatmapSpec(result: CausalTraceResult): VegaLiteSpec {
  return { $schema: VEGA_LITE_SCHEMA, ...heatmapBody(result), config: { view: { stroke: null } } };
}

/** Figure 1's three panels (hidden, MLP, attention) side by side, each with its own colour scale. */
export function tracePanelsSpec(results: readonly CausalTraceResult[]): VegaLiteSpec {
  if (results.length === 0) throw new Error('tracePanelsSpec: no results');
  const first = results[0];
  const subtitle = [first.subject ? `subject: ${first.subject}` : '', answerLine(first)].filter(Boolean).join('; ');
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: { text: first.prompt ?? first.tokens.join(''), subtitle },
    hconcat: results.map((r, i) => {
      const body = heatmapBody(r, true);
      // Token labels once, on the first panel: the rows are the same tokens in every panel.
      if (i > 0) (body.encoding as { y: { [key: string]: JsonValue } }).y.axis = null;
      return body;
    }),
    resolve: { scale: { color: 'independent' } },
    config: { view: { stroke: null } },
  };
}

function kindsOf(avg: AverageEffects, kind?: StateKind): StateKind[] {
  const ks = kind ? [kind] : (['hidden', 'mlp', 'attn'] as const).filter((k) => avg.kinds[k]);
  if (ks.length === 0) throw new Error('no traced kinds in these average effects');
  return ks;
}

/** Figure 2 line plots: average indirect effect per layer for each token bucket, with 95% CI bands. */
export function aieLineSpec(avg: AverageEffects, kind?: StateKind): VegaLiteSpec {
  const panels: VegaLiteSpec[] = kindsOf(avg, kind).map((k): VegaLiteSpec => {
    const values: JsonValue[] = [];
    for (const b of avg.kinds[k]!.buckets) {
      if (b.count === 0) continue;
      b.meanIE.forEach((m, layer) =>
        values.push({ bucket: b.label, layer, aie: m, lo: m - b.ci[layer], hi: m + b.ci[layer], n: b.count }),
      );
    }
    // Both layers carry the same legend definition (Vega-Lite merges them; a null on one layer would drop it), with
    // opaque swatches so the band's translucency does not reach the legend.
    const color = {
      field: 'bucket',
      type: 'nominal',
      title: null,
      sort: null,
      scale: { domain: avg.kinds[k]!.buckets.map((b) => b.label), range: BUCKET_COLORS },
      legend: OPAQUE_LEGEND,
    };
    const x = { field: 'layer', type: 'quantitative', scale: { domain: [0, avg.nLayer - 1], nice: false }, axis: INTEGER_AXIS };
    return {
      title: k === 'hidden' ? KIND_SHORT[k] : `${KIND_SHORT[k]} (window ${avg.kinds[k]!.window})`,
      data: { values },
      width: PANEL_WIDTH + 20,
      height: 200,
      layer: [
        {
          mark: { type: 'errorband', opacity: 0.2 },
          encoding: { x, y: { field: 'lo', type: 'quantitative', title: 'AIE' }, y2: { field: 'hi' }, color },
        },
        {
          mark: { type: 'line', point: true },
          encoding: {
            x: { ...x, title: 'layer' },
            y: { field: 'aie', type: 'quantitative' },
            color,
            tooltip: [
              { field: 'bucket' },
              { field: 'layer' },
              { field: 'aie', title: 'AIE', format: '.5f' },
              { field: 'lo', title: 'CI low', format: '.5f' },
              { field: 'hi', title: 'CI high', format: '.5f' },
              { field: 'n', title: 'facts' },
            ],
          },
        },
      ],
    };
  });
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: {
      text: `Average indirect effects over ${avg.nKnown} known facts (95% CI bands)`,
      subtitle: `ATE = ${avg.ate.toFixed(4)} (p* ${avg.meanPStar.toFixed(4)}, p_low ${avg.meanPLow.toFixed(4)}); ${avg.nSkipped} unknown facts skipped`,
    },
    hconcat: panels,
    resolve: { scale: { y: 'independent' } },
    config: { legend: { orient: 'bottom', columns: 3, labelLimit: 0 } },
  };
}

/** Figure 2 heatmaps: buckets down, layers across, colour = AIE clipped at 0 (kind-specific scheme). */
export function aieHeatmapSpec(avg: AverageEffects, kind?: StateKind): VegaLiteSpec {
  const panels: VegaLiteSpec[] = kindsOf(avg, kind).map((k): VegaLiteSpec => {
    const values: JsonValue[] = [];
    for (const b of avg.kinds[k]!.buckets) {
      b.meanIE.forEach((m, layer) =>
        values.push({ bucket: b.label, layer, aie: Math.max(0, m), raw: m, ci: b.ci[layer], n: b.count }),
      );
    }
    return {
      title: KIND_SHORT[k],
      data: { values },
      mark: 'rect',
      width: PANEL_WIDTH,
      height: { step: 20 },
      encoding: {
        x: { field: 'layer', type: 'ordinal', axis: ordinalLayerAxis(avg.nLayer) },
        // Bucket names once, on the first panel (same rows in every panel).
        y: { field: 'bucket', type: 'nominal', sort: avg.kinds[k]!.buckets.map((b) => b.label), title: null, ...(k === kindsOf(avg, kind)[0] ? {} : { axis: null }) },
        color: { field: 'aie', type: 'quantitative', title: 'AIE', scale: { scheme: KIND_SCHEME[k], domainMin: 0 }, legend: bottomGradientLegend(PANEL_WIDTH) },
        tooltip: [
          { field: 'bucket' },
          { field: 'layer' },
          { field: 'raw', title: 'AIE', format: '.5f' },
          { field: 'ci', title: '±95% CI', format: '.5f' },
          { field: 'n', title: 'facts' },
        ],
      },
    };
  });
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: `Average indirect effect by token bucket (n = ${avg.nKnown})`,
    hconcat: panels,
    resolve: { scale: { color: 'independent' } },
    config: { view: { stroke: null } },
  };
}

/**
 * Figure 3: effect of restoring h_l at the last subject token, ordinary vs MLP-severed vs attention-severed.
 * Takes one prompt's severedTrace result (effects = score − p_low) or the averaged curves (with 95% CI bars).
 */
export function severedSpec(res: SeveredTraceResult | NonNullable<AverageEffects['severed']>): VegaLiteSpec {
  const series: { name: string; color: string; mean: number[]; ci: number[] | null }[] = [];
  let n: number | null = null;
  if ('pLow' in res) {
    const d = (xs: number[]) => xs.map((v) => v - res.pLow);
    series.push({ name: 'Effect of single state', color: KIND_COLOR.hidden, mean: d(res.ordinary), ci: null });
    series.push({ name: 'Effect with Attn severed', color: KIND_COLOR.attn, mean: d(res.attnSevered), ci: null });
    series.push({ name: 'Effect with MLP severed', color: KIND_COLOR.mlp, mean: d(res.mlpSevered), ci: null });
  } else {
    const c = (s: CurveStats) => ({ mean: s.mean, ci: s.ci });
    n = res.ordinary.count;
    series.push({ name: 'Effect of single state', color: KIND_COLOR.hidden, ...c(res.ordinary) });
    series.push({ name: 'Effect with Attn severed', color: KIND_COLOR.attn, ...c(res.attnSevered) });
    series.push({ name: 'Effect with MLP severed', color: KIND_COLOR.mlp, ...c(res.mlpSevered) });
  }
  const values: JsonValue[] = [];
  for (const s of series) {
    s.mean.forEach((m, layer) => values.push({ series: s.name, layer, effect: m, lo: m - (s.ci?.[layer] ?? 0), hi: m + (s.ci?.[layer] ?? 0) }));
  }
  const nLayer = series[0]!.mean.length;
  const color = {
    field: 'series',
    type: 'nominal',
    title: null,
    sort: null,
    scale: { domain: series.map((s) => s.name), range: series.map((s) => s.color) },
    legend: { orient: 'bottom', columns: 3, labelLimit: 0 },
  };
  const layers: JsonValue[] = [
    {
      mark: 'bar',
      encoding: {
        x: { field: 'layer', type: 'ordinal', title: 'layer at which the single hidden state is restored', axis: ordinalLayerAxis(nLayer) },
        xOffset: { field: 'series', sort: series.map((s) => s.name) },
        y: { field: 'effect', type: 'quantitative', title: n === null ? 'indirect effect' : 'average indirect effect' },
        color,
        tooltip: [{ field: 'series' }, { field: 'layer' }, { field: 'effect', format: '.5f' }, { field: 'lo', format: '.5f' }, { field: 'hi', format: '.5f' }],
      },
    },
  ];
  if (n !== null) {
    layers.push({
      mark: { type: 'rule', color: 'black' },
      encoding: {
        x: { field: 'layer', type: 'ordinal' },
        xOffset: { field: 'series', sort: series.map((s) => s.name) },
        y: { field: 'lo', type: 'quantitative' },
        y2: { field: 'hi' },
      },
    });
  }
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: { text: 'Effect of restoring h_l at the last subject token, with paths severed', subtitle: n === null ? '' : `mean over ${n} facts, 95% CI` },
    data: { values },
    // Three bars per layer; deep models get narrower groups so the figure keeps within MAX_FIGURE_WIDTH.
    width: { step: Math.max(12, Math.min(45, Math.floor(720 / Math.max(1, nLayer)))), for: 'position' },
    height: 220,
    layer: layers,
  };
}
