/** JSON-compatible values: what a Vega-Lite spec is made of. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** A Vega-Lite specification as a plain JSON object (validated when compiled, not by the type system). */
export type VegaLiteSpec = { [key: string]: JsonValue };

/** The schema URL every spec from `plot.*` declares (the MIME type sent alongside it is v5). */
export const VEGA_LITE_SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';
