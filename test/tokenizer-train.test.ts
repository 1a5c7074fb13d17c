// Tests for the byte-level BPE trainer: hand-computed merges, agreement with a naive re-counting trainer,
// round trips, and loading the result through Tokenizer.
import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PretokenCounter, trainBpe, trainByteLevelTokenizerJson } from '../lib/tokenizer/trainBpe.js';
import { Tokenizer } from '../lib/tokenizer/tokenizer.js';
import { BYTE_ORDER, byteToChar, pretokenize, textToByteLevel } from '../lib/tokenizer/byteLevel.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function rng(seed: number): (k: number) => number {
  let s = seed >>> 0;
  return (k) => {
    s = (s * 1103515245 + 12345) >>> 0;
    return (s >>> 8) % k;
  };
}

// A few hundred KB of English if the data directory exists, else generated pseudo-English.
function sampleCorpus(maxChars: number): string {
  const dirs = [process.env['ROME_TS_DATA'], path.resolve(repoRoot, '..', 'shared', 'data')];
  for (const d of dirs) {
    const f = d ? path.join(d, 'corpus', 'gutenberg', 'Carroll__Alice_s_Adventures_in_Wonderland.txt') : '';
    if (d && existsSync(f)) return readFileSync(f, 'utf8').slice(0, maxChars);
  }
  const words = ['the', 'cat', 'sat', 'on', 'mat', 'Alice', 'said', 'rabbit', 'queen', 'tea', 'party', 'and', 'was', 'very', 'curious'];
  const r = rng(7);
  let s = '';
  while (s.length < maxChars) s += (r(12) === 0 ? '.\n' : ' ') + words[r(words.length)]!;
  return s;
}

// Naive trainer: recount every pair of every word before each merge (independent of the incremental code).
function naiveMerges(texts: string[], nMerges: number, minFrequency: number): string[] {
  const counts = new Map<string, number>();
  for (const t of texts) for (const w of pretokenize(t)) counts.set(w, (counts.get(w) ?? 0) + 1);
  let words: Array<{ sym: string[]; f: number }> = [...counts].map(([w, f]) => ({ sym: [...textToByteLevel(w)], f }));
  const merges: string[] = [];
  while (merges.length < nMerges) {
    const pc = new Map<string, number>();
    for (const { sym, f } of words) for (let i = 0; i + 1 < sym.length; i++) {
      const k = `${sym[i]} ${sym[i + 1]}`;
      pc.set(k, (pc.get(k) ?? 0) + f);
    }
    let best: string | null = null;
    let bestC = 0;
    for (const [k, c] of pc) if (c > bestC || (c === bestC && best !== null && k < best)) [best, bestC] = [k, c];
    if (best === null || bestC < minFrequency) break;
    merges.push(best);
    const [a, b] = best.split(' ') as [string, string];
    words = words.map(({ sym, f }) => {
      const out: string[] = [];
      for (let i = 0; i < sym.length; ) {
        if (i + 1 < sym.length && sym[i] === a && sym[i + 1] === b) {
          out.push(a + b);
          i += 2;
        } else out.push(sym[i++]!);
      }
      return { sym: out, f };
    });
  }
  return merges;
}

test('byte alphabet matches GPT-2 conventions', (t) => {
  t.is(byteToChar(32), 'Ġ');
  t.is(byteToChar(10), 'Ċ');
  t.is(byteToChar(65), 'A');
  t.is(byteToChar(0), 'Ā');
  t.is(BYTE_ORDER.map(byteToChar)[0], '!');
  t.is(new Set(BYTE_ORDER).size, 256);
  t.is(textToByteLevel(' Paris'), 'ĠParis');
});

test('first merges on a hand-made corpus are the hand-computed most frequent pairs', (t) => {
  // Words (newline separated, so each is its own pre-token): hug x10, pug x5, pun x12, bun x4, hugs x5.
  // Pair counts: ug 20, pu 17, un 16, hu 15, gs 5, bu 4 -> 'u g'. Then un 16, h-ug 15, p-un 12 ...
  // Then 'hug s' and 'p ug' tie at 5: the smaller string 'hug s' wins; then 'p ug' 5, 'b un' 4.
  const words = [...Array(10).fill('hug'), ...Array(5).fill('pug'), ...Array(12).fill('pun'), ...Array(4).fill('bun'), ...Array(5).fill('hugs')];
  const text = words.join('\n');
  const bpe = trainBpe([text], { vocabSize: 256 + 7 + 1, minFrequency: 1 });
  t.deepEqual(bpe.merges, ['u g', 'u n', 'h ug', 'p un', 'hug s', 'p ug', 'b un']);
  t.is(bpe.vocab['ug'], 256);
  t.is(bpe.vocab['bun'], 262);
  t.is(bpe.vocab['<|endoftext|>'], 263);
  t.is(bpe.vocab['!'], 0);
  t.is(bpe.vocab['Ġ'], 220); // same ids as GPT-2 for the byte tokens
  // minFrequency stops before pairs that are too rare: only the pairs seen >= 13 times remain.
  t.deepEqual(trainBpe([text], { vocabSize: 300, minFrequency: 13 }).merges, ['u g', 'u n', 'h ug']);
  // Input order does not matter.
  t.deepEqual(trainBpe([[...words].reverse().join('\n')], { vocabSize: 264, minFrequency: 1 }).merges, bpe.merges);
});

test('incremental trainer agrees with a naive re-counting trainer', (t) => {
  const text = sampleCorpus(60_000);
  const texts = text.split(/\n\n/);
  const fast = trainBpe(texts, { vocabSize: 256 + 300 + 1, minFrequency: 2 });
  const slow = naiveMerges(texts, 300, 2);
  t.is(fast.merges.length, 300);
  t.deepEqual(fast.merges, slow);
});

test('incremental trainer agrees with the naive one on repetitive text (overlapping pairs)', (t) => {
  const texts = ['aaaaaaa aaaa aaa aa a', 'abababab abab aba', '!!!!!! ?!?!?! ....', '0000000 1111 01010101', '😀😀😀 😀😀'];
  const fast = trainBpe(texts, { vocabSize: 256 + 40 + 1, minFrequency: 1 });
  t.deepEqual(fast.merges, naiveMerges(texts, 40, 1));
});

test('incremental trainer agrees with the naive one on random small-alphabet corpora (run to exhaustion)', (t) => {
  let reused = 0;
  for (let seed = 1; seed <= 25; seed++) {
    const r = rng(seed);
    const words: string[] = [];
    for (let i = 0; i < 120; i++) {
      let w = r(3) === 0 ? ' ' : '';
      const n = 1 + r(8);
      for (let j = 0; j < n; j++) w += 'abc'[r(3)]!;
      words.push(w);
    }
    const texts = [words.join('')];
    const fast = trainBpe(texts, { vocabSize: 5000, minFrequency: 1 });
    const slow = naiveMerges(texts, 5000, 1);
    t.deepEqual(fast.merges, slow, `seed ${seed}`);
    // Merges that re-create an existing token string add no vocab entry.
    reused += fast.merges.length - (Object.keys(fast.vocab).length - 257);
  }
  t.log(`${reused} merges re-created an existing token`);
});

test('special tokens in the text are not learned from and take the last ids', (t) => {
  const counter = new PretokenCounter(['<|endoftext|>']);
  counter.add('ab<|endoftext|>ab');
  t.deepEqual([...counter.counts], [['ab', 2]]);
  const bpe = trainBpe(['xy<|endoftext|>xy<|pad|>'], { vocabSize: 256 + 1 + 2, specialTokens: ['<|endoftext|>', '<|pad|>'], minFrequency: 1 });
  t.deepEqual(bpe.merges, ['x y']);
  t.is(bpe.vocab['<|endoftext|>'], 257);
  t.is(bpe.vocab['<|pad|>'], 258);
  t.throws(() => trainBpe(['x'], { vocabSize: 100 }), { message: /vocabSize/ });
});

const trainedP = Promise.resolve().then(() => {
  const t0 = Date.now();
  const json = trainByteLevelTokenizerJson(sampleCorpus(200_000).split(/\n\n/), { vocabSize: 1024 });
  return { json, ms: Date.now() - t0 };
});

test('trained tokenizer loads through Tokenizer (fromJSON and fromFile) with the requested vocab size', async (t) => {
  const { json, ms } = await trainedP;
  t.log(`trained 1024-token vocab on 200 KB in ${ms} ms`);
  const tok = Tokenizer.fromJSON(json);
  t.is(tok.vocabSize, 1024);
  t.is(tok.eosId, 1023);
  const dir = mkdtempSync(path.join(tmpdir(), 'rome-ts-train-'));
  try {
    const file = path.join(dir, 'tokenizer.json');
    writeFileSync(file, JSON.stringify(json));
    const tok2 = await Tokenizer.fromFile(file);
    const s = 'Alice was beginning to get very tired of sitting by her sister on the bank.';
    t.deepEqual(tok2.encode(s), tok.encode(s));
    t.true(tok.encode(s).ids.length < s.length / 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('trained tokenizer round-trips arbitrary unicode text', async (t) => {
  const tok = Tokenizer.fromJSON((await trainedP).json);
  const r = rng(99);
  const pools = [
    [0x20, 0x7e], [0x0a, 0x0d], [0xa0, 0x2ff], [0x370, 0x4ff], [0x3040, 0x30ff], [0x4e00, 0x9fff], [0x1f300, 0x1faff], [0x10000, 0x10ffff],
  ] as const;
  const samples: string[] = ['', ' ', '\n\n', "it's Alice's", 'naïve 😀 日本 Ελλάδα', '  leading', 'trailing  '];
  for (let i = 0; i < 300; i++) {
    let s = '';
    const n = r(40);
    for (let j = 0; j < n; j++) {
      const [lo, hi] = pools[r(pools.length)]!;
      let cp = lo + r(hi - lo + 1);
      if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x41; // keep the string well-formed
      s += String.fromCodePoint(cp);
    }
    samples.push(s);
  }
  for (const s of samples) {
    const e = tok.encode(s);
    t.is(tok.decode(e.ids), s, JSON.stringify(s));
    if (s.length > 0) t.is(e.offsets[e.offsets.length - 1]![1], s.length);
  }
});

test('a frequent word becomes one token with and without its leading space, GPT-2 style', (t) => {
  const text = Array.from({ length: 60 }, (_, i) => `Paris is big.\nWe love Paris ${i % 2 ? 'and' : 'or'} Rome.`).join('\n');
  const tok = Tokenizer.fromJSON(trainByteLevelTokenizerJson([text], { vocabSize: 320 }));
  t.deepEqual(tok.encode(' Paris').tokens, ['ĠParis']);
  t.deepEqual(tok.encode('Paris').tokens, ['Paris']);
  t.deepEqual(tok.tokenize('Paris is big.\nWe love Paris'), ['Paris', ' is', ' big', '.', '\n', 'We', ' love', ' Paris']);
  t.deepEqual(tok.tokenRange('We love Paris', 'Paris'), { start: 2, end: 3 });
});
