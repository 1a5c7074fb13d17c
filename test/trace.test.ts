import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { fixtureModel } from './helpers/fixture.js';
import { traceTestModel, TRACE_PROMPT, TRACE_SUBJECT } from './helpers/traceModels.js';
import { createRng } from '../lib/rng.js';
import type { GPT2Model } from '../lib/model/model.js';
import {
  TraceSession,
  aggregateTraceRecords,
  averageIndirectEffect,
  bucketRows,
  causalTrace,
  embeddingNoiseLevel,
  mergeTraceResults,
  severedTrace,
  tracePrompt,
  windowLayers,
  type FactTraceRecord,
  type StateKind,
  type TracePromptResult,
} from '../lib/trace/index.js';

const PROMPT = TRACE_PROMPT;
const SUBJECT = TRACE_SUBJECT;
const KINDS: StateKind[] = ['hidden', 'mlp', 'attn'];

const model = traceTestModel;

function maxDiff(a: TracePromptResult, b: TracePromptResult): number {
  let m = 0;
  for (const k of KINDS) {
    const x = a.results[k]!.scores;
    const y = b.results[k]!.scores;
    x.forEach((row, t) => row.forEach((v, l) => (m = Math.max(m, Math.abs(v - y[t][l])))));
  }
  return m;
}

test('incremental and naive methods agree within 1e-5 for all kinds, windows and batch sizes', async (t) => {
  const m = await model();
  for (const opts of [
    { windows: {}, maxRows: 256 },
    { windows: { hidden: 2, mlp: 3, attn: 1 }, maxRows: 30 },
  ]) {
    const base = { prompt: PROMPT, subject: SUBJECT, noise: 3, samples: 5, seed: 7, ...opts };
    const inc = await tracePrompt(m, { ...base, method: 'incremental' });
    const naive = await tracePrompt(m, { ...base, method: 'naive' });
    const d = maxDiff(inc, naive);
    t.true(d <= 1e-5, `max |incremental − naive| = ${d}`);
    // The comparison means something only if restorations move the score.
    const hidden = inc.results.hidden!.scores.flat();
    t.true(Math.max(...hidden) - Math.min(...hidden) > 0.1, 'trace has visible effects');
    t.true(inc.stats.flops < naive.stats.flops, 'incremental does less work');
  }
  // The fixture model (token ids, no tokenizer), subject in the middle of the prompt.
  const fx = await fixtureModel();
  const o = { ids: [5, 17, 42, 3, 96, 64, 8], subjectRange: { start: 1, end: 3 }, noise: 1, samples: 4 };
  const d = maxDiff(await tracePrompt(fx, { ...o, method: 'incremental' }), await tracePrompt(fx, { ...o, method: 'naive', maxRows: 8 }));
  t.true(d <= 1e-5, `fixture: max diff ${d}`);
});

test('severed traces: incremental and naive agree; severing changes the curves', async (t) => {
  const m = await model();
  const o = { prompt: PROMPT, subject: SUBJECT, noise: 3, samples: 4, seed: 3 };
  const a = await severedTrace(m, { ...o, method: 'incremental' });
  const b = await severedTrace(m, { ...o, method: 'naive' });
  for (const k of ['ordinary', 'mlpSevered', 'attnSevered'] as const) {
    a[k].forEach((v, l) => t.true(Math.abs(v - b[k][l]) <= 1e-5, `${k}[${l}]: ${v} vs ${b[k][l]}`));
  }
  t.is(a.token, a.subjectRange.end - 1);
  // Restoring the last layer's output at the last subject token: nothing after it to sever.
  const L = m.config.nLayer;
  t.true(Math.abs(a.mlpSevered[L - 1] - a.ordinary[L - 1]) < 1e-6);
  // At the last token (where this random model's effects are large) severing must change the curves, same both ways.
  const T = a.tokens.length;
  const c = await severedTrace(m, { ...o, token: T - 1, method: 'incremental' });
  const e = await severedTrace(m, { ...o, token: T - 1, method: 'naive' });
  t.true(c.ordinary.some((v, l) => Math.abs(v - c.mlpSevered[l]) > 1e-2), 'MLP severing has an effect');
  t.true(c.ordinary.some((v, l) => Math.abs(v - c.attnSevered[l]) > 1e-2), 'attention severing has an effect');
  c.mlpSevered.forEach((v, l) => t.true(Math.abs(v - e.mlpSevered[l]) <= 1e-5));
  c.attnSevered.forEach((v, l) => t.true(Math.abs(v - e.attnSevered[l]) <= 1e-5));
});

test('restoring the clean residual of every token at one layer reproduces p* (both methods)', async (t) => {
  const m = await model();
  const s = await TraceSession.create(m, { prompt: PROMPT, subject: SUBJECT }, { noise: 3, samples: 3 });
  try {
    t.true(s.pStar - s.pLow > 0.5, `noise has an effect (p* ${s.pStar}, p_low ${s.pLow})`);
    const L = m.config.nLayer;
    const allTokens = (l: number) => Array.from({ length: s.length }, (_, p) => ({ kind: 'hidden' as const, layer: l, position: p }));
    const rs = Array.from({ length: L }, (_, l) => allTokens(l));
    const everything = rs.flat();
    for (const method of ['incremental', 'naive'] as const) {
      const got = await s.score([...rs, everything], { method });
      got.forEach((v, i) => t.true(Math.abs(v - s.pStar) < 1e-5, `${method} restoration ${i}: ${v} vs p* ${s.pStar}`));
    }
    // Restoring nothing leaves the corrupted score.
    t.deepEqual(await s.score([[]]), [s.pLow]);
  } finally {
    s.dispose();
  }
});

test('zero noise: p_low = p* and every restoration scores p*', async (t) => {
  const m = await model();
  const r = await tracePrompt(m, { prompt: PROMPT, subject: SUBJECT, noise: 0, samples: 2 });
  t.true(Math.abs(r.pLow - r.pStar) < 1e-6);
  for (const k of KINDS) for (const v of r.results[k]!.scores.flat()) t.true(Math.abs(v - r.pStar) < 1e-5, `${k}: ${v} vs ${r.pStar}`);
  const sv = await severedTrace(m, { prompt: PROMPT, subject: SUBJECT, noise: 0, samples: 2 });
  for (const v of [...sv.ordinary, ...sv.mlpSevered, ...sv.attnSevered]) t.true(Math.abs(v - sv.pStar) < 1e-5);
});

test('window layers follow the official code ([l−5, l+4] clipped for 10)', (t) => {
  t.deepEqual(windowLayers(5, 10, 12), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  t.deepEqual(windowLayers(0, 10, 12), [0, 1, 2, 3, 4]);
  t.deepEqual(windowLayers(11, 10, 12), [6, 7, 8, 9, 10, 11]);
  t.deepEqual(windowLayers(3, 1, 12), [3]);
  t.deepEqual(windowLayers(3, 2, 12), [2, 3]);
  t.throws(() => windowLayers(3, 0, 12));
});

test('window 1 equals single-layer restoration, checked against a hand-made patched run', async (t) => {
  const m = await model();
  const seed = 11;
  const samples = 3;
  const noise = 3;
  const res = await causalTrace(m, { prompt: PROMPT, subject: SUBJECT, kind: 'mlp', window: 1, noise, samples, seed });
  // Independent computation with the run API: the documented noise draw, one patch, mean p(answer).
  const ids = m.encode(PROMPT);
  const T = ids.length;
  const d = m.config.nEmbd;
  const { start, end } = res.subjectRange;
  const rng = createRng(seed);
  const nz = new Float32Array(samples * T * d);
  for (let n = 0; n < samples; n++) for (let p = start; p < end; p++) for (let k = 0; k < d; k++) nz[(n * T + p) * d + k] = noise * rng.normal();
  const noiseT = tf.tensor3d(nz, [samples, T, d]);
  const clean = m.run(PROMPT, { capture: [1, 2].map((l) => `blocks.${l}.mlp`) });
  for (const [tok, layer] of [
    [end - 1, 1],
    [T - 1, 2],
    [start, 2],
  ]) {
    const r = m.run(Array.from({ length: samples }, () => ids), {
      hooks: { embed: (x) => tf.add(x, noiseT) },
      patch: [{ hook: `blocks.${layer}.mlp`, positions: [tok], value: clean.get(`blocks.${layer}.mlp`) }],
      logits: 'last',
    });
    const p = tf.tidy(() => tf.mean(tf.gather(tf.softmax(r.logits!.tensor), [res.answer.id], 1)).dataSync()[0]);
    r.dispose();
    t.true(Math.abs(p - res.scores[tok][layer]) < 1e-5, `(${tok}, ${layer}): ${p} vs ${res.scores[tok][layer]}`);
  }
  clean.dispose();
  noiseT.dispose();
});

test('a fixed seed gives identical tables; another seed gives different ones', async (t) => {
  const m = await model();
  const o = { prompt: PROMPT, subject: SUBJECT, noise: 3, samples: 3, kinds: ['hidden', 'attn'] as StateKind[] };
  const a = await tracePrompt(m, { ...o, seed: 5 });
  const b = await tracePrompt(m, { ...o, seed: 5 });
  const c = await tracePrompt(m, { ...o, seed: 6 });
  t.deepEqual(a.results, b.results);
  t.notDeepEqual(a.results.hidden!.scores, c.results.hidden!.scores);
});

// Serial: ava runs serial tests before the concurrent ones, so no other test holds tensors meanwhile.
test.serial('no tensors leak across repeated traces', async (t) => {
  const m = await model();
  const o = { prompt: PROMPT, subject: SUBJECT, noise: 3, samples: 2 };
  const once = async () => {
    await tracePrompt(m, { ...o, method: 'incremental' });
    await tracePrompt(m, { ...o, method: 'naive', kinds: ['mlp'] });
    await severedTrace(m, o);
  };
  await once();
  const before = tf.memory().numTensors;
  await once();
  await once();
  t.is(tf.memory().numTensors, before);
});

test('auto noise is 3 × the std (n−1) of the subjects’ token embeddings', async (t) => {
  const m = await model();
  const subjects = ['Eiffel Tower', 'Barack Obama', 'Paris'];
  const ids = subjects.flatMap((s) => m.encode(s));
  const wte = m.getParam('wte.weight').arraySync() as number[][];
  const xs = ids.flatMap((i) => wte[i]);
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1));
  const nu = embeddingNoiseLevel(m, subjects);
  t.true(Math.abs(nu - 3 * std) < 1e-9 * Math.max(1, nu), `${nu} vs ${3 * std}`);
  t.is(embeddingNoiseLevel(m, subjects, { multiplier: 1 }), nu / 3);
  const r = await causalTrace(m, { prompt: PROMPT, subject: SUBJECT, noise: 'auto', noiseSubjects: subjects, samples: 1, kind: 'hidden' });
  t.is(r.noise, nu);
});

test('bucketRows: the six token buckets of Figure 2', (t) => {
  const table = Array.from({ length: 8 }, (_, i) => [i, 10 * i]);
  const b = bucketRows(table, { start: 1, end: 5 });
  t.deepEqual(b.first_subject, [1, 10]);
  t.deepEqual(b.middle_subject, [2.5, 25]);
  t.deepEqual(b.last_subject, [4, 40]);
  t.deepEqual(b.first_subsequent, [5, 50]);
  t.deepEqual(b.further, [6, 60]);
  t.deepEqual(b.last, [7, 70]);
  const single = bucketRows(table.slice(0, 4), { start: 1, end: 2 });
  t.deepEqual(single.first_subject, single.last_subject);
  t.is(single.middle_subject, undefined);
  t.is(single.further, undefined);
  t.deepEqual(single.first_subsequent, [2, 20]);
});

test('aggregateTraceRecords: means, CIs, ATE and skipped count from hand-made records', (t) => {
  const rec = (id: number, known: boolean, pStar: number, pLow: number, v: number): FactTraceRecord => ({
    version: 1,
    id,
    prompt: 'p',
    subject: 's',
    attribute: 'a',
    settings: 'x',
    known,
    answer: { id: 0, token: 'a' },
    pStar,
    pLow,
    tokens: ['a', 'b', 'c'],
    subjectRange: { start: 0, end: 1 },
    noise: 1,
    samples: 1,
    seed: 0,
    scores: known ? { mlp: [[v, v], [v, v], [v, 2 * v]] } : undefined,
  });
  const avg = aggregateTraceRecords([rec(0, true, 0.5, 0.1, 0.3), rec(1, true, 0.7, 0.3, 0.5), rec(2, false, 0.9, 0.1, 0)], 2);
  t.is(avg.nFacts, 3);
  t.is(avg.nKnown, 2);
  t.is(avg.nSkipped, 1);
  t.true(Math.abs(avg.ate - 0.4) < 1e-12);
  const last = avg.kinds.mlp!.buckets.find((b) => b.name === 'last')!;
  // IE rows: fact 0 [0.2, 0.5], fact 1 [0.2, 0.7] → mean [0.2, 0.6], std [0, 0.1414].
  t.true(Math.abs(last.meanIE[0] - 0.2) < 1e-12 && Math.abs(last.meanIE[1] - 0.6) < 1e-12);
  t.true(Math.abs(last.ci[1] - (1.96 * Math.sqrt(0.02)) / Math.sqrt(2)) < 1e-12);
  t.is(last.count, 2);
  t.is(avg.kinds.mlp!.buckets.find((b) => b.name === 'middle_subject')!.count, 0);
});

test('averageIndirectEffect: skips unknown facts, writes per-fact records, resumes, and shards merge', async (t) => {
  const m = await model();
  const top = m.topTokens(PROMPT, 1)[0].token;
  const p2 = 'Barack Obama was born in the state of';
  const top2 = m.topTokens(p2, 1)[0].token;
  const facts = [
    { prompt: PROMPT, subject: SUBJECT, attribute: top.trim() },
    { prompt: p2, subject: 'Barack Obama', attribute: top2.trim() },
    { prompt: 'Paris is the capital of', subject: 'Paris', attribute: '@@not-the-answer@@' },
  ];
  const opts = { kinds: ['hidden', 'mlp'] as StateKind[], samples: 2, noise: 3, seed: 1, severed: true };
  const dir = await mkdtemp(path.join(tmpdir(), 'rome-ts-trace-'));
  try {
    const whole = await averageIndirectEffect(m, facts, opts);
    t.is(whole.nFacts, 3);
    t.is(whole.nKnown, 2);
    t.is(whole.nSkipped, 1);
    t.truthy(whole.severed);
    t.is(whole.kinds.hidden!.buckets.find((b) => b.name === 'last')!.count, 2);
    // Two shards into one directory, then merged: same numbers as the single run.
    const seen: number[] = [];
    await averageIndirectEffect(m, facts, { ...opts, outDir: dir, shard: { index: 0, count: 2 }, onProgress: (_d, _n, r) => seen.push(r.id) });
    await averageIndirectEffect(m, facts, { ...opts, outDir: dir, shard: { index: 1, count: 2 }, onProgress: (_d, _n, r) => seen.push(r.id) });
    t.deepEqual(seen, [0, 2, 1]);
    const merged = await mergeTraceResults(dir);
    t.deepEqual(merged, whole);
    // Resume reuses records on disk (proved by tampering with one); without resume they are recomputed.
    const file = path.join(dir, 'fact-0.json');
    const rec = JSON.parse(await readFile(file, 'utf8')) as FactTraceRecord;
    await writeFile(file, JSON.stringify({ ...rec, pStar: 5 }));
    const resumed = await averageIndirectEffect(m, facts, { ...opts, outDir: dir, resume: true });
    t.true(resumed.meanPStar > 2);
    const redone = await averageIndirectEffect(m, facts, { ...opts, outDir: dir });
    t.deepEqual(redone, whole);
    // Records of different settings refuse to merge.
    await writeFile(path.join(dir, 'fact-99.json'), JSON.stringify({ ...rec, id: 99, settings: 'other' }));
    await t.throwsAsync(() => mergeTraceResults(dir), { message: /different settings/ });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('errors: subject not in prompt, bad ranges, bad answer', async (t) => {
  const m = await model();
  await t.throwsAsync(() => causalTrace(m, { prompt: PROMPT, subject: 'Louvre', noise: 1 }), { message: /not found/ });
  const fx = await fixtureModel();
  await t.throwsAsync(() => causalTrace(fx, { ids: [1, 2, 3], subjectRange: { start: 2, end: 5 }, noise: 1 }), { message: /subject range/ });
  await t.throwsAsync(() => causalTrace(fx, { ids: [1, 2, 3], subjectRange: { start: 0, end: 1 }, noise: 'auto' }), { message: /tokenizer/ });
  await t.throwsAsync(() => causalTrace(fx, { ids: [1, 2, 3], subjectRange: { start: 0, end: 1 }, noise: 1, answer: 1000 }), { message: /out of range/ });
});

test('an explicit answer is traced instead of the top-1', async (t) => {
  const m = await model();
  const r = await causalTrace(m, { prompt: PROMPT, subject: SUBJECT, noise: 3, samples: 2, answer: ' Paris' });
  t.is(r.answer.id, m.encode(' Paris')[0]);
  t.is(r.answer.token, ' Paris');
  const top = await causalTrace(m, { prompt: PROMPT, subject: SUBJECT, noise: 3, samples: 2 });
  t.is(top.answer.id, m.topTokens(PROMPT, 1)[0].id);
});
