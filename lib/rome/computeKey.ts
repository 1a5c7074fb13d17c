/**
 * ROME step 1, the key k*: the MLP key (input of the output projection, hook `blocks.{l}.mlp.key`) at the
 * subject's last token, averaged over the context-prefixed prompts. Only blocks 0..l run.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GPT2Model } from '../model/model.js';
import { encodeWithSubject, fillWithSpan, padIds, selector } from './tokens.js';
import { fillPrompt, type EditRequest } from './types.js';

/** Texts whose key to read, each with the subject whose last token is read. */
export interface KeyQuery {
  text: string;
  subject: string;
  /** Character offset of the subject in `text` (default: its first occurrence). */
  at?: number;
}

/** The key at the subject's last token of each text, at `layer`: one Float32Array [nInner] per text. */
export function keysAtSubject(model: GPT2Model, layer: number, queries: readonly KeyQuery[], batchSize = 32): Float32Array[] {
  const out: Float32Array[] = [];
  const n = model.config.nInner;
  for (let i0 = 0; i0 < queries.length; i0 += batchSize) {
    const chunk = queries.slice(i0, i0 + batchSize).map((q) => encodeWithSubject(model, q.text, q.subject, q.at));
    const { ids, T } = padIds(model, chunk.map((c) => c.ids));
    let captured: tf.Tensor | null = null;
    const fo = model.forward(ids, {
      endLayer: layer + 1,
      logits: 'none',
      hooks: {
        [`blocks.${layer}.mlp.key`]: (x) => {
          captured = tf.keep(tf.clone(x));
        },
      },
    });
    fo.hidden.dispose();
    ids.dispose();
    const keyT = captured as unknown as tf.Tensor;
    const picked = tf.tidy(() => {
      const flat = tf.reshape(keyT, [-1, n]) as tf.Tensor2D;
      return tf.matMul(selector(chunk.map((c, b) => b * T + c.subjectLast), chunk.length * T), flat);
    });
    keyT.dispose();
    const data = picked.dataSync() as Float32Array;
    picked.dispose();
    for (let b = 0; b < chunk.length; b++) out.push(data.slice(b * n, (b + 1) * n));
  }
  return out;
}

/** k* and the bare-prompt key for a request, given the context templates ("{}" must be the first). */
export interface KeyResult {
  /** Mean key over the prefixed prompts [nInner]. */
  kStar: Float32Array;
  /** Key of the bare prompt (template "{}"), which the official code uses for the right vector. */
  kBare: Float32Array;
  /** The prompts the mean was taken over. */
  prompts: string[];
}

/** Computes k* (paper eq.: mean over context-prefixed prompts of the key at the subject's last token). */
export function computeKey(model: GPT2Model, layer: number, request: EditRequest, templates: readonly string[]): KeyResult {
  const filled = templates.map((t) => fillWithSpan(t, request.prompt, request.subject));
  const prompts = filled.map((f) => f.text);
  const keys = keysAtSubject(model, layer, filled.map((f) => ({ text: f.text, at: f.at, subject: request.subject })));
  const n = model.config.nInner;
  const mean = new Float64Array(n);
  for (const k of keys) for (let i = 0; i < n; i++) mean[i] += k[i];
  const kStar = new Float32Array(n);
  for (let i = 0; i < n; i++) kStar[i] = mean[i] / keys.length;
  const bareIdx = templates.indexOf('{}');
  const kBare = bareIdx >= 0 ? keys[bareIdx] : keysAtSubject(model, layer, [{ text: fillPrompt(request.prompt, request.subject), subject: request.subject }])[0];
  return { kStar, kBare, prompts };
}
