/**
 * KN baseline (knowledge neurons, Dai et al. 2022, as run by the ROME authors through the `knowledge_neurons`
 * package with hparams/KN: steps 20, adaptive threshold 0.2, p 0.4, refine false):
 *
 * 1. Attribution: for every layer l and MLP neuron i (the key `blocks.{l}.mlp.key` at the prompt's last token),
 *    integrated gradients of p(true answer token) with the activation scaled from 0 to its value in `steps`
 *    points (α = 0, 1/(steps−1), ..., 1, as the package's linspace): IG = a_i · Σ_α ∂p/∂a_i(α·a) / steps.
 *    Multi-token answers: the IG is averaged over the answer tokens, each scored after the prompt plus the
 *    earlier answer tokens (teacher forcing; the package extends the prompt with the model's argmax instead).
 * 2. Selection: neurons with IG > adaptiveThreshold · max IG. With one prompt the package's refinement (keep
 *    neurons found in more than p of the prompts) keeps all of them, so it is not repeated here.
 * 3. Edit (package's `edit_knowledge`): each selected neuron's row of that layer's c_proj weight gets
 *    −2·emb(original top-1 prediction) + 2·emb(first token of the new target), scaled by lrScale.
 */
import * as tf from '@tensorflow/tfjs-core';
import { forward, logitLens, type KVCache } from '../model/forward.js';
import type { GPT2Model } from '../model/model.js';
import { commitEdit, float32ToBase64 } from '../rome/edits.js';
import { checkHparams, locateHparamsFile, rules, type HparamRule } from '../rome/hparams.js';
import { mlpProjParams } from '../rome/rankOneUpdate.js';
import { headParam } from '../model/family.js';
import { encodeTarget, encodeText } from '../rome/tokens.js';
import { checkEditRequest, fillPrompt, spacedTarget, type EditHandle, type EditRequest, type ParamUpdate } from '../rome/types.js';

/** KN hyperparameters (official names in comments). */
export interface KnHparams {
  /** Riemann steps of the integral (steps: 20). */
  steps: number;
  /** Neurons above this fraction of the maximum attribution are selected (adaptive_threshold: 0.2). */
  adaptiveThreshold: number;
  /** Scale of the embedding edit (lr_scale: 1.0). */
  lrScale: number;
  /** Upper bound on selected neurons (not in the package; guards against a flat attribution). */
  maxNeurons: number;
}

/** Official KN values. */
export const KN_DEFAULTS: KnHparams = { steps: 20, adaptiveThreshold: 0.2, lrScale: 1, maxNeurons: 1000 };

/** Field rules of KN hyperparameters ("p" and "refine" are the official files' fields, unused here). */
export const KN_HPARAM_RULES: Record<string, HparamRule> = {
  steps: rules.int(1),
  adaptiveThreshold: rules.num(0),
  lrScale: rules.num(0),
  maxNeurons: rules.int(1),
  p: rules.any(),
  refine: rules.any(),
};

/** KN hyperparameters from hparams/KN/<name>.json (or a path). */
export function loadKnHparams(name: string): KnHparams {
  const { file, raw } = locateHparamsFile('KN', name);
  checkHparams(file, raw, KN_HPARAM_RULES);
  const out = { ...KN_DEFAULTS };
  for (const k of Object.keys(KN_DEFAULTS) as (keyof KnHparams)[]) if (raw[k] !== undefined) out[k] = raw[k] as number;
  return out;
}

/** Integrated-gradients attribution [nLayer][nInner] of the answer tokens after `prompt`. */
export function knAttribution(model: GPT2Model, prompt: string, answer: string, steps = KN_DEFAULTS.steps): Float64Array[] {
  const { nLayer, nInner } = model.config;
  const p = encodeText(model, prompt);
  const a = encodeTarget(model, answer);
  const scores = Array.from({ length: nLayer }, () => new Float64Array(nInner));
  const alphas = tf.tensor2d(Array.from({ length: steps }, (_, i) => (steps === 1 ? 1 : i / (steps - 1))), [steps, 1]);
  try {
    for (let j = 0; j < a.length; j++) {
      const row = [...p, ...a.slice(0, j)];
      const T = row.length;
      const ids = tf.tensor2d([row], [1, T], 'int32');
      // Scaling the last position's keys changes nothing before it: run the prompt once, keep the keys/values of
      // positions < T−1, and recompute only the last position of blocks ≥ l for the `steps` points of the integral.
      const keys: tf.Tensor[] = [];
      const resid: tf.Tensor[] = [];
      const hooks: Record<string, (x: tf.Tensor) => void> = {};
      const lastOf = (x: tf.Tensor, w: number) => tf.slice(x, [0, T - 1, 0], [1, 1, w]);
      for (let l = 0; l < nLayer; l++) {
        hooks[`blocks.${l}.mlp.key`] = (x) => void keys.push(tf.keep(tf.reshape(lastOf(x, nInner), [1, nInner])));
        if (l > 0) hooks[`blocks.${l - 1}`] = (x) => void resid.push(tf.keep(tf.tile(lastOf(x, model.config.nEmbd), [steps, 1, 1])));
      }
      const out = forward(model.params, ids, { logits: 'none', hooks, returnPresent: T > 1 });
      out.hidden.dispose();
      let past: KVCache | undefined;
      if (out.present) {
        const cut = (t: tf.Tensor4D) => tf.tidy(() => tf.tile(tf.slice(t, [0, 0, 0, 0], [1, -1, T - 1, -1]), [steps, 1, 1, 1]) as tf.Tensor4D);
        past = { k: out.present.k.map(cut), v: out.present.v.map(cut) };
        tf.dispose([...out.present.k, ...out.present.v]);
      }
      const idsB = tf.fill([steps, 1], row[T - 1] as number, 'int32') as tf.Tensor2D;
      for (let l = 0; l < nLayer; l++) {
        const base = keys[l];
        const scaled = tf.mul(alphas, base) as tf.Tensor2D;
        const g = tf.grad((z: tf.Tensor) => {
          const o = forward(model.params, l === 0 ? idsB : null, {
            startLayer: l,
            residual: l === 0 ? undefined : (resid[l - 1] as tf.Tensor3D),
            past,
            logits: 'none',
            hooks: { [`blocks.${l}.mlp.key`]: () => tf.expandDims(z, 1) },
          });
          const last = tf.reshape(o.hidden, [steps, model.config.nEmbd]);
          const probs = tf.softmax(logitLens(model.params, last));
          const onehot = tf.oneHot(tf.fill([steps], a[j], 'int32'), model.config.vocabSize);
          return tf.sum(tf.mul(probs, onehot)) as tf.Scalar;
        })(scaled);
        const ig = tf.tidy(() => tf.mul(tf.div(tf.sum(g, 0), steps), tf.reshape(base, [nInner])));
        const d = ig.dataSync();
        for (let i = 0; i < nInner; i++) scores[l][i] += d[i] / a.length;
        for (const t of [scaled, g, ig]) t.dispose();
      }
      if (past) tf.dispose([...past.k, ...past.v]);
      for (const t of [...keys, ...resid, ids, idsB]) t.dispose();
    }
  } finally {
    alphas.dispose();
  }
  return scores;
}

/** Applies the KN edit for a request (needs `request.targetTrue`, the answer whose neurons are attributed). */
export async function knEdit(model: GPT2Model, request: EditRequest, hparams: Partial<KnHparams> = {}): Promise<EditHandle> {
  checkEditRequest(request);
  const hp = { ...KN_DEFAULTS, ...hparams };
  checkHparams('KN hyperparameters', hp as unknown as Record<string, unknown>, KN_HPARAM_RULES);
  if (!request.targetTrue) throw new Error('KN needs request.targetTrue (the true answer to attribute)');
  const req: EditRequest = { ...request, target: spacedTarget(request.target), targetTrue: spacedTarget(request.targetTrue) };
  const prompt = fillPrompt(req.prompt, req.subject);
  const scores = knAttribution(model, prompt, req.targetTrue!, hp.steps);
  let max = -Infinity;
  for (const s of scores) for (const v of s) max = Math.max(max, v);
  let neurons: { layer: number; neuron: number; score: number }[] = [];
  scores.forEach((s, l) => s.forEach((v, i) => v > hp.adaptiveThreshold * max && neurons.push({ layer: l, neuron: i, score: v })));
  neurons.sort((x, y) => y.score - x.score);
  neurons = neurons.slice(0, hp.maxNeurons);
  const top = model.topTokens(prompt, 1)[0];
  const newTok = encodeTarget(model, req.target)[0];
  const emb = model.getParam(headParam(model.config));
  const d = model.config.nEmbd;
  const rowsOf = (id: number) => tf.tidy(() => tf.reshape(tf.slice(emb, [id, 0], [1, d]), [d]).dataSync() as Float32Array);
  const eOld = rowsOf(top.id);
  const eNew = rowsOf(newTok);
  const updates: ParamUpdate[] = [];
  for (let l = 0; l < model.config.nLayer; l++) {
    const rows = neurons.filter((n) => n.layer === l).map((n) => n.neuron).sort((x, y) => x - y);
    if (rows.length === 0) continue;
    const name = mlpProjParams(l, model.config).weight;
    const w = model.getParam(name).dataSync() as Float32Array;
    const vals = new Float32Array(rows.length * d);
    rows.forEach((r, k) => {
      for (let j = 0; j < d; j++) vals[k * d + j] = w[r * d + j] - 2 * hp.lrScale * eOld[j] + 2 * hp.lrScale * eNew[j];
    });
    updates.push({ kind: 'rows', param: name, rows, cols: d, valuesBase64: float32ToBase64(vals) });
  }
  const mainLayer = neurons.length ? neurons[0].layer : 0;
  return commitEdit(model, {
    method: 'kn',
    layer: mainLayer,
    request: req,
    losses: [],
    updates,
    info: {
      hparams: hp,
      neurons: neurons.map((n) => [n.layer, n.neuron]),
      maxAttribution: max,
      originalPrediction: top.token,
      originalPredictionId: top.id,
      newToken: newTok,
    },
  });
}
