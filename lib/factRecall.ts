/**
 * Greedy first-token recall of facts: does the model's top-1 next token after a prompt equal the first token of
 * " " + object? This is the accuracy the bundled model's card and tests report.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GPT2Model } from './model/model.js';

/** A prompt and the object expected to follow it (without the leading space). */
export interface RecallItem {
  prompt: string;
  object: string;
}

/** For each item, whether greedy decoding's first token is the first token of " " + object. Batched, right-padded. */
export function greedyRecall(model: GPT2Model, items: readonly RecallItem[], batchSize = 64): boolean[] {
  const tok = model.tokenizer;
  if (!tok) throw new Error(`greedyRecall: model "${model.name}" has no tokenizer`);
  const cases = items.map((it, i) => ({ i, ids: tok.encode(it.prompt).ids, target: tok.encode(` ${it.object}`).ids[0] }));
  // Sorting by length keeps padding small; results go back to input order.
  cases.sort((a, b) => a.ids.length - b.ids.length);
  const out = new Array<boolean>(items.length).fill(false);
  for (let s = 0; s < cases.length; s += batchSize) {
    const chunk = cases.slice(s, s + batchSize);
    const r = model.run(
      chunk.map((c) => c.ids),
      { logits: 'last' },
    );
    const am = tf.tidy(() => tf.argMax(r.logits!.tensor, -1));
    const pred = am.dataSync();
    am.dispose();
    r.dispose();
    chunk.forEach((c, b) => (out[c.i] = pred[b] === c.target));
  }
  return out;
}

/** Mean of a boolean list (NaN when empty). */
export function rate(xs: readonly boolean[]): number {
  return xs.length ? xs.filter(Boolean).length / xs.length : NaN;
}
