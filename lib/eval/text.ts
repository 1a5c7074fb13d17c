/**
 * Text metrics of the paper's generation evaluation: n-gram entropy (GE) and TF-IDF cosine similarity (RS).
 *
 * - Word tokenisation for n-grams: the official code uses nltk.word_tokenize; rome-ts splits into runs of word
 *   characters and single punctuation marks (the same for plain English, no contractions splitting).
 * - TF-IDF as scikit-learn's TfidfVectorizer with the official precomputed idf: lowercase, tokens = /\b\w\w+\b/,
 *   tf = raw counts, weight tf·idf, words outside the idf vocabulary ignored; cosine of the two vectors.
 * - IDF (smooth, as scikit-learn): idf(w) = ln((1 + N) / (1 + df(w))) + 1 over N documents.
 */

/** Word and punctuation tokens (an approximation of nltk.word_tokenize). */
export function wordTokens(text: string): string[] {
  return text.match(/[\p{L}\p{N}_]+(?:'[\p{L}]+)?|[^\s\p{L}\p{N}_]/gu) ?? [];
}

/** Entropy in bits of the frequency distribution of the n-grams of a token list (0 when there are none). */
export function ngramEntropyOfTokens(tokens: readonly string[], n: number): number {
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const g = tokens.slice(i, i + n).join('\u0001');
    counts.set(g, (counts.get(g) ?? 0) + 1);
  }
  let total = 0;
  for (const c of counts.values()) total += c;
  let h = 0;
  for (const c of counts.values()) {
    const p = c / total;
    h -= p * Math.log2(p);
  }
  return h;
}

/** The paper's generation entropy of one text: (2/3·H₂ + 4/3·H₃) / 2, in bits. */
export function ngramEntropy(text: string): number {
  const t = wordTokens(text);
  return ((2 / 3) * ngramEntropyOfTokens(t, 2) + (4 / 3) * ngramEntropyOfTokens(t, 3)) / 2;
}

/** scikit-learn's default token pattern, lowercased. */
export function tfidfTokens(text: string): string[] {
  return text.toLowerCase().match(/\b\w\w+\b/gu) ?? [];
}

/** Inverse document frequencies over a vocabulary. */
export interface Idf {
  /** Number of documents it was computed from. */
  nDocs: number;
  idf: Map<string, number>;
}

/** Smooth IDF over documents (each document's distinct tokens count once). */
export function buildIdf(docs: Iterable<string>): Idf {
  const df = new Map<string, number>();
  let n = 0;
  for (const d of docs) {
    n++;
    for (const w of new Set(tfidfTokens(d))) df.set(w, (df.get(w) ?? 0) + 1);
  }
  const idf = new Map<string, number>();
  for (const [w, c] of df) idf.set(w, Math.log((1 + n) / (1 + c)) + 1);
  return { nDocs: n, idf };
}

/** Sparse TF-IDF vector of a text (words outside the vocabulary dropped). */
export function tfidfVector(text: string, idf: Idf): Map<string, number> {
  const v = new Map<string, number>();
  for (const w of tfidfTokens(text)) {
    const i = idf.idf.get(w);
    if (i !== undefined) v.set(w, (v.get(w) ?? 0) + i);
  }
  return v;
}

/** Cosine similarity of the TF-IDF vectors of two texts (0 when either is empty). */
export function tfidfCosine(a: string, b: string, idf: Idf): number {
  const va = tfidfVector(a, idf);
  const vb = tfidfVector(b, idf);
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (const [w, x] of va) {
    na += x * x;
    const y = vb.get(w);
    if (y !== undefined) dot += x * y;
  }
  for (const y of vb.values()) nb += y * y;
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}
