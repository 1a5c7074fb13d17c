/**
 * Notebook display helpers: `plot` builds Vega-Lite specs from plain arrays; `display` sends them (and tensor
 * summaries, progress bars) to the notebook as multi-MIME outputs.
 */
export * as display from './display.js';
export * as plot from './plot.js';
export { VEGA_LITE_MIME, type FigureOptions } from './display.js';
export { setDisplayWriter, currentDisplayWriter, type DisplayMessage, type DisplayWriter } from './channel.js';
export type { HeatmapOptions, LineOptions, BarOptions, GroupedBarOptions } from './plot.js';
export type { Progress, ProgressCallback, ProgressEvent, ProgressOptions } from './progress.js';
export { renderVegaLiteSvg, svgSize } from './render.js';
export type { JsonValue, VegaLiteSpec } from './spec.js';
export { MAX_FIGURE_WIDTH, VEGA_LITE_SCHEMA } from './spec.js';
export { summarizeTensor, tensorStats, type TensorLike, type TensorStats } from './tensorSummary.js';
