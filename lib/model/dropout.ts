/**
 * Training-time (inverted) dropout masks for the forward pass, drawn per batch row from that row's seed.
 *
 * Why per row: data-parallel training splits a batch across threads; masks keyed by (row seed, site) make a row
 * draw the same mask whichever thread runs it, so two threads still equal one. Masks are built in plain JS from
 * lib/rng.ts's stream rather than tf.randomUniform because the latter is far slower on the WASM backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import { createRng, mixSeed } from '../rng.js';

/** Dropout of one forward run: the drop probability and one uint32 seed per batch row. */
export interface DropoutSpec {
  /** Probability in [0, 1) that an element is zeroed; kept elements are scaled by 1/(1 − rate). */
  rate: number;
  /** One seed per batch row (length B). */
  rowSeeds: ArrayLike<number>;
}

/** Throws unless 0 ≤ rate < 1. */
export function validateDropoutRate(rate: number): void {
  if (!(rate >= 0 && rate < 1)) throw new Error(`dropout: rate must be in [0, 1), got ${rate}`);
}

/**
 * Mask of `shape` = [B, ...] with entries 0 or 1/(1 − rate); row b's entries come from mixSeed(rowSeeds[b], site),
 * so each site (a numbered place in the network) draws an independent mask.
 */
export function dropoutMask(spec: DropoutSpec, shape: readonly number[], site: number): tf.Tensor {
  const B = shape[0] as number;
  if (spec.rowSeeds.length !== B) throw new Error(`dropout: ${spec.rowSeeds.length} row seeds for a batch of ${B}`);
  const per = shape.slice(1).reduce((a, b) => a * b, 1);
  const out = new Float32Array(B * per);
  const keep = 1 / (1 - spec.rate);
  // Compare against an integer threshold: the uint32 draw is < rate·2^32 with probability rate.
  const thresh = Math.floor(spec.rate * 4294967296);
  for (let b = 0; b < B; b++) {
    const rng = createRng(mixSeed(spec.rowSeeds[b] as number, site));
    const base = b * per;
    // next()·2^32 is the generator's uint32 draw exactly.
    for (let i = 0; i < per; i++) out[base + i] = rng.next() * 4294967296 < thresh ? 0 : keep;
  }
  return tf.tensor(out, shape as number[], 'float32');
}

/** x · mask for site `site` when dropout is on and its rate is > 0; x itself otherwise. */
export function applyDropout(x: tf.Tensor, spec: DropoutSpec | undefined, site: number): tf.Tensor {
  if (!spec || spec.rate === 0) return x;
  return tf.mul(x, dropoutMask(spec, x.shape, site));
}
