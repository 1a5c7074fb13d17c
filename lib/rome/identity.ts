/**
 * Content hashes of model weights, used to key on-disk caches (context prefixes, key statistics) so that a cache
 * can never be reused for different weights.
 */
import { createHash } from 'node:crypto';
import type { GPT2Model } from '../model/model.js';
import { embedParam, paramLayer } from '../model/family.js';

/** sha256 (hex) over the names, shapes and float32 bytes of the given parameters (default: all). */
export function weightsHash(model: GPT2Model, names: readonly string[] = model.params.names()): string {
  const h = createHash('sha256');
  for (const n of names) {
    const v = model.getParam(n);
    const data = v.dataSync() as Float32Array;
    h.update(`${n}[${v.shape.join(',')}]`);
    h.update(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  }
  return h.digest('hex');
}

/**
 * The parameters that determine the MLP key at `layer`: embeddings, every block before it, and the parts of block
 * `layer` up to the MLP nonlinearity. Editing that layer's MLP output projection (what ROME does) leaves them
 * unchanged, so key statistics stay valid across sequential edits of that layer.
 */
export function keyUpstreamParams(model: GPT2Model, layer: number): string[] {
  const cfg = model.config;
  const out = cfg.arch ? [embedParam(cfg)] : ['wte.weight', 'wpe.weight'];
  for (const n of model.params.names()) {
    const at = paramLayer(cfg, n);
    if (at && (at.layer < layer || (at.layer === layer && !at.mlpOut))) out.push(n);
  }
  return out;
}

/** sha256 of everything the MLP key at `layer` depends on (see keyUpstreamParams). */
export function keyUpstreamHash(model: GPT2Model, layer: number): string {
  return weightsHash(model, keyUpstreamParams(model, layer));
}
