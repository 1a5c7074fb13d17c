/**
 * GPT-2 architecture construction and initialisation for training from scratch.
 *
 * Initialisation follows GPT-2: every weight matrix and both embeddings ~ N(0, 0.02²); the two projections that
 * write into the residual stream (attn.c_proj, mlp.c_proj) are scaled by 1/sqrt(2·nLayer) so the residual
 * variance does not grow with depth; biases 0; layer-norm gains 1.
 */
import type { GPT2Config } from '../io/config.js';
import { GPT2Params, paramShapes } from '../model/params.js';
import { createRng } from '../rng.js';

/** Architecture knobs for a new GPT-2; everything else takes GPT-2's values. */
export interface ArchOptions {
  nLayer: number;
  nEmbd: number;
  nHead: number;
  nPositions: number;
  vocabSize: number;
  /** MLP width; default 4·nEmbd. */
  nInner?: number;
  bosTokenId?: number | null;
  eosTokenId?: number | null;
}

/** A GPT2Config for a new tied-embedding GPT-2 (gelu_new, layer-norm eps 1e-5). */
export function makeConfig(a: ArchOptions): GPT2Config {
  for (const k of ['nLayer', 'nEmbd', 'nHead', 'nPositions', 'vocabSize'] as const) {
    if (!Number.isInteger(a[k]) || a[k] <= 0) throw new Error(`makeConfig: ${k} must be a positive integer, got ${a[k]}`);
  }
  if (a.nEmbd % a.nHead !== 0) throw new Error(`makeConfig: nEmbd (${a.nEmbd}) must be divisible by nHead (${a.nHead})`);
  return {
    modelType: 'gpt2',
    nLayer: a.nLayer,
    nEmbd: a.nEmbd,
    nHead: a.nHead,
    nPositions: a.nPositions,
    nInner: a.nInner ?? 4 * a.nEmbd,
    layerNormEpsilon: 1e-5,
    activationFunction: 'gelu_new',
    vocabSize: a.vocabSize,
    bosTokenId: a.bosTokenId ?? null,
    eosTokenId: a.eosTokenId ?? null,
    tieWordEmbeddings: true,
  };
}

/** Standard deviation of the initial weights (GPT-2's value). */
export const INIT_STD = 0.02;

/** Initial weights of a GPT-2 of this config, drawn from a seeded stream in paramShapes order. */
export function initWeights(cfg: GPT2Config, seed: number): Map<string, { shape: number[]; data: Float32Array }> {
  const rng = createRng(seed);
  const residualStd = INIT_STD / Math.sqrt(2 * cfg.nLayer);
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, shape] of paramShapes(cfg)) {
    const size = shape.reduce((p, q) => p * q, 1);
    const data = new Float32Array(size);
    if (/\.ln_\d\.weight$|^ln_f\.weight$/.test(name)) {
      data.fill(1);
    } else if (name.endsWith('.bias')) {
      // zeros
    } else {
      const std = /\.c_proj\.weight$/.test(name) ? residualStd : INIT_STD;
      for (let i = 0; i < size; i++) data[i] = rng.normal() * std;
    }
    out.set(name, { shape, data });
  }
  return out;
}

/** A freshly initialised GPT-2 as trainable variables (caller disposes). */
export function createModel(cfg: GPT2Config, seed: number): GPT2Params {
  return new GPT2Params(cfg, initWeights(cfg, seed));
}

/** Number of non-embedding parameters (the N in the 6·N·tokens FLOP estimate) and the total. */
export function countParams(cfg: GPT2Config): { total: number; nonEmbedding: number } {
  let total = 0;
  let emb = 0;
  for (const [name, shape] of paramShapes(cfg)) {
    const n = shape.reduce((p, q) => p * q, 1);
    total += n;
    if (name === 'wte.weight' || name === 'wpe.weight') emb += n;
  }
  return { total, nonEmbedding: total - emb };
}
