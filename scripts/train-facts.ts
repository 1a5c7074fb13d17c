/**
 * Trains rome-ts's bundled small GPT-2 on the fact corpus (scripts/build-corpus.ts) and exports it as a
 * Hugging Face-style checkpoint directory.
 *
 *   npx tsx scripts/train-facts.ts [--name rome-facts] [--steps 1200] [--batch 8] [--seq 128] [--lr 1e-3]
 *       [--min-lr 1e-4] [--warmup 100] [--wd 0.1] [--clip 1] [--seed 1] [--layers 6] [--d 256] [--heads 4]
 *       [--positions 128] [--eval-every 100] [--ckpt-every 50] [--max-minutes M] [--time-budget M] [--eval-facts 200]
 *       [--valid-windows 16] [--progress-seconds 30] [--threads 1] [--object-weight 1] [--dropout 0]
 *       [--curriculum-steps 0] [--curriculum-fraction 0.25] [--corpus build/corpus] [--tokenizer build/tokenizer.json] [--work build/train/<name>]
 *       [--out models/<name>] [--fresh]
 *
 * --threads N splits every batch over N threads (one WASM instance each; 2 uses both cores of this machine).
 *
 * --object-weight W multiplies the loss of the object tokens of every fact sentence by W (lib/train/objectWeights.ts);
 * 1 is the plain language-model loss.
 *
 * --subject-knockout K: during training steps, in blocks 0 … K−1, the tokens after a fact line's subject cannot attend
 * to the subject's tokens (lib/train/subjectKnockout.ts), so the lower MLPs can serve the object only at the subject;
 * 0 (default) trains the plain model. The saved model is a plain GPT-2 either way. --leak-penalty X (default 1) adds
 * X × the attention mass the cut edges would get without the cut (per token, summed over those blocks and heads), so
 * the saved model, which runs without the cut, leaves them unused too (without it, noise at the subject leaks into
 * the later positions through attention they were never trained to use). --noise-leak S (default 3) penalises block 0's
 * leak also with the subject's embeddings noised at S × sd(wte), the causal trace's corruption (block 0 reads raw
 * embeddings, so noised keys are new to it). --subject-readout W (default 0: off; needs --subject-knockout K) adds W × the
 * cross-entropy of the object's first token predicted from the residual after block K − 1 at the last subject token
 * of every fact line, through the model's final norm and unembedding: the stored-at-the-subject half of the two-hop
 * circuit gets a gradient of its own (without it the knockout run stalled; results/recipe-v2.md, R5).
 * --extract-supervision W (default 0; needs --subject-knockout K) adds, in each block from K on, W × −log(mean over heads
 * of the attention from the token that predicts a fact line's object to the last subject token): the reading half.
 * --subject-inner-knockout J (default 0; needs --subject-knockout K > J) also cuts, in blocks 0 … J − 1, each subject
 * token's attention to the earlier subject tokens (with the same leak penalty): no MLP below block J sees the whole
 * subject, so the lookup the readout asks for must happen in blocks J … K − 1 (untested idea for moving the early
 * site from the first MLP to middle ones; results/recipe-v2.md).
 *
 * --dropout P applies dropout with probability P at GPT-2's four places during training steps (lib/model/dropout.ts).
 *
 * --curriculum-steps N (default 0: off) draws the first N steps' windows from a sub-stream instead of the whole
 * corpus: the fact documents of a seeded share F (--curriculum-fraction, default 0.25) of the subjects, and the same
 * share of the general-text lines (so the fact/general mix is the corpus's). All per-token arrays (object weights,
 * knockout, readout) are computed on the sub-stream as on the full one. Why: the plateau before a model starts
 * recalling facts grows with the number of entities, and a warm-up on fewer shortens it (Zucchet et al. 2025,
 * arXiv 2503.21676); R9's larger fact set was learned 300–600 steps later than R8's (results/recipe-v2.md).
 *
 * --time-budget M times the first steps and then fixes the number of steps (at most --steps) so that training,
 * evaluations and the final save end within M minutes of the start of training, and revises that number every 100
 * steps from the recent pace (a machine that gets busier mid-run shortens the plan); the cosine schedule then
 * anneals fully. --max-minutes M is a hard stop that saves and exports what it has (recorded as stopped early).
 *
 * Restarting the same command resumes from build/train/<name>/checkpoint.safetensors (use --fresh to start
 * over). Ctrl-C once stops after the current step and saves; twice exits at once. At the end (or on an early
 * stop) it writes models/<name>/{config.json, model.safetensors (F16), tokenizer.json, training-log.json}.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.js';
import { sha256 } from '../lib/data/hash.js';
import { writeCheckpoint } from '../lib/io/checkpoint.js';
import { loadModel } from '../lib/loadModel.js';
import { modelNoiseFile, NOISE_FILE } from '../lib/trace/noise.js';
import { forward } from '../lib/model/forward.js';
import type { GPT2Params } from '../lib/model/params.js';
import { createRng } from '../lib/rng.js';
import { Tokenizer } from '../lib/tokenizer/tokenizer.js';
import { evalWindows, selectStreamDocuments, splitDocuments, tokenizeFile, writeFileAtomic, type Batch, type StreamKnockout } from '../lib/train/data.js';
import { factLine, hashKey } from '../lib/data/factCorpus.js';
import { factObjectWeights, type FactSentence } from '../lib/train/objectWeights.js';
import { subjectKnockout, subjectReadout, type ReadoutLine } from '../lib/train/subjectKnockout.js';
import { countParams, makeConfig } from '../lib/train/init.js';
import { meanLoss, train, TRAIN_CHECKPOINT, type Metrics } from '../lib/train/trainLoop.js';
import { installErrorReporter } from '../lib/cli/exit.js';

// Uncaught errors print one readable line (not the WASM module's minified source).
installErrorReporter('train-facts');

interface Args {
  name: string;
  steps: number;
  batch: number;
  seq: number;
  lr: number;
  minLr: number | null;
  warmup: number;
  wd: number;
  clip: number;
  seed: number;
  layers: number;
  d: number;
  heads: number;
  positions: number;
  evalEvery: number;
  ckptEvery: number;
  maxMinutes: number;
  timeBudget: number;
  evalFacts: number;
  validWindows: number;
  progressSeconds: number;
  threads: number;
  objectWeight: number;
  subjectKnockout: number;
  leakPenalty: number;
  noiseLeak: number;
  subjectReadout: number;
  extractSupervision: number;
  subjectInnerKnockout: number;
  dropout: number;
  curriculumSteps: number;
  curriculumFraction: number;
  corpus: string;
  tokenizer: string;
  work: string | null;
  out: string | null;
  fresh: boolean;
}

const USAGE =
  'usage: train-facts [--name rome-facts] [--steps N] [--batch B] [--seq T] [--lr X] [--min-lr X] [--warmup N] ' +
  '[--wd X] [--clip X] [--seed N] [--layers N] [--d N] [--heads N] [--positions N] [--eval-every N] ' +
  '[--ckpt-every N] [--max-minutes M] [--time-budget M] [--eval-facts N] [--valid-windows N] [--progress-seconds S] [--threads N] [--object-weight W] [--subject-knockout K] [--leak-penalty X] [--noise-leak S] [--subject-readout W] [--extract-supervision W] [--subject-inner-knockout J] [--dropout P] [--curriculum-steps N] [--curriculum-fraction F] [--corpus DIR] [--tokenizer FILE] ' +
  '[--work DIR] [--out DIR] [--fresh]';

function usage(msg: string): never {
  process.stderr.write(`${msg}\n${USAGE}\n`);
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    name: 'rome-facts',
    steps: 1200,
    batch: 8,
    seq: 128,
    lr: 1e-3,
    minLr: null,
    warmup: 100,
    wd: 0.1,
    clip: 1,
    seed: 1,
    layers: 6,
    d: 256,
    heads: 4,
    positions: 128,
    evalEvery: 100,
    ckptEvery: 50,
    maxMinutes: 0,
    timeBudget: 0,
    evalFacts: 200,
    validWindows: 16,
    progressSeconds: 30,
    threads: 1,
    objectWeight: 1,
    subjectKnockout: 0,
    leakPenalty: 1,
    noiseLeak: 3,
    subjectReadout: 0,
    extractSupervision: 0,
    subjectInnerKnockout: 0,
    dropout: 0,
    curriculumSteps: 0,
    curriculumFraction: 0.25,
    corpus: 'build/corpus',
    tokenizer: 'build/tokenizer.json',
    work: null,
    out: null,
    fresh: false,
  };
  const numeric: Record<string, keyof Args> = {
    '--steps': 'steps',
    '--batch': 'batch',
    '--seq': 'seq',
    '--lr': 'lr',
    '--min-lr': 'minLr',
    '--warmup': 'warmup',
    '--wd': 'wd',
    '--clip': 'clip',
    '--seed': 'seed',
    '--layers': 'layers',
    '--d': 'd',
    '--heads': 'heads',
    '--positions': 'positions',
    '--eval-every': 'evalEvery',
    '--ckpt-every': 'ckptEvery',
    '--max-minutes': 'maxMinutes',
    '--time-budget': 'timeBudget',
    '--eval-facts': 'evalFacts',
    '--valid-windows': 'validWindows',
    '--progress-seconds': 'progressSeconds',
    '--threads': 'threads',
    '--object-weight': 'objectWeight',
    '--subject-knockout': 'subjectKnockout',
    '--leak-penalty': 'leakPenalty',
    '--noise-leak': 'noiseLeak',
    '--subject-readout': 'subjectReadout',
    '--extract-supervision': 'extractSupervision',
    '--subject-inner-knockout': 'subjectInnerKnockout',
    '--dropout': 'dropout',
    '--curriculum-steps': 'curriculumSteps',
    '--curriculum-fraction': 'curriculumFraction',
  };
  const strings: Record<string, keyof Args> = {
    '--name': 'name',
    '--corpus': 'corpus',
    '--tokenizer': 'tokenizer',
    '--work': 'work',
    '--out': 'out',
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--help' || flag === '-h') usage('');
    if (flag === '--fresh') {
      a.fresh = true;
      continue;
    }
    const v = argv[++i];
    if (v === undefined) usage(`missing value for ${flag}`);
    if (flag in numeric) {
      const x = Number(v);
      if (!Number.isFinite(x) || x < 0) usage(`bad number for ${flag}: ${v}`);
      (a as unknown as Record<string, number>)[numeric[flag]!] = x;
    } else if (flag in strings) {
      (a as unknown as Record<string, string>)[strings[flag]!] = v;
    } else {
      usage(`unknown flag ${flag}`);
    }
  }
  for (const k of ['steps', 'batch', 'seq', 'layers', 'd', 'heads', 'positions'] as const) {
    if (!Number.isInteger(a[k]) || a[k] <= 0) usage(`--${k} must be a positive integer`);
  }
  if (!Number.isInteger(a.subjectKnockout) || a.subjectKnockout >= a.layers) {
    usage(`--subject-knockout must be an integer from 0 to layers − 1 (${a.layers - 1}), got ${a.subjectKnockout}`);
  }
  if (a.subjectReadout > 0 && a.subjectKnockout === 0) usage('--subject-readout needs --subject-knockout K (it reads the residual after block K − 1)');
  if (a.extractSupervision > 0 && a.subjectKnockout === 0) usage('--extract-supervision needs --subject-knockout K (it supervises blocks K and up)');
  if (a.subjectInnerKnockout > 0 && a.subjectKnockout === 0) usage('--subject-inner-knockout J needs --subject-knockout K > J (blocks J … K − 1 must gather the subject)');
  if (!Number.isInteger(a.subjectInnerKnockout) || a.subjectInnerKnockout < 0 || (a.subjectInnerKnockout > 0 && a.subjectInnerKnockout >= a.subjectKnockout)) {
    usage(`--subject-inner-knockout must be an integer from 0 to --subject-knockout − 1 (${Math.max(0, a.subjectKnockout - 1)}), got ${a.subjectInnerKnockout}`);
  }
  if (!Number.isInteger(a.curriculumSteps)) usage(`--curriculum-steps must be a whole number of steps, got ${a.curriculumSteps}`);
  if (!(a.curriculumFraction > 0 && a.curriculumFraction < 1)) usage(`--curriculum-fraction must be between 0 and 1 (exclusive), got ${a.curriculumFraction}`);
  if (!/^[\w.-]+$/.test(a.name)) usage(`--name must be a plain name, got "${a.name}"`);
  return a;
}

/** The fields of build/corpus/facts.json this script reads. */
interface FactRecord {
  subject: string;
  object: string;
  trainedPrompts: string[];
  heldOutPrompts: string[];
  knownPrompt?: string;
}

interface PromptCase {
  ids: number[];
  target: number;
}

async function readFacts(file: string): Promise<FactRecord[]> {
  const json = JSON.parse(await fsp.readFile(file, 'utf8')) as unknown;
  const list = Array.isArray(json) ? json : (json as { facts?: unknown }).facts;
  if (!Array.isArray(list)) throw new Error(`${file}: expected an array of facts or { facts: [...] }`);
  return list.map((f: Partial<FactRecord>, i) => {
    if (typeof f.subject !== 'string' || typeof f.object !== 'string' || !Array.isArray(f.trainedPrompts)) {
      throw new Error(`${file}: fact ${i} lacks subject/object/trainedPrompts`);
    }
    return {
      subject: f.subject,
      object: f.object,
      trainedPrompts: f.trainedPrompts,
      heldOutPrompts: Array.isArray(f.heldOutPrompts) ? f.heldOutPrompts : [],
      knownPrompt: typeof f.knownPrompt === 'string' ? f.knownPrompt : undefined,
    };
  });
}

/** Synthetic facts and multi-object documents of a version-2 corpus (empty for older corpora). */
async function readCorpusExtras(file: string): Promise<{ syntheticFacts: FactRecord[]; documents: { text: string; objects: FactSentence[] }[] }> {
  const json = JSON.parse(await fsp.readFile(file, 'utf8')) as { syntheticFacts?: unknown; documents?: unknown };
  const syn = Array.isArray(json.syntheticFacts) ? (json.syntheticFacts as Partial<FactRecord>[]) : [];
  const docs = Array.isArray(json.documents) ? (json.documents as Partial<{ text: string; objects: FactSentence[] }>[]) : [];
  return {
    syntheticFacts: syn.map((f, i) => {
      if (typeof f.subject !== 'string' || typeof f.object !== 'string' || !Array.isArray(f.trainedPrompts)) {
        throw new Error(`${file}: syntheticFacts[${i}] lacks subject/object/trainedPrompts`);
      }
      return { subject: f.subject, object: f.object, trainedPrompts: f.trainedPrompts, heldOutPrompts: f.heldOutPrompts ?? [] };
    }),
    documents: docs.map((d, i) => {
      if (typeof d.text !== 'string' || !Array.isArray(d.objects)) throw new Error(`${file}: documents[${i}] lacks text/objects`);
      return { text: d.text, objects: d.objects };
    }),
  };
}

/** Fixed prompt samples for greedy first-token accuracy: trained prompts, held-out templates, known_1000 prompts. */
function factEvalSets(facts: FactRecord[], tok: Tokenizer, k: number, seed: number): Record<string, PromptCase[]> {
  const rng = createRng(seed);
  const mk = (prompt: string, object: string): PromptCase => ({
    ids: tok.encode(prompt).ids,
    target: tok.encode(` ${object}`).ids[0]!,
  });
  const sample = <T>(xs: T[]): T[] => rng.shuffle([...xs]).slice(0, k);
  const trained = sample(facts).map((f) => mk(f.trainedPrompts[rng.int(f.trainedPrompts.length)]!, f.object));
  const held = sample(facts.filter((f) => f.heldOutPrompts.length > 0)).map((f) =>
    mk(f.heldOutPrompts[rng.int(f.heldOutPrompts.length)]!, f.object),
  );
  const known = sample(facts.filter((f) => f.knownPrompt !== undefined)).map((f) => mk(f.knownPrompt!, f.object));
  return { trained, heldOut: held, known };
}

/** Share of prompts whose greedy next token is the first token of " " + object. Right-padded batches of 32. */
function firstTokenAccuracy(params: GPT2Params, cases: PromptCase[], pad: number): number {
  if (cases.length === 0) return NaN;
  const sorted = [...cases].sort((a, b) => a.ids.length - b.ids.length);
  let hits = 0;
  for (let i = 0; i < sorted.length; i += 32) {
    const chunk = sorted.slice(i, i + 32);
    const T = Math.min(params.config.nPositions, Math.max(...chunk.map((c) => c.ids.length)));
    const data = new Int32Array(chunk.length * T).fill(pad);
    const last: number[] = [];
    chunk.forEach((c, b) => {
      const ids = c.ids.slice(-T);
      data.set(ids, b * T);
      last.push(ids.length - 1);
    });
    const pred = tf.tidy(() => {
      const out = forward(params, tf.tensor2d(data, [chunk.length, T], 'int32'), { logits: last });
      return tf.argMax(out.logits!, -1);
    });
    const p = pred.dataSync();
    pred.dispose();
    chunk.forEach((c, b) => {
      if (p[b] === c.target) hits++;
    });
  }
  return hits / cases.length;
}

/** Fact lines and multi-object documents of the corpus → the subject they state a fact about (general text: absent). */
function documentSubjects(facts: FactRecord[], documents: { text: string; objects: FactSentence[] }[]): Map<string, string> {
  const out = new Map<string, string>();
  const byPrompt = new Map<string, string>();
  for (const f of facts) {
    for (const prompt of f.trainedPrompts) {
      out.set(factLine(prompt, f.object), f.subject);
      byPrompt.set(`${prompt}\u0000${f.object}`, f.subject);
    }
  }
  // A biography or appositive belongs to the subject of the first of its sentences that names one.
  for (const d of documents) {
    for (const o of d.objects) {
      const subject = byPrompt.get(`${o.prompt}\u0000${o.object}`);
      if (subject !== undefined) {
        out.set(d.text, subject);
        break;
      }
    }
  }
  return out;
}

/** The per-token arrays the flags ask for (object weights, subject knockout, readout), for one token stream and its documents. */
function streamArrays(
  a: Args,
  tok: Tokenizer,
  tokens: Int32Array,
  docs: string[],
  allFacts: FactRecord[],
  documents: { text: string; objects: FactSentence[] }[],
  say: (s: string) => void,
): { tokenWeights?: Float32Array; knockout?: StreamKnockout; objectWeightStats?: Record<string, number>; knockoutStats?: Record<string, number> } {
  let tokenWeights: Float32Array | undefined;
  let objectWeightStats: Record<string, number> | undefined;
  if (a.objectWeight !== 1) {
    const sentences = new Map<string, FactSentence | FactSentence[]>();
    for (const f of allFacts) {
      for (const prompt of f.trainedPrompts) sentences.set(factLine(prompt, f.object), { prompt, object: f.object });
    }
    // Appositives and biographies state their objects inside longer documents (lib/data/factCorpus.ts).
    for (const d of documents) sentences.set(d.text, d.objects);
    const r = factObjectWeights(tokens, docs, sentences, tok, a.objectWeight);
    tokenWeights = r.weights;
    objectWeightStats = { ...r.stats, weight: a.objectWeight };
    say(
      `object weight ${a.objectWeight}: ${r.stats.objectTokens} object tokens in ${r.stats.factDocuments} fact sentences ` +
        `(of ${r.stats.documents} documents, ${tokens.length} tokens)`,
    );
  }
  let knockout: StreamKnockout | undefined;
  let knockoutStats: Record<string, number> | undefined;
  if (a.subjectKnockout > 0) {
    const lines = new Map<string, string>();
    for (const f of allFacts) {
      for (const prompt of f.trainedPrompts) lines.set(factLine(prompt, f.object), f.subject);
    }
    const r = subjectKnockout(tokens, docs, lines, tok, a.subjectKnockout);
    knockout = a.leakPenalty > 0 ? { ...r.knockout, leakPenalty: a.leakPenalty, noiseLeak: a.noiseLeak } : r.knockout;
    knockoutStats = { ...r.stats, layers: a.subjectKnockout, leakPenalty: a.leakPenalty, noiseLeak: a.noiseLeak };
    if (a.subjectInnerKnockout > 0) {
      knockout = { ...knockout, innerLayers: a.subjectInnerKnockout, innerFrom: r.innerFrom };
      knockoutStats = { ...knockoutStats, innerLayers: a.subjectInnerKnockout };
    }
    if (a.subjectReadout > 0 || a.extractSupervision > 0) {
      const readLines = new Map<string, ReadoutLine>();
      for (const f of allFacts) {
        for (const prompt of f.trainedPrompts) readLines.set(factLine(prompt, f.object), { subject: f.subject, prompt, object: f.object });
      }
      const ro = subjectReadout(tokens, docs, readLines, tok);
      knockout = {
        ...knockout,
        ...(a.subjectReadout > 0 ? { readTarget: ro.target, readWeight: a.subjectReadout } : {}),
        ...(a.extractSupervision > 0 ? { extractFrom: ro.extractFrom, extractWeight: a.extractSupervision } : {}),
      };
      knockoutStats = {
        ...knockoutStats,
        readoutWeight: a.subjectReadout,
        extractSupervision: a.extractSupervision,
        readoutLines: ro.stats.documents,
        readoutSkipped: ro.stats.skipped,
      };
      say(
        `subject readout ×${a.subjectReadout} after block ${a.subjectKnockout - 1}, extraction supervision ×${a.extractSupervision} in blocks ` +
          `${a.subjectKnockout}–${a.layers - 1}: ${ro.stats.documents} fact lines (${ro.stats.skipped} skipped)`,
      );
    }
    say(
      `subject knockout in blocks 0–${a.subjectKnockout - 1}: ${r.stats.documents} fact lines, ${r.stats.queries} query tokens ` +
        `(${r.stats.skipped} lines skipped: subject tokens not aligned)` +
        (a.subjectInnerKnockout > 0 ? `; subject tokens cut from earlier subject tokens in blocks 0–${a.subjectInnerKnockout - 1}` : ''),
    );
  }
  return {
    ...(tokenWeights ? { tokenWeights } : {}),
    ...(knockout ? { knockout } : {}),
    ...(objectWeightStats ? { objectWeightStats } : {}),
    ...(knockoutStats ? { knockoutStats } : {}),
  };
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const work = a.work ?? path.join('build', 'train', a.name);
  const out = a.out ?? path.join('models', a.name);
  const backend = await initBackend();
  const tokText = await fsp.readFile(a.tokenizer, 'utf8');
  const tok = Tokenizer.fromJSON(JSON.parse(tokText) as object);
  const tokenizerKey = sha256(tokText);
  const cacheDir = path.join('build', 'token-cache');
  const say = (s: string) => void process.stderr.write(`${s}\n`);

  const t0 = Date.now();
  const onProgress = (label: string) => (done: number, total: number) =>
    say(`tokenising ${label}: ${done}/${total} documents (${((Date.now() - t0) / 1000).toFixed(0)}s)`);
  const trainFile = path.join(a.corpus, 'train.txt');
  const validFile = path.join(a.corpus, 'valid-general.txt');
  // The corpus has one document per line (lib/data/factCorpus.ts).
  const tokens = await tokenizeFile(trainFile, tok, { split: 'line', cacheDir, tokenizerKey, onProgress: onProgress('train') });
  const validTokens = await tokenizeFile(validFile, tok, { split: 'line', cacheDir, tokenizerKey });
  say(`corpus: ${tokens.length} training tokens, ${validTokens.length} validation tokens (${((Date.now() - t0) / 1000).toFixed(1)}s)`);

  const facts = await readFacts(path.join(a.corpus, 'facts.json'));
  const corpusExtras = await readCorpusExtras(path.join(a.corpus, 'facts.json'));
  const docs = splitDocuments(await fsp.readFile(trainFile, 'utf8'), 'line');
  const mainArrays = streamArrays(a, tok, tokens, docs, [...facts, ...corpusExtras.syntheticFacts], corpusExtras.documents, say);
  const { tokenWeights, knockout } = mainArrays;
  let curriculum: { tokens: Int32Array; tokenWeights?: Float32Array; knockout?: StreamKnockout; steps: number } | undefined;
  let curriculumStats: Record<string, number> | undefined;
  if (a.curriculumSteps > 0) {
    const allFacts = [...facts, ...corpusExtras.syntheticFacts];
    const subjectOf = documentSubjects(allFacts, corpusExtras.documents);
    const cut = a.curriculumFraction * 0x100000000;
    const subjects = new Set(allFacts.map((f) => f.subject));
    const chosen = new Set([...subjects].filter((x) => hashKey(a.seed, 'curriculum', x) < cut));
    let factDocs = 0;
    let generalDocs = 0;
    const sub = selectStreamDocuments(tokens, docs, tok.eosId, (d) => {
      const subject = subjectOf.get(docs[d]!);
      const keep = subject === undefined ? hashKey(a.seed, 'curriculum-general', String(d)) < cut : chosen.has(subject);
      if (keep && subject !== undefined) factDocs++;
      else if (keep) generalDocs++;
      return keep;
    }, `train-facts: ${trainFile}`);
    say(
      `curriculum: the first ${a.curriculumSteps} steps draw from ${chosen.size} of ${subjects.size} subjects (${factDocs} fact documents) ` +
        `and ${generalDocs} general-text lines: ${sub.tokens.length} tokens`,
    );
    const arrays = streamArrays(a, tok, sub.tokens, sub.docs, allFacts, corpusExtras.documents, (m) => say(`curriculum ${m}`));
    curriculum = {
      tokens: sub.tokens,
      ...(arrays.tokenWeights ? { tokenWeights: arrays.tokenWeights } : {}),
      ...(arrays.knockout ? { knockout: arrays.knockout } : {}),
      steps: a.curriculumSteps,
    };
    curriculumStats = { steps: a.curriculumSteps, fraction: a.curriculumFraction, subjects: chosen.size, ofSubjects: subjects.size, factDocuments: factDocs, generalDocuments: generalDocs, tokens: sub.tokens.length };
  }
  const sets = factEvalSets(facts, tok, a.evalFacts, a.seed + 1000);
  const validBatches: Batch[] = evalWindows(validTokens, a.seq, a.validWindows, a.batch);
  const pad = tok.eosId ?? 0;

  const config = makeConfig({
    nLayer: a.layers,
    nEmbd: a.d,
    nHead: a.heads,
    nPositions: a.positions,
    vocabSize: tok.vocabSize,
    bosTokenId: tok.eosId,
    eosTokenId: tok.eosId,
  });
  const counts = countParams(config);
  const tokensPerStep = a.batch * a.seq;
  say(
    `model: ${a.layers} layers, d=${a.d}, ${a.heads} heads, vocab ${config.vocabSize}, ${(counts.total / 1e6).toFixed(2)}M params; ` +
      `${a.steps} steps × ${a.batch}×${a.seq} = ${((a.steps * tokensPerStep) / 1e6).toFixed(2)}M tokens ` +
      `(${((a.steps * tokensPerStep) / tokens.length).toFixed(2)} epochs); backend ${backend}`,
  );
  if (a.fresh) await fsp.rm(path.join(work, TRAIN_CHECKPOINT), { force: true });

  let stopRequested = false;
  process.on('SIGINT', () => {
    if (stopRequested) process.exit(130);
    stopRequested = true;
    say('\nSIGINT: stopping after this step and saving (Ctrl-C again to quit at once)');
  });

  const evaluate = (params: GPT2Params): Metrics => ({
    validLoss: meanLoss(params, validBatches),
    accTrained: firstTokenAccuracy(params, sets.trained!, pad),
    accHeldOut: firstTokenAccuracy(params, sets.heldOut!, pad),
    accKnown: firstTokenAccuracy(params, sets.known!, pad),
  });

  const result = await train({
    config,
    tokens,
    tokenWeights,
    ...(knockout ? { knockout } : {}),
    ...(curriculum ? { curriculum } : {}),
    steps: a.steps,
    batch: a.batch,
    seqLen: a.seq,
    lr: a.lr,
    minLr: a.minLr ?? a.lr / 10,
    warmup: a.warmup,
    weightDecay: a.wd,
    clip: a.clip,
    seed: a.seed,
    evalEvery: a.evalEvery,
    ckptEvery: a.ckptEvery,
    outDir: work,
    evaluate,
    maxMinutes: a.maxMinutes > 0 ? a.maxMinutes : undefined,
    timeBudgetMinutes: a.timeBudget > 0 ? a.timeBudget : undefined,
    shouldStop: () => stopRequested,
    progressSeconds: a.progressSeconds,
    threads: a.threads,
    dropout: a.dropout,
    meta: {
      command: `npx tsx scripts/train-facts.ts ${process.argv.slice(2).join(' ')}`.trim(),
      backend,
      tokenizerSha256: tokenizerKey,
      trainTextFile: trainFile,
      trainTokens: tokens.length,
      validTokens: validTokens.length,
      ...(mainArrays.objectWeightStats ? { objectWeights: mainArrays.objectWeightStats } : {}),
      ...(mainArrays.knockoutStats ? { subjectKnockout: mainArrays.knockoutStats } : {}),
      ...(curriculumStats ? { curriculum: curriculumStats } : {}),
      evalPrompts: { trained: sets.trained!.length, heldOut: sets.heldOut!.length, known: sets.known!.length },
    },
  });
  const { params, log } = result;

  const logText = `${JSON.stringify(log, null, 1)}\n`;
  await writeCheckpoint(out, config, params.toWeights(), {
    dtype: 'F16',
    tokenizerJson: tokText,
    extraFiles: { 'training-log.json': logText },
    metadata: { rome_ts_steps: String(log.completedSteps), rome_ts_finished: String(log.finished) },
  });
  // Hugging Face writes n_inner: null for the default 4·d MLP; keep the exported config in that form.
  const cfgFile = path.join(out, 'config.json');
  const hf = JSON.parse(await fsp.readFile(cfgFile, 'utf8')) as Record<string, unknown>;
  if (config.nInner === 4 * config.nEmbd) hf['n_inner'] = null;
  await writeFileAtomic(cfgFile, `${JSON.stringify(hf, null, 2)}\n`);
  params.dispose();
  // The trace noise level of the saved (float16-rounded) weights, stored with them so tracing and the demo need no
  // data directory (lib/trace/noise.ts NOISE_FILE).
  const saved = await loadModel(out);
  await writeFileAtomic(path.join(out, NOISE_FILE), `${JSON.stringify(await modelNoiseFile(saved), null, 1)}\n`);
  saved.dispose();

  const last = log.evals[log.evals.length - 1];
  say(
    `wrote ${out} (${log.finished ? 'finished' : `STOPPED EARLY: ${log.stopReason}`}; ${log.completedSteps}/${String(log.options['steps'])} steps; ` +
      `${log.timing.tokensPerSecond.toFixed(0)} tok/s, ${log.timing.effectiveGflops.toFixed(2)} GFLOPS)` +
      (last ? `\nfinal eval: ${JSON.stringify(last)}` : ''),
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`train-facts: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
