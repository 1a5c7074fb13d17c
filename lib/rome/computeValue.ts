/**
 * ROME step 2, the value v*: optimise δ ∈ ℝ^d added to the MLP output (hook `blocks.{l}.mlp`) at the subject's
 * last token of every prompt, so that the model predicts the new target after each context-prefixed edit prompt
 * while the next-token distribution at the subject of "{subject} is a" stays close to the original.
 *
 * loss = mean over prefixed prompts of (−Σ log p(target tokens) / #target tokens)      (teacher forcing)
 *      + klFactor · KL(P_δ ‖ P_0) at the subject's last token of the KL prompt
 *      + vWeightDecay · ‖δ‖ / ‖v₀‖²
 * Adam (β 0.9/0.999, ε 1e-8), at most vNumGradSteps − 1 updates (the official loop checks the loss, then steps),
 * stop when loss < earlyStopLoss, and project ‖δ‖ ≤ clampNormFactor·‖v₀‖ after each step. v* = v₀ + δ, where v₀ is
 * the unedited MLP output (bias included) at the subject's last token of the bare prompt.
 *
 * Only blocks ≥ l depend on δ, so the residual entering block l is computed once and every step runs
 * `forward({ startLayer: l, residual })`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { forward, logitLens } from '../model/forward.js';
import type { GPT2Model } from '../model/model.js';
import { encodeText, encodeWithSubject, fillWithSpan, oneHotRows, padIds, selector } from './tokens.js';
import { spacedTarget, type EditRequest, type StepLoss } from './types.js';

/** Hyperparameters of the v* optimisation. */
export interface ValueHparams {
  vNumGradSteps: number;
  vLr: number;
  vWeightDecay: number;
  klFactor: number;
  clampNormFactor: number;
  earlyStopLoss: number;
}

/** Result of computeValue. */
export interface ValueResult {
  /** v* = v₀ + δ [d] (an MLP output: includes the c_proj bias). */
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

/** Optimises v* for a request; `templates` are the context templates ("{}" first). */
export function computeValue(
  model: GPT2Model,
  layer: number,
  request: EditRequest,
  templates: readonly string[],
  hp: ValueHparams,
): ValueResult {
  const cfg = model.config;
  const d = cfg.nEmbd;
  const V = cfg.vocabSize;
  const targetIds = encodeText(model, spacedTarget(request.target));
  if (targetIds.length === 0) throw new Error(`ROME: target "${request.target}" has no tokens`);
  const m = targetIds.length;
  if (templates[0] !== '{}') throw new Error('computeValue: the first context template must be "{}" (it defines v₀)');

  // Rows: the prefixed edit prompts followed by the target tokens except the last, then the KL prompt.
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
  const B = rows.length;
  const { ids, T } = padIds(model, rows);

  // Constant selections: the δ mask [B,T,1], the scored positions (targets then the KL position), the weights.
  const maskData = new Float32Array(B * T);
  lookups.forEach((p, b) => (maskData[b * T + p] = 1));
  const flatPos: number[] = [];
  const tgt: number[] = [];
  const w: number[] = [];
  for (let b = 0; b < nRewrite; b++) {
    for (let j = 0; j < m; j++) {
      flatPos.push(b * T + promptLens[b] - 1 + j);
      tgt.push(targetIds[j]);
      w.push(1 / (m * nRewrite));
    }
  }
  const nT = flatPos.length;
  flatPos.push((B - 1) * T + klEnc.subjectLast);
  const consts = tf.tidy(() => ({
    mask: tf.keep(tf.tensor3d(maskData, [B, T, 1])),
    sel: tf.keep(selector(flatPos, B * T)),
    tgtW: tf.keep(tf.mul(oneHotRows(tgt, V), tf.tensor2d(w, [nT, 1]))),
  }));

  const residual =
    layer > 0 ? (forward(model.params, ids, { endLayer: layer, logits: 'none' }).hidden as tf.Tensor3D) : undefined;
  const mlpHook = `blocks.${layer}.mlp`;
  const zeros = tf.zeros([d]);
  const delta = tf.variable(zeros, true, `rome_ts/delta/${Date.now()}_${Math.random()}`);
  zeros.dispose();
  const optimizer = tf.train.adam(hp.vLr, 0.9, 0.999, 1e-8);

  // Scored log-probs [nT + 1, V] for the current δ; `capture` receives the MLP output when given.
  const scoredLogProbs = (capture?: (x: tf.Tensor) => void): tf.Tensor2D => {
    const out = forward(model.params, layer === 0 ? ids : null, {
      startLayer: layer,
      residual,
      logits: 'none',
      hooks: {
        [mlpHook]: (x) => {
          capture?.(x);
          return tf.add(x, tf.mul(consts.mask, delta));
        },
      },
    });
    const flat = tf.reshape(out.hidden, [B * T, d]) as tf.Tensor2D;
    return tf.logSoftmax(logitLens(model.params, tf.matMul(consts.sel, flat))) as tf.Tensor2D;
  };

  let v0Data: Float32Array | null = null;
  const klInit = tf.tidy(() => {
    const lp = scoredLogProbs((x) => {
      v0Data = tf.tidy(() => tf.reshape(tf.slice(x, [0, lookups[0], 0], [1, 1, d]), [d])).dataSync() as Float32Array;
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
        const nll = tf.neg(tf.sum(tf.mul(consts.tgtW, tf.slice(lp, [0, 0], [nT, V]))));
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
      losses.push({ step: it, loss: pv[0], nll: pv[1], kl: pv[2], weightDecay: pv[3] });
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
    residual?.dispose();
    ids.dispose();
    consts.mask.dispose();
    consts.sel.dispose();
    consts.tgtW.dispose();
  }
}
