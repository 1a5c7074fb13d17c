/**
 * Diagnostic (a) of issue 14: where does a model hold a fact's object? Linear probes per layer, trained on some facts
 * and scored on held-out facts (lib/probe/linearProbe.ts), on
 *   - the residual at the **last subject token** when the model reads the subject alone (no relation words yet), and
 *   - the residual at the **last token** of the fact's prompt (where the object is predicted).
 * A model that stores facts at the subject (the paper's "early site") shows the subject probe rising in the middle
 * layers; a model that looks facts up at the last token shows it flat near the embedding's level.
 *
 *   npx tsx scripts/probe-facts.ts --model models/rome-fact-gpt2 --corpus build/corpus [--out results/probe/NAME.json]
 *       [--test-share 0.25] [--seed 1] [--max-facts N]
 *
 * Real facts: the corpus' known_1000 facts (known prompt as the prompt). Synthetic people (a version-2 corpus with a
 * population): one probe per relation from the name alone (Allen-Zhu & Li's P-probe), averaged over relations.
 * Prints a table; --out writes JSON (refuses to overwrite an existing file).
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.js';
import { hashKey } from '../lib/data/factCorpus.js';
import { loadModel } from '../lib/loadModel.js';
import type { GPT2Model } from '../lib/model/model.js';
import { trainAndScoreProbe, type ProbeExample, type ProbeScore } from '../lib/probe/linearProbe.js';

function usage(msg: string): never {
  process.stderr.write(
    `${msg}\nusage: probe-facts --model DIR --corpus DIR [--out FILE.json] [--test-share 0.25] [--seed 1] [--max-facts N]\n`,
  );
  process.exit(2);
}

interface Args {
  model: string;
  corpus: string;
  out: string | null;
  testShare: number;
  seed: number;
  maxFacts: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { model: '', corpus: '', out: null, testShare: 0.25, seed: 1, maxFacts: Infinity };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) usage(`missing value for ${flag}`);
      return v;
    };
    const num = (lo: number, hi: number, int: boolean): number => {
      const s = value();
      const v = Number(s);
      if (!Number.isFinite(v) || v < lo || v > hi || (int && !Number.isInteger(v))) usage(`${flag} must be ${int ? 'an integer' : 'a number'} in [${lo}, ${hi}], got "${s}"`);
      return v;
    };
    if (flag === '--model') a.model = value();
    else if (flag === '--corpus') a.corpus = value();
    else if (flag === '--out') a.out = value();
    else if (flag === '--test-share') a.testShare = num(0.05, 0.9, false);
    else if (flag === '--seed') a.seed = num(0, 2 ** 31, true);
    else if (flag === '--max-facts') a.maxFacts = num(10, 1e7, true);
    else if (flag === '--help' || flag === '-h') usage('');
    else usage(`unknown argument ${flag}`);
  }
  if (!a.model || !a.corpus) usage('--model and --corpus are required');
  if (a.out !== null && !a.out.endsWith('.json')) usage(`--out must name a .json file, got "${a.out}"`);
  return a;
}

interface FactRow {
  subject: string;
  relation: string;
  object: string;
  role?: string;
  knownPrompt?: string;
  trainedPrompts: string[];
  heldOutPrompts?: string[];
}

/** Residuals [layers+1][n][d] at the last token of each text: index 0 is the token embedding, then blocks 0…L−1. */
async function lastTokenStates(model: GPT2Model, texts: readonly string[]): Promise<Float32Array[][]> {
  const L = model.config.nLayer;
  const hooks = ['embed', ...Array.from({ length: L }, (_, i) => `blocks.${i}`)];
  const out: Float32Array[][] = hooks.map(() => []);
  const d = model.config.nEmbd;
  for (let s = 0; s < texts.length; s += 64) {
    const chunk = texts.slice(s, s + 64);
    const r = model.run(chunk, { capture: hooks, logits: 'none' });
    try {
      for (let h = 0; h < hooks.length; h++) {
        const t = r.get(hooks[h]!).tensor;
        const T = t.shape[1]!;
        const data = (await t.data()) as Float32Array;
        r.lengths.forEach((len, b) => {
          const off = (b * T + (len - 1)) * d;
          out[h]!.push(data.slice(off, off + d));
        });
      }
    } finally {
      r.dispose();
    }
  }
  return out;
}

/** Share of prompts whose greedy next token is the first token of " " + object. */
async function greedyRecall(model: GPT2Model, items: readonly { prompt: string; object: string }[]): Promise<number> {
  let hits = 0;
  for (let s = 0; s < items.length; s += 64) {
    const chunk = items.slice(s, s + 64);
    const r = model.run(chunk.map((x) => x.prompt), { logits: 'last' });
    try {
      const am = tf.tidy(() => tf.argMax(r.logits!.tensor, -1));
      const ids = (await am.data()) as Int32Array;
      am.dispose();
      chunk.forEach((x, b) => {
        if (ids[b] === model.encode(` ${x.object}`)[0]) hits++;
      });
    } finally {
      r.dispose();
    }
  }
  return items.length ? hits / items.length : NaN;
}

function split<T extends { key: string }>(items: T[], seed: number, testShare: number): { train: T[]; test: T[] } {
  const isTest = (k: string): boolean => hashKey(seed, 'probe-split', k) / 4294967296 < testShare;
  return { train: items.filter((x) => !isTest(x.key)), test: items.filter((x) => isTest(x.key)) };
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  if (a.out !== null) {
    const exists = await fsp.stat(a.out).then(() => true, () => false);
    if (exists) usage(`${a.out} exists; remove it or choose another --out`);
  }
  await initBackend();
  const factsFile = path.join(a.corpus, 'facts.json');
  const json = JSON.parse(await fsp.readFile(factsFile, 'utf8')) as { facts?: FactRow[]; syntheticFacts?: FactRow[] };
  if (!Array.isArray(json.facts)) throw new Error(`${factsFile}: no "facts" array`);
  const model = await loadModel(a.model);
  const L = model.config.nLayer;
  const layerNames = ['embed', ...Array.from({ length: L }, (_, i) => String(i))];
  const say = (m: string): void => void process.stderr.write(`${m}\n`);
  const n0 = tf.memory().numTensors;

  const real = json.facts.filter((f) => f.role === 'known' && typeof f.knownPrompt === 'string').slice(0, a.maxFacts);
  say(`real facts: ${real.length}; reading states…`);
  const subj = await lastTokenStates(model, real.map((f) => f.subject));
  const last = await lastTokenStates(model, real.map((f) => f.knownPrompt!));
  const rows: Record<string, ProbeScore | number | string>[] = [];
  const realItems = real.map((f, i) => ({ key: f.subject, i, label: f.object }));
  const { train, test } = split(realItems, a.seed, a.testShare);
  const ex = (states: Float32Array[], xs: typeof realItems): ProbeExample[] => xs.map((x) => ({ x: states[x.i]!, label: x.label }));
  const result: Record<string, unknown> = { model: a.model, corpus: a.corpus, seed: a.seed, testShare: a.testShare, layers: layerNames };
  const realSubject: ProbeScore[] = [];
  const realLast: ProbeScore[] = [];
  for (let h = 0; h <= L; h++) {
    realSubject.push(trainAndScoreProbe(ex(subj[h]!, train), ex(subj[h]!, test)));
    realLast.push(trainAndScoreProbe(ex(last[h]!, train), ex(last[h]!, test)));
  }
  result['realSubject'] = realSubject;
  result['realLast'] = realLast;

  const syn = (json.syntheticFacts ?? []).slice(0, a.maxFacts * 4);
  let synByLayer: { accuracy: number; majority: number; relations: number; nTest: number }[] | null = null;
  if (syn.length) {
    const names = [...new Set(syn.map((f) => f.subject))];
    say(`synthetic people: ${names.length}; reading states…`);
    const st = await lastTokenStates(model, names);
    const idx = new Map(names.map((n, i) => [n, i]));
    const byRel = new Map<string, FactRow[]>();
    for (const f of syn) byRel.set(f.relation, [...(byRel.get(f.relation) ?? []), f]);
    synByLayer = [];
    const perRelation: Record<string, ProbeScore[]> = {};
    for (let h = 0; h <= L; h++) {
      let acc = 0;
      let maj = 0;
      let k = 0;
      let nTest = 0;
      for (const [r, fs] of [...byRel].sort()) {
        const items = fs.map((f) => ({ key: f.subject, i: idx.get(f.subject)!, label: f.object }));
        const s = split(items, a.seed, a.testShare);
        if (s.train.length < 30 || s.test.length < 10) continue;
        const sc = trainAndScoreProbe(ex(st[h]!, s.train), ex(st[h]!, s.test));
        (perRelation[r] ??= []).push(sc);
        acc += sc.accuracy;
        maj += sc.majority;
        nTest += sc.nTest;
        k++;
      }
      synByLayer.push({ accuracy: acc / Math.max(1, k), majority: maj / Math.max(1, k), relations: k, nTest });
    }
    result['syntheticSubject'] = synByLayer;
    const sample = syn.filter((_, i) => i % 4 === 0);
    result['syntheticRecall'] = {
      trained: await greedyRecall(model, sample.map((f) => ({ prompt: f.trainedPrompts[0]!, object: f.object }))),
      heldOut: await greedyRecall(
        model,
        sample.flatMap((f) => (f.heldOutPrompts?.length ? [{ prompt: f.heldOutPrompts[0]!, object: f.object }] : [])),
      ),
      n: sample.length,
    };
    result['syntheticPerRelation'] = perRelation;
  }
  model.dispose();
  if (tf.memory().numTensors > n0) say(`warning: ${tf.memory().numTensors - n0} tensors left`);

  const pct = (x: number): string => (Number.isFinite(x) ? (100 * x).toFixed(1) : '—');
  const lines = [
    `probe accuracy on held-out facts (%), ${a.model}`,
    '',
    `| state | ${layerNames.map((l) => (l === 'embed' ? 'embed' : `L${l}`)).join(' | ')} | chance |`,
    `|---|${layerNames.map(() => '---').join('|')}|---|`,
    `| real facts, last subject token (subject alone; n=${realSubject[0]!.nTest}) | ${realSubject.map((s) => pct(s.accuracy)).join(' | ')} | ${pct(realSubject[0]!.majority)} |`,
    `| real facts, last prompt token (n=${realLast[0]!.nTest}) | ${realLast.map((s) => pct(s.accuracy)).join(' | ')} | ${pct(realLast[0]!.majority)} |`,
  ];
  if (synByLayer) {
    lines.push(
      `| synthetic people, last name token, mean over ${synByLayer[0]!.relations} relations (n=${synByLayer[0]!.nTest}) | ${synByLayer.map((s) => pct(s.accuracy)).join(' | ')} | ${pct(synByLayer[0]!.majority)} |`,
    );
  }
  const sr = result['syntheticRecall'] as { trained: number; heldOut: number; n: number } | undefined;
  if (sr) lines.push('', `synthetic facts, greedy recall (every 4th fact, n=${sr.n}): trained prompt ${pct(sr.trained)}%, held-out template ${pct(sr.heldOut)}%`);
  process.stdout.write(lines.join('\n') + '\n');
  if (a.out !== null) {
    await fsp.mkdir(path.dirname(a.out), { recursive: true });
    await fsp.writeFile(a.out, JSON.stringify({ ...result, command: ['npx tsx scripts/probe-facts.ts', ...process.argv.slice(2)].join(' ') }, null, 1) + '\n', { flag: 'wx' });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`probe-facts: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
