/**
 * Byte-level BPE trainer in the GPT-2 style.
 *
 * Text is split into GPT-2 pre-tokens, which are counted once; merges are then learned on the table of
 * distinct pre-tokens ("words") weighted by frequency. Each merge only revisits the words containing the
 * merged pair (found through a pair -> words index) and updates pair counts incrementally; a lazy max-heap
 * picks the next pair. Ties between equally frequent pairs go to the smaller merge string 'left right' in
 * JS string order, so training is deterministic and independent of input order.
 */
import { BYTE_ORDER, byteToChar, pretokenize } from './byteLevel.js';
import { buildByteLevelTokenizerJson, type ByteLevelTokenizerJson } from './gpt2Json.js';

/** Progress report from trainBpe. */
export interface TrainProgress {
  /** Merges learned so far. */
  merges: number;
  /** Current vocabulary size, special tokens included. */
  vocabSize: number;
  /** Target vocabulary size. */
  targetVocabSize: number;
  /** The merge just learned ('left right'), and its pair frequency. */
  merge: string;
  count: number;
  /** Milliseconds since the merge phase started. */
  elapsedMs: number;
}

/** Options for trainBpe. */
export interface TrainBpeOptions {
  /** Final vocabulary size: 256 byte tokens + learned tokens + special tokens (e.g. 4096). */
  vocabSize: number;
  /** Special tokens, given the last ids; default ['<|endoftext|>']. They are never learned from the text. */
  specialTokens?: readonly string[];
  /** Stop early when the most frequent pair occurs fewer times than this; default 2. */
  minFrequency?: number;
  /** Called every `progressEvery` merges and after the last one. */
  onProgress?: (p: TrainProgress) => void;
  /** Default 250. */
  progressEvery?: number;
}

/** A trained byte-level BPE: GPT-2-style vocab (token string -> id, special tokens last) and merges in priority order. */
export interface TrainedBpe {
  vocab: Record<string, number>;
  merges: string[];
  specialTokens: string[];
}

/** Counts GPT-2 pre-tokens over any number of texts (the only pass over the raw corpus). */
export class PretokenCounter {
  /** Pre-token (raw text, not byte-level) -> number of occurrences. */
  readonly counts = new Map<string, number>();
  private readonly specials: RegExp | null;
  private totalCount = 0;

  /** `specialTokens` occurring literally in the text are cut out and not counted, as the tokenizer would. */
  constructor(specialTokens: readonly string[] = ['<|endoftext|>']) {
    const esc = specialTokens.filter((s) => s.length > 0).map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    this.specials = esc.length > 0 ? new RegExp(esc.join('|')) : null;
  }

  /** Adds the pre-tokens of one text (a document: pre-tokens never span two texts). */
  add(text: string): void {
    const parts = this.specials !== null ? text.split(this.specials) : [text];
    for (const part of parts) {
      for (const w of pretokenize(part)) {
        this.counts.set(w, (this.counts.get(w) ?? 0) + 1);
        this.totalCount++;
      }
    }
  }

  /** Total pre-tokens seen. */
  get total(): number {
    return this.totalCount;
  }
}

// Pair keys pack two symbol ids into one float64-exact integer.
const SHIFT = 2 ** 21;

interface HeapEntry {
  count: number;
  key: number;
}

/** Learns byte-level BPE merges from texts (or from pre-token counts) up to `options.vocabSize`. */
export function trainBpe(input: Iterable<string> | PretokenCounter, options: TrainBpeOptions): TrainedBpe {
  const specialTokens = [...(options.specialTokens ?? ['<|endoftext|>'])];
  const minFrequency = options.minFrequency ?? 2;
  const progressEvery = options.progressEvery ?? 250;
  const target = options.vocabSize;
  if (!Number.isInteger(target) || target < 256 + specialTokens.length) {
    throw new Error(`vocabSize must be an integer >= ${256 + specialTokens.length} (256 bytes + special tokens), got ${target}`);
  }
  if (target - specialTokens.length > SHIFT) throw new Error(`vocabSize too large (max ${SHIFT + specialTokens.length})`);

  let counter: PretokenCounter;
  if (input instanceof PretokenCounter) counter = input;
  else {
    counter = new PretokenCounter(specialTokens);
    for (const t of input) counter.add(t);
  }

  // Symbols: ids 0..255 are bytes in GPT-2's order; learned tokens follow.
  const tokStr: string[] = BYTE_ORDER.map(byteToChar);
  const strToId = new Map<string, number>(tokStr.map((s, i) => [s, i]));
  const byteToId = new Int32Array(256);
  BYTE_ORDER.forEach((b, i) => (byteToId[b] = i));

  // Word table.
  const enc = new TextEncoder();
  const words: Int32Array[] = [];
  const freq: number[] = [];
  for (const [w, c] of counter.counts) {
    const bytes = enc.encode(w);
    const sym = new Int32Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) sym[i] = byteToId[bytes[i]!]!;
    words.push(sym);
    freq.push(c);
  }

  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, number[]>();
  const addPairOccurrence = (key: number, f: number, w: number): void => {
    pairCount.set(key, (pairCount.get(key) ?? 0) + f);
    const list = pairWords.get(key);
    if (list === undefined) pairWords.set(key, [w]);
    else if (list[list.length - 1] !== w) list.push(w);
  };
  for (let w = 0; w < words.length; w++) {
    const sym = words[w]!;
    for (let i = 0; i + 1 < sym.length; i++) addPairOccurrence(sym[i]! * SHIFT + sym[i + 1]!, freq[w]!, w);
  }

  // Max-heap by count, then smallest (left, right) strings; equivalent to comparing 'left right' because
  // byte-level strings never contain a space.
  const heap: HeapEntry[] = [];
  const before = (x: HeapEntry, y: HeapEntry): boolean => {
    if (x.count !== y.count) return x.count > y.count;
    const xl = tokStr[Math.floor(x.key / SHIFT)]!;
    const yl = tokStr[Math.floor(y.key / SHIFT)]!;
    if (xl !== yl) return xl < yl;
    return tokStr[x.key % SHIFT]! < tokStr[y.key % SHIFT]!;
  };
  const push = (e: HeapEntry): void => {
    heap.push(e);
    let i = heap.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(heap[i]!, heap[p]!)) break;
      [heap[i], heap[p]] = [heap[p]!, heap[i]!];
      i = p;
    }
  };
  const pop = (): HeapEntry | undefined => {
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last !== undefined) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && before(heap[l]!, heap[m]!)) m = l;
        if (r < heap.length && before(heap[r]!, heap[m]!)) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m]!, heap[i]!];
        i = m;
      }
    }
    return top;
  };
  for (const [key, count] of pairCount) push({ count, key });

  const merges: string[] = [];
  const learnedTarget = target - specialTokens.length;
  const visited = new Int32Array(words.length).fill(-1);
  const start = Date.now();
  let lastCount = 0;
  const report = (): void => {
    options.onProgress?.({
      merges: merges.length,
      vocabSize: tokStr.length + specialTokens.length,
      targetVocabSize: target,
      merge: merges[merges.length - 1] ?? '',
      count: lastCount,
      elapsedMs: Date.now() - start,
    });
  };

  while (tokStr.length < learnedTarget) {
    const top = pop();
    if (top === undefined) break;
    const current = pairCount.get(top.key) ?? 0;
    if (current !== top.count) {
      // Stale entry. Increases were pushed when they happened; a decrease is re-queued here at its true value.
      if (current > 0 && current < top.count) push({ count: current, key: top.key });
      continue;
    }
    if (current < minFrequency) break;

    const a = Math.floor(top.key / SHIFT);
    const b = top.key % SHIFT;
    const merged = tokStr[a]! + tokStr[b]!;
    let c = strToId.get(merged);
    if (c === undefined) {
      c = tokStr.length;
      tokStr.push(merged);
      strToId.set(merged, c);
    }
    merges.push(`${tokStr[a]!} ${tokStr[b]!}`);
    lastCount = current;

    // Pair counts at the start of this merge, for pairs whose count changes; increases get a heap entry.
    const initial = new Map<number, number>();
    const adjust = (key: number, delta: number): void => {
      const was = pairCount.get(key) ?? 0;
      if (!initial.has(key)) initial.set(key, was);
      const n = was + delta;
      if (n > 0) pairCount.set(key, n);
      else pairCount.delete(key);
    };

    const iteration = merges.length;
    for (const w of pairWords.get(top.key) ?? []) {
      if (visited[w] === iteration) continue;
      visited[w] = iteration;
      const sym = words[w]!;
      let has = false;
      for (let i = 0; i + 1 < sym.length; i++) {
        if (sym[i] === a && sym[i + 1] === b) {
          has = true;
          break;
        }
      }
      if (!has) continue; // stale index entry: an earlier merge already changed this word
      const f = freq[w]!;
      const out = new Int32Array(sym.length);
      let n = 0;
      for (let i = 0; i < sym.length; ) {
        if (i + 1 < sym.length && sym[i] === a && sym[i + 1] === b) {
          out[n++] = c;
          i += 2;
        } else out[n++] = sym[i++]!;
      }
      // Only pairs touching a, b or c can differ between the old and new word (the rest are the same
      // adjacencies), so only those are removed and re-added. Pairs without c existed in the old word, so
      // only pairs with c may need the word added to the index. (c can predate this merge when another
      // merge produced the same string.)
      for (let i = 0; i + 1 < sym.length; i++) {
        const x = sym[i]!;
        const y = sym[i + 1]!;
        if (x === a || x === b || x === c || y === a || y === b || y === c) adjust(x * SHIFT + y, -f);
      }
      const next = out.slice(0, n);
      for (let i = 0; i + 1 < n; i++) {
        const x = next[i]!;
        const y = next[i + 1]!;
        if (x === c || y === c) {
          const key = x * SHIFT + y;
          if (!initial.has(key)) initial.set(key, pairCount.get(key) ?? 0);
          addPairOccurrence(key, f, w);
        } else if (x === a || x === b || y === a || y === b) adjust(x * SHIFT + y, f);
      }
      words[w] = next;
    }
    pairCount.delete(top.key);
    pairWords.delete(top.key);
    for (const [key, was] of initial) {
      const now = pairCount.get(key) ?? 0;
      if (now > was) push({ count: now, key });
    }
    if (merges.length % progressEvery === 0) report();
  }
  if (merges.length % progressEvery !== 0) report();

  const vocab = Object.create(null) as Record<string, number>;
  tokStr.forEach((s, i) => (vocab[s] = i));
  specialTokens.forEach((s, i) => {
    if (s in vocab) throw new Error(`special token ${JSON.stringify(s)} collides with a learned token`);
    vocab[s] = tokStr.length + i;
  });
  return { vocab, merges, specialTokens };
}

/** Trains (see trainBpe) and returns a loadable HF tokenizer.json with the special tokens as added tokens. */
export function trainByteLevelTokenizerJson(
  input: Iterable<string> | PretokenCounter,
  options: TrainBpeOptions,
): ByteLevelTokenizerJson {
  const bpe = trainBpe(input, options);
  return buildByteLevelTokenizerJson({ vocab: bpe.vocab, merges: bpe.merges, addedTokens: bpe.specialTokens });
}
