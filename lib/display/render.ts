/**
 * Server-side rendering of Vega-Lite specs to SVG with vega + vega-lite, so a notebook keeps a static image that
 * renders anywhere (GitHub, nbconvert HTML) next to the interactive spec. vega is imported lazily: loading it costs
 * ~0.5 s and nothing else in rome-ts needs it.
 */
import type { VegaLiteSpec } from './spec.js';

/** Compile a Vega-Lite spec and render it headlessly to an SVG document string. Throws on an invalid spec. */
export async function renderVegaLiteSvg(spec: VegaLiteSpec): Promise<string> {
  const [vega, vl] = await Promise.all([import('vega'), import('vega-lite')]);
  let compiled;
  try {
    // vega-lite's TopLevelSpec type is far stricter than JSON; the spec is validated by compile() itself.
    compiled = vl.compile(spec as unknown as Parameters<typeof vl.compile>[0]).spec;
  } catch (e) {
    throw new Error(`invalid Vega-Lite spec: ${e instanceof Error ? e.message : String(e)}`);
  }
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Width and height (px) declared on the root element of an SVG document from `renderVegaLiteSvg`. */
export function svgSize(svg: string): { width: number; height: number } {
  const root = /<svg\b[^>]*>/.exec(svg)?.[0];
  if (!root) throw new Error('svgSize: no <svg> element');
  const attr = (name: string): number => {
    const m = new RegExp(`\\s${name}="([\\d.]+)`).exec(root);
    if (!m) throw new Error(`svgSize: the <svg> element has no ${name}`);
    return Number(m[1]);
  };
  return { width: attr('width'), height: attr('height') };
}
