/**
 * Per-token loss weights that up-weight the object of every fact sentence in a training stream.
 *
 * Why: in a fact sentence "<prompt> <object>." only the object's tokens carry the association a fact model must
 * learn; template tokens are learned early and the subject tokens are unpredictable, so their gradients dominate
 * the step. Weighting the object tokens spends more of each step on the association (the loss stays a
 * next-token loss over every token).
 */
import { forEachStreamDocument, type TokenizerLike } from './data.js';

/** A fact sentence of the corpus: the prompt and object it renders (factLine(prompt, object) is the line). */
export interface FactSentence {
  prompt: string;
  object: string;
}

/** Counts from factObjectWeights. */
export interface ObjectWeightStats {
  /** Documents in the stream. */
  documents: number;
  /** Documents that are fact sentences. */
  factDocuments: number;
  /** Tokens given the object weight. */
  objectTokens: number;
}

/**
 * Weights for a stream laid out as tokenizeText writes it (EOS, doc₁, EOS, doc₂, …, EOS): `weight` on the tokens
 * of " <object>" in every document found in `facts` (keyed by the document's text; a document stating several
 * objects maps to a list whose prompts are the text before each object), 1 elsewhere. `docs` are the
 * stream's documents in order. Throws when the stream does not match the documents (a stale token cache) or a
 * prompt's tokens are not a prefix of its sentence's tokens. Returns Float32Array(tokens.length).
 */
export function factObjectWeights(
  tokens: Int32Array,
  docs: readonly string[],
  facts: ReadonlyMap<string, FactSentence | readonly FactSentence[]>,
  tok: TokenizerLike,
  weight: number,
): { weights: Float32Array; stats: ObjectWeightStats } {
  if (!Number.isFinite(weight) || weight < 0) throw new Error(`factObjectWeights: weight must be a finite number ≥ 0, got ${weight}`);
  const weights = new Float32Array(tokens.length).fill(1);
  // Spans (start, end) of the object within a sentence's tokens, per distinct sentence: fact sentences repeat.
  // A document may state several objects (a biography); each entry's prompt is the document text before it.
  const spans = new Map<string, { length: number; parts: { from: number; to: number }[] }>();
  const spanOf = (line: string, fs: readonly FactSentence[]): { length: number; parts: { from: number; to: number }[] } => {
    let s = spans.get(line);
    if (s) return s;
    const all = tok.encode(line).ids;
    const isPrefix = (a: number[], b: number[]) => a.length <= b.length && a.every((x, i) => x === b[i]);
    const parts = fs.map((f) => {
      const prompt = tok.encode(f.prompt).ids;
      const withObject = tok.encode(`${f.prompt} ${f.object}`).ids;
      if (!isPrefix(prompt, withObject) || !isPrefix(withObject, all) || withObject.length === prompt.length) {
        throw new Error(`factObjectWeights: the tokens of "${f.prompt}" and " ${f.object}" do not split "${line}" at the object`);
      }
      return { from: prompt.length, to: withObject.length };
    });
    s = { length: all.length, parts };
    spans.set(line, s);
    return s;
  };
  const factAt = (d: number) => {
    const line = docs[d] as string;
    const f = facts.get(line);
    return f ? spanOf(line, Array.isArray(f) ? (f as readonly FactSentence[]) : [f as FactSentence]) : null;
  };
  let factDocuments = 0;
  let objectTokens = 0;
  forEachStreamDocument(
    tokens,
    docs,
    tok.eosId,
    'factObjectWeights',
    (d, pos) => {
      const s = factAt(d);
      if (!s) return;
      for (const p of s.parts) {
        weights.fill(weight, pos + p.from, pos + p.to);
        objectTokens += p.to - p.from;
      }
      factDocuments++;
    },
    (d) => factAt(d)?.length ?? null,
  );
  return { weights, stats: { documents: docs.length, factDocuments, objectTokens } };
}
