/**
 * ROME step 3, the rank-one update of the MLP output projection W (GPT-2 Conv1D layout [nInner, d]: the layer
 * computes v = kᵀW + b).
 *
 *   u = C⁻¹k* / ‖C⁻¹k*‖                       (left vector, [nInner])
 *   Λ = (v* − (k_rᵀW + b)) / (uᵀk_r)          (right vector, [d]; v* is an MLP output, so the bias is subtracted)
 *   W' = W + u ⊗ Λ                             (outer product [nInner, d] in this layout)
 *
 * With k_r = k* (the paper's equation, default) this gives k*ᵀW' + b = v* exactly (up to float32 rounding).
 * With k_r = the bare-prompt key (the official code) it gives k_rᵀW' + b = v* instead.
 * u may use the bare prompt's key instead of k* (leftVectorKey); the update still maps k_r to v*.
 * With preserved keys P (preservedKeys.ts, not in the paper) u ∝ C⁻¹k⊥ instead, so that every key of P keeps its
 * value.
 */
import type { GPT2Config } from '../io/config.js';
import type { GPT2Model } from '../model/model.js';
import { mlpOutParams } from '../model/family.js';
import type { CovarianceSolver } from './covariance.js';
import { preservedDirection } from './preservedKeys.js';

/** The two vectors of a rank-one edit (float32 values, as applied). */
export interface RankOneVectors {
  u: Float32Array;
  v: Float32Array;
  /** uᵀk_r (the denominator). */
  denom: number;
  /** ‖v* − (k_rᵀW + b)‖: how far the layer was from v*. */
  residualNorm: number;
  /** Share of k*ᵀC⁻¹k* left after projecting out the preserved keys (1 without any). */
  rho: number;
}

/**
 * MLP output projection parameter names of a layer ([nInner, d]): GPT-2 c_proj (the default without a config),
 * NeoX dense_4h_to_h, LLaMA down_proj, GPT-J fc_out; bias null when the family has none.
 */
export function mlpProjParams(layer: number): { weight: string; bias: string };
export function mlpProjParams(layer: number, cfg: GPT2Config): { weight: string; bias: string | null };
export function mlpProjParams(layer: number, cfg?: GPT2Config): { weight: string; bias: string | null } {
  if (!cfg) return { weight: `h.${layer}.mlp.c_proj.weight`, bias: `h.${layer}.mlp.c_proj.bias` };
  return mlpOutParams(cfg, layer);
}

/** kᵀW + b in float64 for W [n, d] row-major, b [d]. */
export function projectKey(w: Float32Array, b: Float32Array, k: ArrayLike<number>, n: number, d: number): Float64Array {
  const out = Float64Array.from(b);
  for (let i = 0; i < n; i++) {
    const ki = k[i];
    if (ki === 0) continue;
    const row = i * d;
    for (let j = 0; j < d; j++) out[j] += ki * w[row + j];
  }
  return out;
}

/** Computes u and Λ for the current weights of `layer` (nothing is changed). */
export function rankOneVectors(
  model: GPT2Model,
  layer: number,
  solver: CovarianceSolver,
  kStar: Float32Array,
  kRight: Float32Array,
  vStar: Float32Array,
  preserved: readonly ArrayLike<number>[] = [],
): RankOneVectors {
  const n = model.config.nInner;
  const d = model.config.nEmbd;
  const names = mlpProjParams(layer, model.config);
  const w = model.getParam(names.weight).dataSync() as Float32Array;
  const b = names.bias ? (model.getParam(names.bias).dataSync() as Float32Array) : new Float32Array(d);
  const { x, rho } = preservedDirection(solver, kStar, preserved);
  let norm = 0;
  for (let i = 0; i < n; i++) norm += x[i] * x[i];
  norm = Math.sqrt(norm);
  if (!(norm > 0)) throw new Error('ROME: C⁻¹k* is zero (the key is zero?)');
  const u = new Float32Array(n);
  for (let i = 0; i < n; i++) u[i] = x[i] / norm;
  let denom = 0;
  for (let i = 0; i < n; i++) denom += u[i] * kRight[i];
  const cur = projectKey(w, b, kRight, n, d);
  const v = new Float32Array(d);
  let res = 0;
  for (let j = 0; j < d; j++) {
    const r = vStar[j] - cur[j];
    res += r * r;
    v[j] = r / denom;
  }
  return { u, v, denom, residualNorm: Math.sqrt(res), rho };
}
