/**
 * Recipe search (dev tool, see README.md here): exports a fact corpus for search.py — the training token stream
 * tokenised by this repository's tokenizer, a 0/1 mask of fact-object tokens (the tokens --object-weight scales),
 * the validation stream, document starts, and the trained / held-out / known_1000 prompts with the first token of
 * their object. Usage: npx tsx scripts/recipe-search/export.ts <corpus dir> <tokenizer.json> <out dir>
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Tokenizer } from '../../lib/tokenizer/tokenizer.js';
import { splitDocuments, tokenizeFile } from '../../lib/train/data.js';
import { factObjectWeights, type FactSentence } from '../../lib/train/objectWeights.js';
import { factLine } from '../../lib/data/factCorpus.js';
import { sha256 } from '../../lib/data/hash.js';

const [corpus, tokFile, out] = process.argv.slice(2);
if (!corpus || !tokFile || !out) {
  console.error('usage: npx tsx scripts/recipe-search/export.ts <corpus dir> <tokenizer.json> <out dir>');
  process.exit(2);
}
const tokText = await fsp.readFile(tokFile, 'utf8');
const tok = Tokenizer.fromJSON(JSON.parse(tokText) as object);
const tokenizerKey = sha256(tokText);
const cacheDir = path.join('build', 'token-cache');
const trainFile = path.join(corpus, 'train.txt');
const tokens = await tokenizeFile(trainFile, tok, { split: 'line', cacheDir, tokenizerKey });
const valid = await tokenizeFile(path.join(corpus, 'valid-general.txt'), tok, { split: 'line', cacheDir, tokenizerKey });
interface F { subject: string; object: string; relation: string; role?: string; trainedPrompts: string[]; heldOutPrompts: string[]; knownPrompt?: string }
const facts = (JSON.parse(await fsp.readFile(path.join(corpus, 'facts.json'), 'utf8')) as { facts: F[] }).facts;
const sentences = new Map<string, FactSentence>();
for (const f of facts) for (const prompt of f.trainedPrompts) sentences.set(factLine(prompt, f.object), { prompt, object: f.object });
const docs = splitDocuments(await fsp.readFile(trainFile, 'utf8'), 'line');
// Any weight ≠ 1 marks the object tokens; search.py applies the weight it is asked for.
const w = factObjectWeights(tokens, docs, sentences, tok, 2).weights;
const isObj = new Uint8Array(w.length);
for (let i = 0; i < w.length; i++) isObj[i] = w[i]! > 1.5 ? 1 : 0;
await fsp.mkdir(out, { recursive: true });
await fsp.writeFile(path.join(out, 'train.i32'), Buffer.from(tokens.buffer, tokens.byteOffset, tokens.byteLength));
await fsp.writeFile(path.join(out, 'valid.i32'), Buffer.from(valid.buffer, valid.byteOffset, valid.byteLength));
await fsp.writeFile(path.join(out, 'isobj.u8'), isObj);
// Line starts (token index of each document's first token) for document-aligned sampling.
const eos = tok.eosId!;
const starts: number[] = [];
for (let i = 0; i + 1 < tokens.length; i++) if (tokens[i] === eos) starts.push(i + 1);
await fsp.writeFile(path.join(out, 'starts.json'), JSON.stringify(starts));
const enc = (p: string) => tok.encode(p).ids;
const first = (o: string) => tok.encode(` ${o}`).ids[0]!;
const sets: Record<string, { ids: number[]; target: number; rel: string; tpl?: string }[]> = { trained: [], heldOut: [], known: [] };
for (const f of facts) {
  for (const p of f.trainedPrompts) sets.trained!.push({ ids: enc(p), target: first(f.object), rel: f.relation });
  for (const p of f.heldOutPrompts) sets.heldOut!.push({ ids: enc(p), target: first(f.object), rel: f.relation, tpl: p.replace(f.subject, '{}') });
  if (f.knownPrompt && f.role === 'known') sets.known!.push({ ids: enc(f.knownPrompt), target: first(f.object), rel: f.relation });
}
await fsp.writeFile(path.join(out, 'eval.json'), JSON.stringify({ eos, vocab: 4096, ...sets }));
console.log(out, tokens.length, valid.length, starts.length, sets.trained!.length, sets.heldOut!.length, sets.known!.length, isObj.reduce((a, b) => a + b, 0));
