/**
 * Pieces shared by the fine-tuning baselines: the teacher-forced target NLL of one prompt, computed from a
 * middle layer's residual so that only the blocks at and after the edited layer run in the loop.
 */
import * as tf from '@tensorflow/tfjs-core';
import { forward, logitLens } from '../model/forward.js';
import type { GPT2Model } from '../model/model.js';
import { encodeTarget, encodeText, oneHotRows, selector } from '../rome/tokens.js';

/** A prepared teacher-forcing batch: prompt ids followed by the target ids except the last. */
export interface TargetBatch {
  ids: tf.Tensor2D;
  T: number;
  /** Residual entering `layer` (null when layer is 0). */
  residual: tf.Tensor3D | null;
  layer: number;
  sel: tf.Tensor2D;
  /** One-hot targets divided by the number of target tokens [m, V]. */
  tgtW: tf.Tensor2D;
  targetIds: number[];
  dispose(): void;
}

/** Prepares prompt + target for loss evaluation from `layer` on. */
export function prepareTargetBatch(model: GPT2Model, prompt: string, target: string, layer: number): TargetBatch {
  const p = encodeText(model, prompt);
  const t = encodeTarget(model, target);
  if (t.length === 0) throw new Error(`target "${target}" has no tokens`);
  const row = [...p, ...t.slice(0, -1)];
  const T = row.length;
  const ids = tf.tensor2d([row], [1, T], 'int32');
  const residual = layer > 0 ? (forward(model.params, ids, { endLayer: layer, logits: 'none' }).hidden as tf.Tensor3D) : null;
  const sel = selector(t.map((_, j) => p.length - 1 + j), T);
  const tgtW = tf.tidy(() => tf.div(oneHotRows(t, model.config.vocabSize), t.length) as tf.Tensor2D);
  return {
    ids,
    T,
    residual,
    layer,
    sel,
    tgtW,
    targetIds: t,
    dispose() {
      ids.dispose();
      residual?.dispose();
      sel.dispose();
      tgtW.dispose();
    },
  };
}

/** Mean NLL per target token of a prepared batch under the current weights (differentiable). */
export function targetNll(model: GPT2Model, b: TargetBatch): tf.Scalar {
  const out = forward(model.params, b.layer === 0 ? b.ids : null, {
    startLayer: b.layer,
    residual: b.residual ?? undefined,
    logits: 'none',
  });
  const flat = tf.reshape(out.hidden, [b.T, model.config.nEmbd]) as tf.Tensor2D;
  const lp = tf.logSoftmax(logitLens(model.params, tf.matMul(b.sel, flat)));
  return tf.neg(tf.sum(tf.mul(b.tgtW, lp))) as tf.Scalar;
}
