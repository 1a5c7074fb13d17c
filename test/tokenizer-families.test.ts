import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '../lib/tokenizer/tokenizer.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const META = path.join(HERE, 'fixtures', 'tokenizer-metaspace');
// The real GPT-NeoX-20B tokenizer (the one Pythia uses), 2.4 MB: read from the shared fixtures beside the checkout.
const NEOX = path.join(HERE, '..', '..', 'shared', 'fixtures', 'tokenizers', 'gpt-neox-20b', 'tokenizer.json');

interface Expected {
  encodings: { text: string; ids: number[] }[];
}

/** Each token's offsets cover exactly its own text (a '▁' piece at the very start covers the implicit space). */
function checkOffsets(t: import('ava').ExecutionContext, tok: Tokenizer, text: string): void {
  const e = tok.encode(text, { addBos: false });
  let prev = 0;
  e.offsets.forEach(([a, b], i) => {
    t.true(a >= 0 && b <= text.length && a <= b && a >= prev - 1, `token ${i} [${a}, ${b})`);
    prev = b;
  });
  t.is(e.offsets[e.offsets.length - 1]![1], text.length);
}

for (const file of ['tokenizer.json', 'tokenizer-metaspace-pretokenizer.json']) {
  test(`Metaspace / byte-fallback BPE (${file}): ids equal an independent BPE, decode round-trips, offsets and subject ranges`, async (t) => {
    const tok = await Tokenizer.fromFile(path.join(META, file));
    t.is(tok.form, 'metaspace');
    t.is(tok.bosId, 1);
    t.is(tok.eosId, 2);
    const exp = JSON.parse(fs.readFileSync(path.join(META, 'expected.json'), 'utf8')) as Expected;
    // The post-processor template starts every text with <s>, as Hugging Face's tokenizer(text) does.
    t.true(tok.addsBos);
    for (const { text, ids } of exp.encodings) {
      t.deepEqual(tok.encode(text, { addBos: false }).ids, ids, text);
      t.deepEqual(tok.encode(text).ids, [1, ...ids], text);
      t.is(tok.decode(ids), text);
      checkOffsets(t, tok, text);
    }
    const prompt = 'The Eiffel Tower is located in the city of';
    t.deepEqual(tok.tokenRange(prompt, 'Eiffel Tower'), { start: 2, end: 4 });
    t.deepEqual(tok.tokenRange(prompt, 'Eiffel Tower', { addBos: false }), { start: 1, end: 3 });
    t.deepEqual(tok.encode(prompt).offsets.slice(0, 4), [[0, 0], [0, 3], [3, 10], [10, 16]]);
    t.deepEqual(tok.encodeContinuation(' Paris'), tok.encode('Paris', { addBos: false }).ids);
    // Byte fallback: é is two byte pieces, both mapped to the one character.
    const cafe = tok.encode('the café in Paris', { addBos: false });
    t.deepEqual(cafe.tokens.slice(4, 6), ['<0xC3>', '<0xA9>']);
    t.deepEqual(cafe.offsets.slice(4, 6), [[7, 8], [7, 8]]);
    t.is(tok.tokenize('Paris!').slice(1).join(''), 'Paris!');
  });
}

test('GPT-NeoX-20B tokenizer.json (byte-level BPE with an NFC normalizer) loads and encodes as Pythia does', async (t) => {
  if (!fs.existsSync(NEOX)) {
    t.pass(`no ${NEOX}: skipped`);
    return;
  }
  const tok = await Tokenizer.fromFile(NEOX);
  t.is(tok.form, 'byte-level');
  t.false(tok.addsBos);
  t.is(tok.eosId, 0);
  // Ids as the Hub's EleutherAI/pythia-* tokenizer gives them.
  t.deepEqual(tok.encode('Hello world').ids, [12092, 1533]);
  const prompt = 'The Eiffel Tower is located in the city of';
  const e = tok.encode(prompt);
  t.deepEqual(e.tokens, ['The', 'ĠE', 'iff', 'el', 'ĠTower', 'Ġis', 'Ġlocated', 'Ġin', 'Ġthe', 'Ġcity', 'Ġof']);
  t.is(e.ids[0], 510);
  t.deepEqual(tok.tokenRange(prompt, 'Eiffel Tower'), { start: 1, end: 5 });
  t.is(tok.decode(e.ids), prompt);
  for (const s of ['naïve café  two  spaces\n', 'emoji 🙂 and 東京']) {
    t.is(tok.decode(tok.encode(s).ids), s);
    checkOffsets(t, tok, s);
  }
  // Offsets must index the caller's text, so text that NFC would change is refused with the fix.
  t.throws(() => tok.encode('cafe\u0301'), { message: /normalize\("NFC"\)/ });
  // fromJSON keeps refusing normalizers unless asked.
  const json = JSON.parse(fs.readFileSync(NEOX, 'utf8')) as object;
  t.throws(() => Tokenizer.fromJSON(json), { message: /normalizers/ });
});

test('a Qwen2-style pre-tokenizer (regex Split then ByteLevel) is byte-level', (t) => {
  const vocab: Record<string, number> = { a: 0, b: 1, Ġ: 2, 'Ġa': 3, '<|endoftext|>': 4 };
  const json = {
    normalizer: { type: 'NFC' },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: " ?\\p{L}+|\\s+" }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    post_processor: null,
    model: { type: 'BPE', vocab, merges: ['Ġ a'] },
    added_tokens: [{ id: 4, content: '<|endoftext|>', special: true, lstrip: false, rstrip: false, normalized: false, single_word: false }],
  };
  const tok = Tokenizer.fromJSON(json, { acceptNfc: true });
  t.is(tok.form, 'byte-level');
  t.deepEqual(tok.encode('ab a').ids, [0, 1, 3]);
  t.deepEqual(tok.encode('ab a').offsets, [[0, 1], [1, 2], [2, 4]]);
  t.is(tok.eosId, 4);
});
