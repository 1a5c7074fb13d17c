/**
 * Vega-Lite spec builders. Pure functions of plain number arrays: no tensors, no rendering, no I/O, so they work
 * in a kernel, in plain Node and in tests alike. Pass the result to `display.vegaLite(spec)`.
 */
import { VEGA_LITE_SCHEMA, type JsonValue, type VegaLiteSpec } from './spec.js';

/** Options of `plot.heatmap`. */
export interface HeatmapOptions {
  /** One label per row (top to bottom); defaults to the row index. Duplicates are allowed. */
  rowLabels?: readonly string[];
  /** One label per column (left to right); defaults to the column index. Duplicates are allowed. */
  colLabels?: readonly string[];
  title?: string;
  xTitle?: string;
  yTitle?: string;
  /** Legend title of the colour scale. */
  valueTitle?: string;
  /** Vega colour scheme name (default 'viridis'; use a diverging one such as 'redblue' for signed values). */
  scheme?: string;
  /** Fixed colour domain [min, max]; default: the data range. */
  domain?: readonly [number, number];
  /** Width and height of one cell in pixels (default 22 x 22). */
  cellSize?: number;
  /** Write the value in each cell (default: only when the grid has at most 200 cells). */
  showValues?: boolean;
}

/** Options of `plot.line`. */
export interface LineOptions {
  /** x values shared by all series (default 0..n-1). Strings are plotted as ordered categories. */
  x?: readonly (number | string)[];
  title?: string;
  xTitle?: string;
  yTitle?: string;
  width?: number;
  height?: number;
  /** Draw a point on every datum (default: when each series has at most 50 points). */
  points?: boolean;
}

/** Options of `plot.groupedBar`. */
export interface GroupedBarOptions {
  title?: string;
  xTitle?: string;
  yTitle?: string;
  /** Width of one category's group of bars in px (default: 20 per series, at least 40). */
  groupWidth?: number;
  height?: number;
}

/** Options of `plot.bar`. */
export interface BarOptions {
  title?: string;
  xTitle?: string;
  yTitle?: string;
  width?: number;
  /** Sort bars by value, largest first (default false: keep the input order). */
  sort?: boolean;
}

function checkFinite(v: number, where: string): number | null {
  if (typeof v !== 'number') throw new TypeError(`${where}: expected a number, got ${typeof v}`);
  return Number.isFinite(v) ? v : null; // NaN/Infinity are not JSON; Vega-Lite treats null as missing
}

/**
 * A token as an axis label: leading/trailing spaces shown as ␣ (GPT-2 tokens often start with one, and a bare
 * space is invisible), control characters escaped, no quotes.
 */
export function tokenLabel(token: string): string {
  const escaped = JSON.stringify(token).slice(1, -1).replace(/\\"/g, '"');
  return escaped.replace(/^ +| +$/g, (m) => '␣'.repeat(m.length));
}

/** A Vega expression mapping an index to its label: lets duplicate labels (repeated tokens) keep their own cell. */
function labelExpr(labels: readonly string[]): string {
  return `${JSON.stringify(labels.map(String))}[datum.value]`;
}

/**
 * Heatmap spec of a 2-D grid `values[row][col]` (rows x cols, rectangular). Rows run top to bottom, columns left to
 * right, in input order; labels may repeat.
 */
export function heatmap(values: readonly (readonly number[])[], opts: HeatmapOptions = {}): VegaLiteSpec {
  const rows = values.length;
  if (rows === 0) throw new Error('plot.heatmap: values has no rows');
  const cols = values[0]!.length;
  const data: JsonValue[] = [];
  for (let r = 0; r < rows; r++) {
    const row = values[r]!;
    if (!Array.isArray(row) || row.length !== cols) {
      throw new Error(`plot.heatmap: row ${r} has ${Array.isArray(row) ? row.length : 'no'} values, expected ${cols} (values must be rectangular)`);
    }
    for (let c = 0; c < cols; c++) data.push({ r, c, value: checkFinite(row[c]!, `plot.heatmap values[${r}][${c}]`) });
  }
  const rowLabels = opts.rowLabels ?? Array.from({ length: rows }, (_, i) => String(i));
  const colLabels = opts.colLabels ?? Array.from({ length: cols }, (_, i) => String(i));
  if (rowLabels.length !== rows) throw new Error(`plot.heatmap: ${rowLabels.length} rowLabels for ${rows} rows`);
  if (colLabels.length !== cols) throw new Error(`plot.heatmap: ${colLabels.length} colLabels for ${cols} columns`);
  const cell = opts.cellSize ?? 22;
  const showValues = opts.showValues ?? rows * cols <= 200;
  const color: { [key: string]: JsonValue } = {
    field: 'value',
    type: 'quantitative',
    title: opts.valueTitle ?? 'value',
    scale: { scheme: opts.scheme ?? 'viridis', ...(opts.domain ? { domain: [opts.domain[0], opts.domain[1]] } : {}) },
  };
  const x = { field: 'c', type: 'ordinal', title: opts.xTitle ?? null, axis: { labelExpr: labelExpr(colLabels), labelAngle: -45 } };
  const y = { field: 'r', type: 'ordinal', title: opts.yTitle ?? null, axis: { labelExpr: labelExpr(rowLabels) } };
  const rect: VegaLiteSpec = {
    mark: { type: 'rect' },
    encoding: {
      x,
      y,
      color,
      tooltip: [
        { field: 'r', type: 'ordinal', title: 'row' },
        { field: 'c', type: 'ordinal', title: 'col' },
        { field: 'value', type: 'quantitative', format: '.4g' },
      ],
    },
  };
  const spec: VegaLiteSpec = {
    $schema: VEGA_LITE_SCHEMA,
    data: { values: data },
    width: { step: cell },
    height: { step: cell },
  };
  if (opts.title !== undefined) spec.title = opts.title;
  if (!showValues) return { ...spec, ...rect };
  const text: VegaLiteSpec = {
    mark: { type: 'text', fontSize: 8 },
    encoding: { x, y, text: { field: 'value', type: 'quantitative', format: '.2f' }, color: { value: 'white' } },
  };
  return { ...spec, layer: [rect, text] };
}

/**
 * Line chart spec. `series` is one array of y values, or several keyed by series name (all the same length as `x`
 * when `x` is given). Non-finite values become gaps.
 */
export function line(series: readonly number[] | Readonly<Record<string, readonly number[]>>, opts: LineOptions = {}): VegaLiteSpec {
  const named: [string, readonly number[]][] = Array.isArray(series)
    ? [['y', series as readonly number[]]]
    : Object.entries(series as Readonly<Record<string, readonly number[]>>);
  if (named.length === 0) throw new Error('plot.line: no series');
  const n = named[0]![1].length;
  for (const [name, ys] of named) {
    if (ys.length !== n) throw new Error(`plot.line: series "${name}" has ${ys.length} points, expected ${n}`);
  }
  if (opts.x && opts.x.length !== n) throw new Error(`plot.line: x has ${opts.x.length} values for ${n} points`);
  const categorical = opts.x !== undefined && opts.x.some((v) => typeof v === 'string');
  const data: JsonValue[] = [];
  for (const [name, ys] of named) {
    ys.forEach((y, i) => {
      data.push({ series: name, i, x: opts.x ? opts.x[i]! : i, y: checkFinite(y, `plot.line ${name}[${i}]`) });
    });
  }
  const points = opts.points ?? n <= 50;
  const xEnc: { [key: string]: JsonValue } = categorical
    ? { field: 'i', type: 'ordinal', title: opts.xTitle ?? null, axis: { labelExpr: labelExpr(opts.x!.map(String)) } }
    : {
        field: 'x',
        type: 'quantitative',
        title: opts.xTitle ?? 'x',
        // Integer x (layers, steps) gets integer ticks only.
        ...(data.every((d) => Number.isInteger((d as { x: number }).x)) ? { axis: { tickMinStep: 1, format: 'd' } } : {}),
      };
  const encoding: { [key: string]: JsonValue } = {
    x: xEnc,
    y: { field: 'y', type: 'quantitative', title: opts.yTitle ?? 'y' },
    tooltip: [
      { field: 'series', type: 'nominal' },
      { field: 'x', type: categorical ? 'nominal' : 'quantitative' },
      { field: 'y', type: 'quantitative', format: '.4g' },
    ],
  };
  if (named.length > 1) {
    const order = named.map(([k]) => k);
    encoding.color = { field: 'series', type: 'nominal', title: null, sort: order, legend: { labelLimit: 320 } };
    // Series that coincide (v* loss = nll while kl is 0) would hide one another: dashes keep each visible.
    // (No legend of its own: Vega-Lite would draw a second, colourless one beside the colour legend.)
    encoding.strokeDash = { field: 'series', type: 'nominal', title: null, sort: order, legend: null };
  }
  const spec: VegaLiteSpec = {
    $schema: VEGA_LITE_SCHEMA,
    data: { values: data },
    width: opts.width ?? 400,
    height: opts.height ?? 220,
    mark: { type: 'line', point: points },
    encoding,
  };
  if (opts.title !== undefined) spec.title = opts.title;
  return spec;
}

/** Horizontal bar chart spec: one bar per label, bar length = value. */
export function bar(labels: readonly string[], values: readonly number[], opts: BarOptions = {}): VegaLiteSpec {
  if (labels.length !== values.length) throw new Error(`plot.bar: ${labels.length} labels for ${values.length} values`);
  const data: JsonValue[] = values.map((v, i) => ({ i, label: String(labels[i]), value: checkFinite(v, `plot.bar values[${i}]`) }));
  const spec: VegaLiteSpec = {
    $schema: VEGA_LITE_SCHEMA,
    data: { values: data },
    width: opts.width ?? 300,
    height: { step: 18 },
    mark: { type: 'bar' },
    encoding: {
      y: {
        field: 'i',
        type: 'ordinal',
        title: opts.yTitle ?? null,
        axis: { labelExpr: labelExpr(labels) },
        ...(opts.sort ? { sort: { field: 'value', order: 'descending' } } : {}),
      },
      x: { field: 'value', type: 'quantitative', title: opts.xTitle ?? 'value' },
      tooltip: [
        { field: 'label', type: 'nominal' },
        { field: 'value', type: 'quantitative', format: '.4g' },
      ],
    },
  };
  if (opts.title !== undefined) spec.title = opts.title;
  return spec;
}

/**
 * Grouped bar chart spec for categorical data: one group per label (in input order), one bar per series within
 * it, e.g. methods x metrics. `series` maps series name -> one value per label.
 */
export function groupedBar(labels: readonly string[], series: Readonly<Record<string, readonly number[]>>, opts: GroupedBarOptions = {}): VegaLiteSpec {
  const named = Object.entries(series);
  if (named.length === 0) throw new Error('plot.groupedBar: no series');
  for (const [name, vs] of named) {
    if (vs.length !== labels.length) throw new Error(`plot.groupedBar: series "${name}" has ${vs.length} values for ${labels.length} labels`);
  }
  const data: JsonValue[] = [];
  for (const [name, vs] of named) {
    vs.forEach((v, i) => data.push({ i, category: String(labels[i]), series: name, value: checkFinite(v, `plot.groupedBar ${name}[${i}]`) }));
  }
  const order = named.map(([k]) => k);
  const spec: VegaLiteSpec = {
    $schema: VEGA_LITE_SCHEMA,
    data: { values: data },
    width: { step: opts.groupWidth ?? Math.max(40, 20 * named.length), for: 'position' },
    height: opts.height ?? 220,
    mark: { type: 'bar' },
    encoding: {
      x: { field: 'i', type: 'ordinal', title: opts.xTitle ?? null, axis: { labelExpr: labelExpr(labels), labelAngle: 0 } },
      xOffset: { field: 'series', type: 'nominal', sort: order },
      y: { field: 'value', type: 'quantitative', title: opts.yTitle ?? 'value' },
      color: { field: 'series', type: 'nominal', title: null, sort: order },
      tooltip: [
        { field: 'category', type: 'nominal' },
        { field: 'series', type: 'nominal' },
        { field: 'value', type: 'quantitative', format: '.4g' },
      ],
    },
  };
  if (opts.title !== undefined) spec.title = opts.title;
  return spec;
}
