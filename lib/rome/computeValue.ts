/**
 * ROME step 2, the value v*: optimise δ ∈ ℝ^d added to the MLP output (hook `blocks.{l}.mlp`) at the subject's
 * last token of every prompt, so that the model predicts the new target after each context-prefixed edit prompt
 * while the next-token distribution at the subject of "{subject} is a" stays close to the original.
 *
 * loss = mean over prefixed prompts of (−Σ log p(target tokens) / #target tokens)      (teacher forcing)
 *      + klFactor · KL(P_δ ‖ P_0) at the subject's last token of the KL prompt
 *      + vWeightDecay · ‖δ‖ / ‖v₀‖²
 * Adam (β₁ 0.9, β₂ vAdamBeta2 (official 0.999), ε 1e-8), at most vNumGradSteps − 1 updates (the official loop checks the loss, then steps),
 * stop when loss < earlyStopLoss, and project ‖δ‖ ≤ clampNormFactor·‖v₀‖ after each step. v* = v₀ + δ, where v₀ is
 * the unedited MLP output (bias included) at the subject's last token of the bare prompt.
 *
 * Only blocks ≥ l, and in them only positions from the subject's last token on, depend on δ. The default 'suffix'
 * engine left-pads every row so that the subject's last token sits in one column P, runs columns < P once (keeping
 * their keys/values) and the suffix once up to block l, and then every step runs only the suffix columns through
 * blocks ≥ l: `forward({ startLayer: l, residual, past })`. On the bundled model that is ~5 of ~20 columns.
 * The 'full' engine recomputes every position of blocks ≥ l; both give the same losses to float rounding (tested).
 */
import * as tf from '@tensorflow/tfjs-core';
import { forward, logitLens, type KVCache } from '../model/forward.js';
import type { GPT2Model } from '../model/model.js';
import { encodeTarget, encodeText, encodeWithSubject, fillWithSpan, oneHotRows, padIds, selector } from './tokens.js';
import { spacedTarget, type EditRequest, type StepLoss } from './types.js';

/** Hyperparameters of the v* optimisation. */
export interface ValueHparams {
  vNumGradSteps: number;
  vLr: number;
  vWeightDecay: number;
  klFactor: number;
  clampNormFactor: number;
  earlyStopLoss: number;
  /**
   * Adam's second-moment decay (official: torch's default 0.999). With 0.999 the large gradients of the first steps
   * keep the step size small for hundreds of steps after the loss flattens, which stalls some v* runs on a plateau.
   */
  vAdamBeta2: number;
}

/** Result of computeValue. */
export interface ValueResult {
  /** v* = v₀ + δ [d] (an MLP output: includes the output projection's bias, when the family has one). */
  vStar: Float32Array;
  /** The unedited MLP output at the subject's last token of the bare prompt [d]. */
  v0: Float32Array;
  delta: Float32Array;
  /** Losses at each evaluated step (step i is before the i-th update). */
  losses: StepLoss[];
  /** Target token ids (of " " + target). */
  targetIds: number[];
}

/** KL prompt template of the official code. */
export const KL_PROMPT = '{} is a';

/** Which positions each optimisation step recomputes (see the module comment); both give the same result. */
export type ValueEngine = 'suffix' | 'full';

/** Options of {@link computeValue} that do not change its result. */
export interface ValueOptions {
  /** Default 'suffix'. */
  engine?: ValueEngine;
  /**
   * Called at every evaluated step with its losses and the δ [d] that produced them (a copy), before the update:
   * the δ at the first step whose loss is below t is the result that earlyStopLoss = t would give.
   */
  onStep?: (loss: StepLoss, delta: Float32Array) => void;
}

/** The constant tensors of one optimisation: what each step feeds to `forward`, and which outputs it scores. */
interface ValuePlan {
  /** Ids of the recomputed columns [B, Tr] (used when layer = 0). */
  ids: tf.Tensor2D;
  /** Residual entering block `layer` for the recomputed columns (layer > 0). */
  residual?: tf.Tensor3D;
  past?: KVCache;
  attentionMask?: tf.Tensor2D;
  positionIds?: tf.Tensor2D;
  /** δ mask [B, Tr, 1]: 1 at the subject's last token of each row. */
  mask: tf.Tensor3D;
  /** Selects the scored positions [nT + 1, B·Tr]: target predictions of the rewrite rows, then the KL position. */
  sel: tf.Tensor2D;
  /** Flat index (in B·Tr) of the bare prompt's subject-last token, where v₀ is read. */
  v0At: number;
  B: number;
  Tr: number;
  tensors: tf.Tensor[];
}

interface ValueRows {
  /** Token rows: the prefixed edit prompts followed by the target tokens except the last, then the KL prompt. */
  rows: number[][];
  /** Subject-last position of each row. */
  lookups: number[];
  /** Prompt length of each rewrite row (the first target token is predicted at promptLen − 1). */
  promptLens: number[];
  nRewrite: number;
}

function buildPlan(model: GPT2Model, layer: number, r: ValueRows, m: number, engine: ValueEngine): ValuePlan {
  const { rows, lookups, promptLens, nRewrite } = r;
  const B = rows.length;
  const pad = model.config.eosTokenId ?? 0;
  const scored = (col: (b: number, j: number) => number, Tr: number): number[] => {
    const flat: number[] = [];
    for (let b = 0; b < nRewrite; b++) for (let j = 0; j < m; j++) flat.push(b * Tr + col(b, promptLens[b] - 1 + j));
    flat.push((B - 1) * Tr + col(B - 1, lookups[B - 1]));
    return flat;
  };
  const maskAt = (cols: number[], Tr: number): tf.Tensor3D => {
    const data = new Float32Array(B * Tr);
    cols.forEach((c, b) => (data[b * Tr + c] = 1));
    return tf.tensor3d(data, [B, Tr, 1]);
  };
  if (engine === 'full') {
    const { ids, T } = padIds(model, rows);
    const residual = layer > 0 ? (forward(model.params, ids, { endLayer: layer, logits: 'none' }).hidden as tf.Tensor3D) : undefined;
    const mask = maskAt(lookups, T);
    const sel = selector(scored((_, p) => p, T), B * T);
    return { ids, residual, mask, sel, v0At: lookups[0], B, Tr: T, tensors: [ids, mask, sel, ...(residual ? [residual] : [])] };
  }
  // Left-pad so that every subject-last token lands in column P; columns < P never depend on δ.
  const P = Math.max(...lookups);
  const lead = lookups.map((s) => P - s);
  const Tr = Math.max(...rows.map((row, b) => row.length - lookups[b]));
  const S = P + Tr;
  const idsAll = new Int32Array(B * S).fill(pad);
  const maskAll = new Float32Array(B * S);
  const posAll = new Int32Array(B * S);
  rows.forEach((row, b) => {
    for (let c = 0; c < S; c++) {
      const i = c - lead[b];
      posAll[b * S + c] = Math.max(0, Math.min(i, model.config.nPositions - 1));
      if (i >= 0 && i < row.length) {
        idsAll[b * S + c] = row[i];
        maskAll[b * S + c] = 1;
      }
    }
  });
  const cols = (data: Int32Array, from: number, to: number): tf.Tensor2D => {
    const out = new Int32Array(B * (to - from));
    for (let b = 0; b < B; b++) out.set(data.subarray(b * S + from, b * S + to), b * (to - from));
    return tf.tensor2d(out, [B, to - from], 'int32');
  };
  const attentionMask = tf.tensor2d(maskAll, [B, S]);
  const ids = cols(idsAll, P, S);
  const positionIds = cols(posAll, P, S);
  const tensors: tf.Tensor[] = [attentionMask, ids, positionIds];
  let past: KVCache | undefined;
  if (P > 0) {
    const prefixIds = cols(idsAll, 0, P);
    const prefixPos = cols(posAll, 0, P);
    const prefixMask = tf.tidy(() => tf.slice(attentionMask, [0, 0], [B, P]) as tf.Tensor2D);
    const out = forward(model.params, prefixIds, {
      attentionMask: prefixMask,
      positionIds: prefixPos,
      logits: 'none',
      returnPresent: true,
    });
    out.hidden.dispose();
    tf.dispose([prefixIds, prefixPos, prefixMask]);
    past = out.present as KVCache;
    tensors.push(...past.k, ...past.v);
  }
  let residual: tf.Tensor3D | undefined;
  if (layer > 0) {
    residual = forward(model.params, ids, { past, attentionMask, positionIds, endLayer: layer, logits: 'none' }).hidden;
    tensors.push(residual);
  }
  const mask = maskAt(lookups.map(() => 0), Tr);
  const sel = selector(scored((b, p) => p - lookups[b], Tr), B * Tr);
  tensors.push(mask, sel);
  return { ids, residual, past, attentionMask, positionIds, mask, sel, v0At: 0, B, Tr, tensors };
}

/** Optimises v* for a request; `templates` are the context templates ("{}" first). */
export function computeValue(
  model: GPT2Model,
  layer: number,
  request: EditRequest,
  templates: readonly string[],
  hp: ValueHparams,
  opts: ValueOptions = {},
): ValueResult {
  const cfg = model.config;
  const d = cfg.nEmbd;
  const V = cfg.vocabSize;
  const targetIds = encodeTarget(model, spacedTarget(request.target));
  if (targetIds.length === 0) throw new Error(`ROME: target "${request.target}" has no tokens`);
  const m = targetIds.length;
  if (templates[0] !== '{}') throw new Error('computeValue: the first context template must be "{}" (it defines v₀)');
  const engine = opts.engine ?? 'suffix';
  if (engine !== 'suffix' && engine !== 'full') throw new Error(`computeValue: unknown engine "${String(engine)}"`);

  const rows: number[][] = [];
  const lookups: number[] = [];
  const promptLens: number[] = [];
  for (const t of templates) {
    const f = fillWithSpan(t, request.prompt, request.subject);
    const e = encodeWithSubject(model, f.text, request.subject, f.at);
    rows.push([...e.ids, ...targetIds.slice(0, -1)]);
    lookups.push(e.subjectLast);
    promptLens.push(e.ids.length);
  }
  const nRewrite = rows.length;
  const kl = fillWithSpan('{}', KL_PROMPT, request.subject);
  const klEnc = encodeWithSubject(model, kl.text, request.subject, kl.at);
  rows.push(klEnc.ids);
  lookups.push(klEnc.subjectLast);
  const tooLong = rows.find((r) => r.length > cfg.nPositions);
  if (tooLong) throw new Error(`computeValue: a prefixed prompt has ${tooLong.length} tokens, over the model's context of ${cfg.nPositions}`);

  const tgt: number[] = [];
  const w: number[] = [];
  for (let b = 0; b < nRewrite; b++) {
    for (let j = 0; j < m; j++) {
      tgt.push(targetIds[j]);
      w.push(1 / (m * nRewrite));
    }
  }
  const nT = tgt.length;
  const plan = buildPlan(model, layer, { rows, lookups, promptLens, nRewrite }, m, engine);
  const { B, Tr } = plan;
  const tgtW = tf.tidy(() => tf.mul(oneHotRows(tgt, V), tf.tensor2d(w, [nT, 1])));

  const mlpHook = `blocks.${layer}.mlp`;
  const zeros = tf.zeros([d]);
  const delta = tf.variable(zeros, true, `rome_ts/delta/${Date.now()}_${Math.random()}`);
  zeros.dispose();
  const optimizer = tf.train.adam(hp.vLr, 0.9, hp.vAdamBeta2, 1e-8);

  // Scored log-probs [nT + 1, V] for the current δ; `capture` receives the MLP output when given.
  const scoredLogProbs = (capture?: (x: tf.Tensor) => void): tf.Tensor2D => {
    const out = forward(model.params, layer === 0 ? plan.ids : null, {
      startLayer: layer,
      residual: plan.residual,
      past: plan.past,
      attentionMask: plan.attentionMask,
      positionIds: plan.positionIds,
      logits: 'none',
      hooks: {
        [mlpHook]: (x) => {
          capture?.(x);
          return tf.add(x, tf.mul(plan.mask, delta));
        },
      },
    });
    const flat = tf.reshape(out.hidden, [B * Tr, d]) as tf.Tensor2D;
    return tf.logSoftmax(logitLens(model.params, tf.matMul(plan.sel, flat))) as tf.Tensor2D;
  };

  let v0Data: Float32Array | null = null;
  const klInit = tf.tidy(() => {
    const lp = scoredLogProbs((x) => {
      v0Data = tf.tidy(() => tf.slice(tf.reshape(x, [B * Tr, d]), [plan.v0At, 0], [1, d])).dataSync() as Float32Array;
    });
    return tf.slice(lp, [nT, 0], [1, V]);
  });
  const v0 = Float32Array.from(v0Data as unknown as Float32Array);
  let v0NormSq = 0;
  for (const x of v0) v0NormSq += x * x;
  const maxNorm = hp.clampNormFactor * Math.sqrt(v0NormSq);

  const losses: StepLoss[] = [];
  try {
    for (let it = 0; it < hp.vNumGradSteps; it++) {
      let parts: tf.Tensor1D | null = null;
      const { value, grads } = tf.variableGrads(() => {
        const lp = scoredLogProbs();
        const nll = tf.neg(tf.sum(tf.mul(tgtW, tf.slice(lp, [0, 0], [nT, V]))));
        const klLp = tf.slice(lp, [nT, 0], [1, V]);
        const klv = tf.sum(tf.mul(tf.exp(klLp), tf.sub(klLp, klInit)));
        // ‖δ‖ with a 1e-30 floor under the root: tf.norm's gradient is NaN at δ = 0 (the first step).
        const wd = tf.mul(tf.sqrt(tf.add(tf.sum(tf.square(delta)), 1e-30)), hp.vWeightDecay / v0NormSq);
        const loss = tf.add(tf.add(nll, tf.mul(klv, hp.klFactor)), wd) as tf.Scalar;
        parts = tf.keep(tf.stack([loss, nll, klv, wd]) as tf.Tensor1D);
        return loss;
      }, [delta]);

      const pv = (parts as unknown as tf.Tensor1D).dataSync();
      (parts as unknown as tf.Tensor1D).dispose();
      value.dispose();
      const stepLoss: StepLoss = { step: it, loss: pv[0], nll: pv[1], kl: pv[2], weightDecay: pv[3] };
      losses.push(stepLoss);
      opts.onStep?.(stepLoss, Float32Array.from(delta.dataSync() as Float32Array));
      if (pv[0] < hp.earlyStopLoss || it === hp.vNumGradSteps - 1) {
        for (const g of Object.values(grads)) g.dispose();
        break;
      }
      optimizer.applyGradients(Object.entries(grads).map(([name, tensor]) => ({ name, tensor })));
      for (const g of Object.values(grads)) g.dispose();
      tf.tidy(() => {
        const n = tf.norm(delta).dataSync()[0];
        if (n > maxNorm) delta.assign(tf.mul(delta, maxNorm / n));
      });
    }
    const deltaData = delta.dataSync() as Float32Array;
    const vStar = new Float32Array(d);
    for (let i = 0; i < d; i++) vStar[i] = v0[i] + deltaData[i];
    return { vStar, v0, delta: Float32Array.from(deltaData), losses, targetIds };
  } finally {
    optimizer.dispose();
    delta.dispose();
    klInit.dispose();
    tgtW.dispose();
    tf.dispose(plan.tensors);
  }
}
