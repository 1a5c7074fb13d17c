import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { tinyModel } from './helpers/romeTiny.js';
import {
  buildIdf,
  counterFactRow,
  evalCounterFactCase,
  evalZsreCase,
  harmonicMean,
  meanCI,
  ngramEntropy,
  ReferenceTexts,
  runCounterFactEval,
  summarize,
  summaryMarkdown,
  tfidfCosine,
  type CounterFactEval,
} from '../lib/eval/index.js';
import { identitySolver } from '../lib/rome/index.js';
import type { CounterFactRecord } from '../lib/data/counterfact.js';

const close = (a: number, b: number, tol = 1e-6) => Math.abs(a - b) <= tol;

// Case A: ES 1, PS 1/2, NS 1/2. Case B: ES 0, no paraphrases, NS 1.
const A: CounterFactEval = {
  rewrite: { nllNew: 1, nllTrue: 2 },
  paraphrase: [
    { nllNew: 1, nllTrue: 2 },
    { nllNew: 3, nllTrue: 2 },
  ],
  neighborhood: [
    { nllNew: 5, nllTrue: 1 },
    { nllNew: 1, nllTrue: 5 },
  ],
};
const B: CounterFactEval = { rewrite: { nllNew: 3, nllTrue: 1 }, paraphrase: [], neighborhood: [{ nllNew: 4, nllTrue: 1 }] };

test('ES/PS/NS/S and magnitudes on hand-computed cases', (t) => {
  const row = counterFactRow('x', [A, B]);
  t.true(close(row.metrics.ES.mean, 50));
  t.true(close(row.metrics.PS.mean, 50));
  t.is(row.metrics.PS.n, 1);
  t.true(close(row.metrics.NS.mean, 75));
  t.true(close(row.metrics.S.mean, 56.25), `S ${row.metrics.S.mean}`);
  // EM: A e^-1 − e^-2 = 0.232544; B e^-3 − e^-1 = −0.318092; mean −0.042774.
  t.true(close(row.metrics.EM.mean, 100 * ((Math.exp(-1) - Math.exp(-2) + Math.exp(-3) - Math.exp(-1)) / 2)));
  // ES values [1, 0]: sample std 0.70711, CI 1.96·0.70711/√2 = 0.98.
  t.true(close(row.metrics.ES.ci, 98, 1e-3));
  t.true(close(harmonicMean([50, 50, 75]), 56.25));
  t.deepEqual(meanCI([]).n, 0);
});

test('n-gram entropy of "a b a b": H2 = 0.918296, H3 = 1, GE = (2/3·H2 + 4/3·H3)/2 = 0.972765', (t) => {
  t.true(close(ngramEntropy('a b a b'), (2 / 3 * 0.9182958340544896 + 4 / 3) / 2));
  t.true(close(ngramEntropy('a a a a a'), 0), 'a single repeated n-gram has zero entropy');
});

test('TF-IDF cosine: "apple banana" vs "apple cherry" with smooth idf over two documents = 1/(1 + (ln 1.5 + 1)²)', (t) => {
  const idf = buildIdf(['apple banana', 'apple cherry']);
  t.true(close(idf.idf.get('apple')!, 1));
  t.true(close(idf.idf.get('banana')!, Math.log(1.5) + 1));
  const expected = 1 / (1 + (Math.log(1.5) + 1) ** 2);
  t.true(close(tfidfCosine('apple banana', 'Apple cherry!', idf), expected));
  t.true(close(tfidfCosine('apple banana', 'apple banana', idf), 1));
  t.is(tfidfCosine('durian', 'apple', idf), 0);
});

test('reference texts pick other subjects with the same object and relation', (t) => {
  const refs = new ReferenceTexts([
    { subject: 'X', object: 'Paris', relationId: 'P1', text: 'X is in Paris.' },
    { subject: 'Y', object: 'Paris', relationId: 'P1', text: 'Y is in Paris.' },
    { subject: 'Z', object: 'Paris', relationId: 'P2', text: 'Z was born in Paris.' },
  ]);
  t.deepEqual(refs.textsFor('Paris', 'P1', 'X'), ['Y is in Paris.']);
  t.deepEqual(refs.textsFor(' paris', null, 'Q').length, 3);
});

function writeCase(dir: string, caseId: number, method: string, pre: CounterFactEval, post: CounterFactEval): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `case_${caseId}.json`), JSON.stringify({ dataset: 'counterfact', caseId, method, model: 'm', request: {}, pre, post, edit: null }));
}

test('summarize builds the unedited row and one row per method, over the common cases, with CIs', (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'rome-sum-'));
  try {
    writeCase(path.join(root, 'rome'), 1, 'rome', B, A);
    writeCase(path.join(root, 'rome'), 2, 'rome', B, B);
    writeCase(path.join(root, 'ft'), 1, 'ft', B, A);
    writeCase(path.join(root, 'ft'), 2, 'ft', B, A);
    writeCase(path.join(root, 'ft'), 3, 'ft', B, A); // not in rome/: ignored
    const rows = summarize([path.join(root, 'rome'), path.join(root, 'ft')]);
    t.deepEqual(rows.map((r) => r.name), ['unedited', 'ROME', 'FT']);
    t.true(rows.every((r) => r.n === 2));
    t.true(close(rows[0].metrics.ES.mean, 0));
    t.true(close(rows[1].metrics.ES.mean, 50));
    t.true(close(rows[2].metrics.ES.mean, 100));
    t.true(close(rows[2].metrics.ES.ci, 0));
    const md = summaryMarkdown(rows);
    t.regex(md, /\| ROME \| 2 \| 56\.[23] \| 50\.0 ± 98\.0 \|/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

const REC: CounterFactRecord = {
  caseId: 7,
  subject: 'Lionel Messi',
  prompt: 'The sport of {}',
  targetTrue: 'French',
  targetNew: 'Paris',
  relationId: null,
  paraphrasePrompts: ['Tokyo is the capital of Japan. The sport of Lionel Messi'],
  neighborhoodPrompts: ['The sport of Michael Jordan'],
  attributePrompts: [],
  generationPrompts: ['Lionel Messi is'],
  format: 'rome',
  split: null,
  relationInferred: false,
};

test.serial('the protocol writes one file per case, post from the edited model, pre after restore; reruns skip', async (t) => {
  const model = await tinyModel();
  const dir = mkdtempSync(path.join(tmpdir(), 'rome-run-'));
  try {
    const unedited = await evalCounterFactCase(model, REC);
    const opts = {
      method: 'rome' as const,
      outDir: dir,
      hparams: { rome: { layer: 0 }, romeOptions: { solver: identitySolver(model.config.nInner) } },
    };
    const seen: boolean[] = [];
    await runCounterFactEval(model, [REC], { ...opts, onCase: (_d, _n, _id, skipped) => seen.push(skipped) });
    await runCounterFactEval(model, [REC], { ...opts, onCase: (_d, _n, _id, skipped) => seen.push(skipped) });
    t.deepEqual(seen, [false, true]);
    const rows = summarize([dir]);
    t.deepEqual(rows.map((r) => r.name), ['unedited', 'ROME']);
    t.is(rows[1].metrics.ES.mean, 100);
    const { readCaseResult } = await import('../lib/eval/runner.js');
    const c = readCaseResult<CounterFactEval>(path.join(dir, 'case_7.json'));
    t.deepEqual(c.pre, unedited);
    t.true(c.post.rewrite.nllNew < c.pre.rewrite.nllNew);
    const gen = await evalCounterFactCase(model, REC, { maxNewTokens: 8, references: new ReferenceTexts([]), idf: buildIdf(['a']) });
    t.is(gen.generation!.texts.length, 1);
    t.true(gen.generation!.texts[0].startsWith('Lionel Messi is'));
    t.is(gen.generation!.referenceScore, null);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.serial('zsRE accuracies are token-level teacher-forced top-1 rates', async (t) => {
  const model = await tinyModel();
  const rec = { index: 0, subject: 'Lionel Messi', prompt: 'The sport of Lionel Messi', template: 'The sport of {}', rephrase: 'Lionel Messi', target: 'Paris', answers: ['French'], locPrompt: 'The capital of France', locAnswer: 'Paris' };
  const e = evalZsreCase(model, rec);
  const s = model.scoreTargets([{ prompt: rec.prompt, target: ' Paris' }])[0];
  t.is(e.efficacy, s.tokenArgmaxCorrect.filter(Boolean).length / s.tokenArgmaxCorrect.length);
  for (const v of Object.values(e)) t.true(v >= 0 && v <= 1);
});
