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

/** For each item, the greedy next-token id after its prompt (batched, right-padded; results in input order). */
export function greedyFirstTokens(model: GPT2Model, prompts: readonly string[], batchSize = 64): number[] {
  const tok = model.tokenizer;
  if (!tok) throw new Error(`greedyFirstTokens: model "${model.name}" has no tokenizer`);
  const cases = prompts.map((p, i) => ({ i, ids: tok.encode(p).ids }));
  // Sorting by length keeps padding small.
  cases.sort((a, b) => a.ids.length - b.ids.length);
  const out = new Array<number>(prompts.length).fill(-1);
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
    chunk.forEach((c, b) => (out[c.i] = pred[b] as number));
  }
  return out;
}

/** The token id that counts as recalling `object`: the first token of " " + object. */
export function objectFirstToken(model: GPT2Model, object: string): number {
  const tok = model.tokenizer;
  if (!tok) throw new Error(`objectFirstToken: model "${model.name}" has no tokenizer`);
  return tok.encode(` ${object}`).ids[0] as number;
}

/** For each item, whether greedy decoding's first token is the first token of " " + object. Batched, right-padded. */
export function greedyRecall(model: GPT2Model, items: readonly RecallItem[], batchSize = 64): boolean[] {
  const pred = greedyFirstTokens(
    model,
    items.map((it) => it.prompt),
    batchSize,
  );
  return items.map((it, i) => pred[i] === objectFirstToken(model, it.object));
}

/** Mean of a boolean list (NaN when empty). */
export function rate(xs: readonly boolean[]): number {
  return xs.length ? xs.filter(Boolean).length / xs.length : NaN;
}

/** A recall item with the competing objects it is ranked against (e.g. every object of its relation). */
export interface RankedRecallItem extends RecallItem {
  candidates: readonly string[];
}

/**
 * For each item, whether the first token of " " + object has a higher next-token logit than the first token of every
 * other candidate. Candidates sharing the object's first token are not competitors (they cannot be told apart at
 * the first token). Unlike {@link greedyRecall}, a prompt whose natural continuation is a function word
 * ("X is a member of" → " the") still counts when the model prefers the true object among the relation's objects,
 * the forced-choice reading of the paper's paraphrase score.
 */
export function candidateRecall(model: GPT2Model, items: readonly RankedRecallItem[], batchSize = 64): boolean[] {
  const tok = model.tokenizer;
  if (!tok) throw new Error(`candidateRecall: model "${model.name}" has no tokenizer`);
  const firstTok = new Map<string, number>();
  const first = (o: string): number => {
    let t = firstTok.get(o);
    if (t === undefined) firstTok.set(o, (t = objectFirstToken(model, o)));
    return t;
  };
  const cases = items.map((it, i) => ({ i, ids: tok.encode(it.prompt).ids }));
  cases.sort((a, b) => a.ids.length - b.ids.length);
  const out = new Array<boolean>(items.length).fill(false);
  for (let s = 0; s < cases.length; s += batchSize) {
    const chunk = cases.slice(s, s + batchSize);
    const r = model.run(
      chunk.map((c) => c.ids),
      { logits: 'last' },
    );
    const logits = r.logits!.tensor.dataSync();
    r.dispose();
    const V = model.config.vocabSize;
    chunk.forEach((c, b) => {
      const it = items[c.i] as RankedRecallItem;
      const t = first(it.object);
      const mine = logits[b * V + t] as number;
      out[c.i] = it.candidates.every((o) => {
        const u = first(o);
        return u === t || (logits[b * V + u] as number) < mine;
      });
    });
  }
  return out;
}
