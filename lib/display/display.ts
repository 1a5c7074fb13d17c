/**
 * `display`: rich outputs for notebooks. Inside the rome-ts (or any tslab) kernel each call sends ONE
 * display_data message holding every representation (for figures: the Vega-Lite spec, a server-rendered SVG and a
 * text summary), so a notebook stays readable without a JavaScript renderer. In plain Node the text summary is
 * printed instead, and figures are also written as files when ROME_TS_DISPLAY_DIR is set.
 *
 * Always `await` the figure calls: the SVG is rendered asynchronously, and a cell must not finish before its
 * output is sent.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { currentDisplayWriter, type DisplayWriter } from './channel.js';
import * as plot from './plot.js';
import { createProgress, type Progress, type ProgressOptions } from './progress.js';
import { renderVegaLiteSvg } from './render.js';
import type { VegaLiteSpec } from './spec.js';
import { summarizeTensor, tensorTo2D, type TensorLike } from './tensorSummary.js';

/** The MIME type Jupyter front ends render Vega-Lite 5 specs from. */
export const VEGA_LITE_MIME = 'application/vnd.vegalite.v5+json';

/** Options shared by the figure helpers. */
export interface FigureOptions {
  /** Text representation (default: a one-line description of the spec). */
  text?: string;
  /** File name stem for the plain-Node fallback (default: figure-N). */
  fileName?: string;
}

let figureCounter = 0;

function describeSpec(spec: VegaLiteSpec): string {
  const t = spec.title;
  const titleText = typeof t === 'string' ? t : t && typeof t === 'object' && !Array.isArray(t) && typeof t.text === 'string' ? t.text : null;
  const title = titleText !== null ? ` "${titleText}"` : '';
  const mark = typeof spec.mark === 'string' ? spec.mark : (spec.mark as { type?: unknown } | undefined)?.type;
  const panels = Array.isArray(spec.hconcat) ? spec.hconcat.length : Array.isArray(spec.vconcat) ? spec.vconcat.length : 0;
  const kind = panels ? `${panels} panels` : Array.isArray(spec.layer) ? `${spec.layer.length} layers` : typeof mark === 'string' ? `${mark} chart` : 'chart';
  const values = (spec.data as { values?: unknown } | undefined)?.values;
  const n = Array.isArray(values) ? `, ${values.length} data points` : '';
  return `<Vega-Lite figure${title}: ${kind}${n}>`;
}

function fallbackOutput(text: string, files?: { stem: string; svg: string; spec: VegaLiteSpec }): void {
  const dir = process.env.ROME_TS_DISPLAY_DIR;
  if (files && dir) {
    const abs = resolve(dir);
    mkdirSync(abs, { recursive: true });
    const svgPath = join(abs, `${files.stem}.svg`);
    writeFileSync(svgPath, files.svg);
    writeFileSync(join(abs, `${files.stem}.vl.json`), JSON.stringify(files.spec, null, 2));
    console.log(`${text} -> ${svgPath}`);
    return;
  }
  console.log(text);
}

function send(writer: DisplayWriter, data: { [mime: string]: unknown }): void {
  writer({ data, metadata: {}, transient: {} }, false);
}

/** Show a Vega-Lite spec: one display_data with the spec, its SVG rendering and a text line. */
export async function vegaLite(spec: VegaLiteSpec, opts: FigureOptions = {}): Promise<void> {
  const writer = currentDisplayWriter(); // captured now: tslab swaps it per cell
  const svg = await renderVegaLiteSvg(spec);
  const text = opts.text ?? describeSpec(spec);
  if (writer) {
    send(writer, { [VEGA_LITE_MIME]: spec, 'image/svg+xml': svg, 'text/plain': text });
  } else {
    fallbackOutput(text, { stem: opts.fileName ?? `figure-${++figureCounter}`, svg, spec });
  }
}

/** Heatmap of a 2-D grid: number[][] or a tensor handle (leading size-1 axes are dropped). */
export async function heatmap(values: readonly (readonly number[])[] | TensorLike, opts: plot.HeatmapOptions & FigureOptions = {}): Promise<void> {
  const grid = Array.isArray(values) ? (values as readonly (readonly number[])[]) : await tensorTo2D(values as TensorLike);
  const title = opts.title ?? (!Array.isArray(values) ? (values as TensorLike).name : undefined);
  await vegaLite(plot.heatmap(grid, { ...opts, ...(title !== undefined ? { title } : {}) }), opts);
}

/** Line chart of one or more series (see `plot.line`). */
export async function line(series: readonly number[] | Readonly<Record<string, readonly number[]>>, opts: plot.LineOptions & FigureOptions = {}): Promise<void> {
  await vegaLite(plot.line(series, opts), opts);
}

/** Bar chart (see `plot.bar`). */
export async function bar(labels: readonly string[], values: readonly number[], opts: plot.BarOptions & FigureOptions = {}): Promise<void> {
  await vegaLite(plot.bar(labels, values, opts), opts);
}

/** Show a readable summary of a tensor: name, shape, dtype, min/max/mean/std and the first `maxValues` values. */
export async function tensor(t: TensorLike, opts: { maxValues?: number } = {}): Promise<void> {
  const writer = currentDisplayWriter();
  const text = await summarizeTensor(t, opts.maxValues ?? 8);
  if (writer) send(writer, { 'text/plain': text });
  else fallbackOutput(text);
}

/** Show plain text as its own output. */
export function text(s: string): void {
  const writer = currentDisplayWriter();
  if (writer) send(writer, { 'text/plain': s });
  else fallbackOutput(s);
}

/** Show Markdown (plain-text fallback: the source). */
export function markdown(s: string): void {
  const writer = currentDisplayWriter();
  if (writer) send(writer, { 'text/markdown': s, 'text/plain': s });
  else fallbackOutput(s);
}

/** Show HTML (plain-text fallback: the markup). */
export function html(s: string, plainText?: string): void {
  const writer = currentDisplayWriter();
  if (writer) send(writer, { 'text/html': s, 'text/plain': plainText ?? s });
  else fallbackOutput(plainText ?? s);
}

/** Start a progress display updated in place; pass `.onProgress` to long-running library calls. */
export function progress(opts: ProgressOptions = {}): Progress {
  return createProgress(opts);
}
