/** JSON-compatible values: what a Vega-Lite spec is made of. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** A Vega-Lite specification as a plain JSON object (validated when compiled, not by the type system). */
export type VegaLiteSpec = { [key: string]: JsonValue };

/** The schema URL every spec from `plot.*` declares (the MIME type sent alongside it is v5). */
export const VEGA_LITE_SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';

/**
 * Widest figure, in px, the notebooks may draw: JupyterLab's output area at a 1366-px window with the file
 * browser open is ~910 px. test/figure-layout.test.ts renders every notebook figure and checks it.
 */
export const MAX_FIGURE_WIDTH = 900;
