/**
 * Greedy first-token recall of facts: does the model's top-1 next token after a prompt equal the first token of
 * " " + object? This is the accuracy the bundled model's card and tests report.
 */
import type { GPT2Model } from './model/model.js';

/** A prompt and the object expected to follow it (without the leading space). */
export interface RecallItem {
  prompt: string;
  object: string;
}

/**
 * Runs prompts in length-sorted, right-padded batches and calls `visit(i, logits, offset)` with prompt i's last-position
 * logits at logits[offset … offset + V). The one batched pass behind every recall measure here.
 */
export function visitLastLogits(
  model: GPT2Model,
  prompts: readonly string[],
  visit: (i: number, logits: Float32Array, offset: number) => void,
  batchSize = 64,
): void {
  const tok = model.tokenizer;
  if (!tok) throw new Error(`visitLastLogits: model "${model.name}" has no tokenizer`);
  const cases = prompts.map((p, i) => ({ i, ids: tok.encode(p).ids }));
  // Sorting by length keeps padding small.
  cases.sort((a, b) => a.ids.length - b.ids.length);
  const V = model.config.vocabSize;
  for (let s = 0; s < cases.length; s += batchSize) {
    const chunk = cases.slice(s, s + batchSize);
    const r = model.run(
      chunk.map((c) => c.ids),
      { logits: 'last' },
    );
    const logits = r.logits!.tensor.dataSync() as Float32Array;
    r.dispose();
    chunk.forEach((c, b) => visit(c.i, logits, b * V));
  }
}

/** Index of the largest of logits[offset … offset + V) (first on ties, as tf.argMax). */
function argMaxAt(logits: Float32Array, offset: number, V: number): number {
  let best = 0;
  for (let k = 1; k < V; k++) if ((logits[offset + k] as number) > (logits[offset + best] as number)) best = k;
  return best;
}

/** For each prompt, the greedy next-token id (results in input order). */
export function greedyFirstTokens(model: GPT2Model, prompts: readonly string[], batchSize = 64): number[] {
  const out = new Array<number>(prompts.length).fill(-1);
  const V = model.config.vocabSize;
  visitLastLogits(model, prompts, (i, logits, off) => (out[i] = argMaxAt(logits, off, V)), batchSize);
  return out;
}

/** The token id that counts as recalling `object`: the first token of " " + object. */
export function objectFirstToken(model: GPT2Model, object: string): number {
  const tok = model.tokenizer;
  if (!tok) throw new Error(`objectFirstToken: model "${model.name}" has no tokenizer`);
  return tok.encodeContinuation(` ${object}`)[0] as number;
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
  return recallScores(model, items, batchSize).forced;
}

/**
 * Greedy first token and forced choice for each item from one pass: `greedy[i]` is the predicted token id, `forced[i]`
 * as {@link candidateRecall}.
 */
export function recallScores(
  model: GPT2Model,
  items: readonly RankedRecallItem[],
  batchSize = 64,
): { greedy: number[]; forced: boolean[] } {
  const V = model.config.vocabSize;
  const firstTok = new Map<string, number>();
  const first = (o: string): number => {
    let t = firstTok.get(o);
    if (t === undefined) firstTok.set(o, (t = objectFirstToken(model, o)));
    return t;
  };
  const greedy = new Array<number>(items.length).fill(-1);
  const forced = new Array<boolean>(items.length).fill(false);
  visitLastLogits(
    model,
    items.map((it) => it.prompt),
    (i, logits, off) => {
      const it = items[i] as RankedRecallItem;
      greedy[i] = argMaxAt(logits, off, V);
      const t = first(it.object);
      const mine = logits[off + t] as number;
      forced[i] = it.candidates.every((o) => {
        const u = first(o);
        return u === t || (logits[off + u] as number) < mine;
      });
    },
    batchSize,
  );
  return { greedy, forced };
}
