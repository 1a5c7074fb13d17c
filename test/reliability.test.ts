/**
 * Regression tests of issue 15 (bad-input audit): hangs, silent wrong results, lost files. Test names start with
 * the section so the list can be checked item by item.
 */
import test from 'ava';
import { promises as fsp, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CheckpointError } from '../lib/io/checkpoint.js';
import { readSafetensors, writeSafetensors, type SafetensorsWriteTensor } from '../lib/io/safetensors.js';
import { loadModel } from '../lib/loadModel.js';
import { mom2Solver } from '../lib/rome/covariance.js';
import { readStatsCache, type LayerStatsMeta } from '../lib/rome/layerStats.js';
import { sha256 } from '../lib/data/hash.js';
import { FIXTURE_DIR } from './helpers/fixture.js';
import { tinyModel } from './helpers/romeTiny.js';
import { tinyModelDir } from './helpers/cliModels.js';
import { startFakeHub } from './helpers/server.js';
import { HubError, resolveModelSource } from '../lib/io/hub.js';
import { Tokenizer } from '../lib/tokenizer/tokenizer.js';
import { trainByteLevelTokenizerJson } from '../lib/tokenizer/trainBpe.js';

/** A string as a literal regular-expression fragment. */
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
import { contextTemplates } from '../lib/rome/contextPrefixes.js';
import * as tf from '@tensorflow/tfjs-core';
import { applyEdit, commitEdit } from '../lib/rome/edits.js';
import { weightsHash } from '../lib/rome/identity.js';
import type { EditJSON } from '../lib/rome/types.js';
import { runCounterFactEval } from '../lib/eval/runner.js';
import { summarize } from '../lib/eval/summarize.js';
import type { CounterFactRecord } from '../lib/data/counterfact.js';
import { loadRomeHparams, resolveRomeHparams } from '../lib/rome/hparams.js';
import { loadKnHparams } from '../lib/baselines/kn.js';
import { main } from '../lib/cli/main.js';
import { causalTrace } from '../lib/trace/causalTrace.js';
import { mergeTraceResults } from '../lib/trace/averageEffects.js';
import { edit as romeEdit } from '../lib/rome/index.js';
import { ftEdit, loadFtHparams } from '../lib/baselines/ft.js';
import { fillPrompt } from '../lib/rome/types.js';

function tmp(prefix = 'rome-ts-rel-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A symmetric positive-definite n×n sum with a known diagonal (count 1). */
function spdSum(n: number): Float64Array {
  const s = new Float64Array(n * n);
  for (let i = 0; i < n; i++) s[i * n + i] = 2 + i;
  s[1] = s[n] = 0.5;
  return s;
}

// ---- Hangs ----------------------------------------------------------------------------------------------------

test.serial('hang: mom2Solver with a NaN in the covariance throws naming the non-finite value (was an endless ridge loop)', (t) => {
  const s = spdSum(4);
  s[5] = NaN;
  const err = t.throws(() => mom2Solver(s, 10, 4).solve([1, 0, 0, 0]));
  t.regex(err!.message, /non-finite value \(NaN at row 1, column 1\)/);
});

test.serial('hang: mom2Solver with an all-zero covariance throws instead of looping with a zero ridge', (t) => {
  const err = t.throws(() => mom2Solver(new Float64Array(16), 10, 4).solve([1, 0, 0, 0]));
  t.regex(err!.message, /no positive diagonal/);
});

test.serial('hang: mom2Solver still solves a PD system exactly (the guard does not reject good statistics)', (t) => {
  const s = spdSum(3);
  const x = mom2Solver(s, 1, 3).solve([1, 2, 3]);
  // C x must reproduce b.
  for (let i = 0; i < 3; i++) {
    let r = 0;
    for (let j = 0; j < 3; j++) r += s[i * 3 + j] * x[j];
    t.true(Math.abs(r - [1, 2, 3][i]) < 1e-12);
  }
});

test.serial('hang: a singular-but-finite covariance still gets a ridge (bounded search)', (t) => {
  const s = new Float64Array(9);
  s[0] = 1; // rank 1: needs a ridge
  const solver = mom2Solver(s, 1, 3);
  t.true(solver.ridge > 0 && solver.ridge <= 10 * (1 / 3));
});

test.serial('hang: a NaN statistics cache makes the solver throw (not spin)', (t) => {
  const dir = tmp();
  const base = path.join(dir, 'L0');
  const n = 3;
  const sum = spdSum(n);
  sum[4] = NaN;
  const bytes = new Uint8Array(sum.buffer);
  const meta = cacheMeta(n, 'w', 'c', sha256(bytes));
  writeFileSync(`${base}.f64`, bytes);
  writeFileSync(`${base}.json`, JSON.stringify(meta));
  const stats = readStatsCache(base, 'w', n, 'c');
  t.truthy(stats);
  t.throws(() => stats!.solver().solve([1, 1, 1]), { message: /non-finite/ });
});

test.serial('hang: non-finite weights are reported at load, naming the file and the tensor', async (t) => {
  const stored = (await readSafetensors(path.join(FIXTURE_DIR, 'model.safetensors'))).tensors;
  const tensors = new Map<string, SafetensorsWriteTensor>();
  for (const [n, x] of stored) tensors.set(n, { shape: x.shape, data: Float32Array.from(x.data) });
  const name = [...tensors.keys()].find((k) => k.endsWith('h.1.mlp.c_fc.weight'))!;
  tensors.get(name)!.data[7] = NaN;
  tensors.get(name)!.data[9] = Infinity;
  const dir = tmp();
  await fsp.copyFile(path.join(FIXTURE_DIR, 'config.json'), path.join(dir, 'config.json'));
  await writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  const err = await t.throwsAsync(loadModel(dir), { instanceOf: CheckpointError });
  t.true(err!.message.includes(path.join(dir, 'model.safetensors')), err!.message);
  t.regex(err!.message, /"h\.1\.mlp\.c_fc\.weight" holds 2 non-finite values \(first: NaN at flat index 7\)/);
});

// ---- Silent wrong results: statistics cache ----------------------------------------------------------------------

function cacheMeta(n: number, weightsHash: string, corpusIdentity: string, sumSha256?: string): LayerStatsMeta {
  return {
    format: 'rome-ts-layer-stats',
    version: 1,
    model: 'm',
    weightsHash,
    layer: 0,
    n,
    corpusName: 'c',
    corpusIdentity,
    maxLength: 8,
    tokens: 100,
    samples: 10,
    exhausted: false,
    dtype: 'float64',
    ...(sumSha256 ? { sumSha256 } : {}),
  };
}

test.serial('wrong result: a truncated statistics cache (.f64 half size) is rejected by its size check, naming the file', (t) => {
  const dir = tmp();
  const base = path.join(dir, 'L0');
  const n = 4;
  const bytes = new Uint8Array(spdSum(n).buffer);
  writeFileSync(`${base}.f64`, bytes.subarray(0, bytes.length / 2));
  writeFileSync(`${base}.json`, JSON.stringify(cacheMeta(n, 'w', 'c')));
  const errs: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string) => (errs.push(String(s)), true)) as typeof process.stderr.write;
  try {
    t.is(readStatsCache(base, 'w', n, 'c'), null);
  } finally {
    process.stderr.write = write;
  }
  t.regex(errs.join(''), new RegExp(`${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.f64.*64 bytes, expected 128`));
});

test.serial('wrong result: a statistics cache whose bytes changed is rejected by its checksum; an intact one is read back', (t) => {
  const dir = tmp();
  const base = path.join(dir, 'L0');
  const n = 4;
  const sum = spdSum(n);
  const bytes = new Uint8Array(sum.buffer);
  writeFileSync(`${base}.json`, JSON.stringify(cacheMeta(n, 'w', 'c', sha256(bytes))));
  writeFileSync(`${base}.f64`, bytes);
  const ok = readStatsCache(base, 'w', n, 'c');
  t.deepEqual(Array.from(ok!.sum), Array.from(sum));
  const tampered = Float64Array.from(sum);
  tampered[0] = 0;
  writeFileSync(`${base}.f64`, new Uint8Array(tampered.buffer));
  const write = process.stderr.write.bind(process.stderr);
  let msg = '';
  process.stderr.write = ((s: string) => ((msg += s), true)) as typeof process.stderr.write;
  try {
    t.is(readStatsCache(base, 'w', n, 'c'), null);
  } finally {
    process.stderr.write = write;
  }
  t.regex(msg, /does not match the checksum/);
});

test.serial('poor message: corrupt statistics metadata names the file (and is recomputed)', (t) => {
  const dir = tmp();
  const base = path.join(dir, 'L0');
  writeFileSync(`${base}.json`, '{"format": "rome-ts-lay');
  writeFileSync(`${base}.f64`, new Uint8Array(8));
  const write = process.stderr.write.bind(process.stderr);
  let msg = '';
  process.stderr.write = ((s: string) => ((msg += s), true)) as typeof process.stderr.write;
  try {
    t.is(readStatsCache(base, 'w', 1, 'c'), null);
  } finally {
    process.stderr.write = write;
  }
  t.true(msg.includes(`${base}.json`), msg);
});

// ---- Other defects: tensor leaks ---------------------------------------------------------------------------------

test.serial('leak: sampled generation (topK > 1) leaves no tensors behind per token (numTensors)', async (t) => {
  const m = await tinyModel();
  // Warm the causal-mask cache (bounded, by design) for these lengths.
  await m.generateIds([1, 2], { maxNewTokens: 12, topK: 5, seed: 1 });
  const n0 = tf.memory().numTensors;
  await m.generateIds([1, 2], { maxNewTokens: 12, topK: 5, seed: 2 });
  await m.generateIds([1, 2], { maxNewTokens: 12, topK: 3, temperature: 0.7, seed: 3 });
  t.is(tf.memory().numTensors - n0, 0);
});

test.serial('leak: contextTemplates leaves no tensors behind (only the bounded mask cache on a first call)', async (t) => {
  const m = await tinyModel({ fresh: true });
  const n0 = tf.memory().numTensors;
  await contextTemplates(m, { cacheDir: null, seed: 11 });
  const first = tf.memory().numTensors - n0;
  // The default spec generates 150 tokens; a per-token leak would leave >= 150.
  t.true(first <= 12, `first call left ${first} tensors`);
  const n1 = tf.memory().numTensors;
  await contextTemplates(m, { cacheDir: null, seed: 12 });
  t.is(tf.memory().numTensors - n1, 0);
  m.dispose();
});

// ---- Silent wrong results: patches ---------------------------------------------------------------------------------

test.serial('wrong result: patch positions or batch rows outside [0, T) / [0, B) are rejected, not ignored', async (t) => {
  const m = await tinyModel();
  const T = m.tokenizer!.encode('The Eiffel Tower').ids.length;
  t.throws(() => m.run('The Eiffel Tower', { patch: [{ hook: 'blocks.0.mlp', positions: [T], value: 0 }] }), {
    message: new RegExp(`position ${T} is outside \\[0, ${T}\\)`),
  });
  t.throws(() => m.run('The Eiffel Tower', { patch: [{ hook: 'blocks.0.mlp', positions: [-1], value: 0 }] }), { message: /position -1/ });
  t.throws(() => m.run('The Eiffel Tower', { patch: [{ hook: 'blocks.0.mlp', positions: [0.5], value: 0 }] }), { message: /position 0.5/ });
  t.throws(() => m.run('The Eiffel Tower', { patch: [{ hook: 'blocks.0.mlp', batch: [1], value: 0 }] }), { message: /batch row 1 is outside \[0, 1\)/ });
  // In range still patches: zeroing the last position's MLP changes the last logits.
  const a = m.run('The Eiffel Tower', { logits: 'last' });
  const b = m.run('The Eiffel Tower', { logits: 'last', patch: [{ hook: 'blocks.1.mlp', positions: [T - 1], value: 0 }] });
  t.notDeepEqual(Array.from(a.logits!.dataSync()), Array.from(b.logits!.dataSync()));
  a.dispose();
  b.dispose();
});

// ---- Edit files, restore order, all-or-nothing -------------------------------------------------------------------

const EDIT_REQ = { prompt: 'The Eiffel Tower is located in the city of {}', subject: 'The Eiffel Tower', target: 'Rome' };

/** A saved ROME-shaped edit of the tiny model at layer 0 (no optimisation: the vectors are arbitrary but finite). */
async function savedEdit(): Promise<{ json: EditJSON; before: string }> {
  const m = await tinyModel();
  const before = weightsHash(m);
  const { nInner, nEmbd } = m.config;
  const u = Array.from({ length: nInner }, (_, i) => Math.fround(Math.sin(i) / 10));
  const v = Array.from({ length: nEmbd }, (_, j) => Math.fround(Math.cos(j)));
  const h = commitEdit(m, { method: 'rome', layer: 0, request: EDIT_REQ, losses: [], info: {}, updates: [{ kind: 'rank-one', param: 'h.0.mlp.c_proj.weight', u, v }] });
  const json = JSON.parse(JSON.stringify(h.toJSON())) as EditJSON;
  h.restore();
  t0Hash(m, before);
  return { json, before };
}

function t0Hash(m: Awaited<ReturnType<typeof tinyModel>>, want: string): void {
  if (weightsHash(m) !== want) throw new Error('model not back to its original weights');
}

test.serial('edit file: a null in u (serialised NaN) is refused, not applied as 0, and the model is untouched', async (t) => {
  const m = await tinyModel();
  const { json, before } = await savedEdit();
  const bad = structuredClone(json);
  (bad.updates[0] as { u: (number | null)[] }).u[3] = null;
  t.throws(() => applyEdit(m, bad), { message: /updates\[0\]\.u\[3\] must be a finite float32 number, got null/ });
  t.is(weightsHash(m), before);
});

test.serial('edit file: strings and 1e39 in v are refused (they gave NaN / Infinity outputs)', async (t) => {
  const m = await tinyModel();
  const { json } = await savedEdit();
  const s = structuredClone(json);
  (s.updates[0] as { v: unknown[] }).v[0] = '0.5';
  t.throws(() => applyEdit(m, s), { message: /v\[0\] must be a finite float32 number, got "0.5"/ });
  const big = structuredClone(json);
  (big.updates[0] as { v: number[] }).v[1] = 1e39;
  t.throws(() => applyEdit(m, big), { message: /v\[1\] must be a finite float32 number, got 1e\+39/ });
});

test.serial('edit file: version 99 and a changed layer field are refused', async (t) => {
  const m = await tinyModel();
  const { json } = await savedEdit();
  t.throws(() => applyEdit(m, { ...json, version: 99 as 2 }), { message: /unsupported edit version 99/ });
  t.throws(() => applyEdit(m, { ...json, layer: 1 }), { message: /ROME edit of layer 1 must change "h\.1\.mlp\.c_proj\.weight" only/ });
  t.throws(() => applyEdit(m, { ...json, layer: 7 }), { message: /layer 7 is outside \[0, 2\)/ });
});

test.serial('edit file: a patch made for another model of the same shape is refused unless forced (weights fingerprint)', async (t) => {
  const m = await tinyModel();
  const { json, before } = await savedEdit();
  // Same shapes, other weights: a fresh tiny model with a different layer-0 projection.
  const other = await tinyModel({ fresh: true });
  const w = other.getParam('h.0.mlp.c_proj.weight');
  const changed = tf.tidy(() => tf.mul(w, 1.01));
  other.setParam('h.0.mlp.c_proj.weight', changed);
  changed.dispose();
  t.throws(() => applyEdit(other, json), { message: /differ from those it was made on/ });
  const forced = applyEdit(other, json, { force: true });
  forced.restore();
  other.dispose();
  // On the model it was made on it applies, and restore is exact.
  const h = applyEdit(m, json);
  t.not(weightsHash(m), before);
  h.restore();
  t.is(weightsHash(m), before);
  // A version-1 file (no fingerprint) needs force.
  const v1 = structuredClone(json) as EditJSON;
  v1.version = 1;
  delete v1.model.paramsSha256;
  t.throws(() => applyEdit(m, v1), { message: /no fingerprint/ });
});

test.serial('lost data: applyEdit with a bad second update leaves the model untouched (all or nothing)', async (t) => {
  const m = await tinyModel();
  const { json, before } = await savedEdit();
  const two = structuredClone(json);
  two.method = 'ft';
  two.updates.push({ kind: 'rank-one', param: 'h.1.mlp.c_proj.weight', u: [1, 2], v: [3] });
  t.throws(() => applyEdit(m, two), { message: /updates\[1\].*does not fit/ });
  t.is(weightsHash(m), before);
});

test.serial('wrong result: restoring sequential edits first-in-first-out is refused; LIFO restores exactly', async (t) => {
  const m = await tinyModel();
  const { json, before } = await savedEdit();
  const a = applyEdit(m, json);
  const second = structuredClone(json);
  (second.updates[0] as { v: number[] }).v = (second.updates[0] as { v: number[] }).v.map((x) => x / 2);
  const b = applyEdit(m, second, { force: true }); // made on the original weights, applied on top of a
  t.throws(() => a.restore(), { message: /later edit of "h\.0\.mlp\.c_proj\.weight" is still applied/ });
  t.false(a.restored);
  b.restore();
  a.restore();
  t.true(a.restored && b.restored);
  t.is(weightsHash(m), before);
});

// ---- Result directories ------------------------------------------------------------------------------------------

const CF_REC: CounterFactRecord = {
  caseId: 7,
  subject: 'Lionel Messi',
  prompt: 'The sport of {}',
  targetTrue: 'French',
  targetNew: 'Paris',
  relationId: null,
  paraphrasePrompts: ['The sport of Lionel Messi'],
  neighborhoodPrompts: ['The sport of Michael Jordan'],
  attributePrompts: [],
  generationPrompts: ['Lionel Messi is'],
  format: 'rome',
  split: null,
  relationInferred: false,
};

test.serial('wrong result: eval into an existing --out with another method or hparams is refused (directory bound to its settings)', async (t) => {
  const m = await tinyModel();
  const dir = tmp();
  const none = { method: 'none' as const, outDir: dir };
  await runCounterFactEval(m, [CF_REC], none);
  const runJson = readFileSync(path.join(dir, 'run.json'), 'utf8');
  await t.throwsAsync(runCounterFactEval(m, [CF_REC], { method: 'rome', outDir: dir, hparams: { rome: { layer: 0 } } }), {
    message: /holds results of other settings: method was "none" and is now "rome"/,
  });
  await t.throwsAsync(runCounterFactEval(m, [CF_REC], { ...none, hparams: { rome: { layer: 1 } } }), { message: /hparams was \{\} and is now/ });
  // run.json still describes the results it holds.
  t.is(readFileSync(path.join(dir, 'run.json'), 'utf8'), runJson);
  // The same settings resume (the case is skipped).
  const skipped: boolean[] = [];
  await runCounterFactEval(m, [CF_REC], { ...none, onCase: (_d, _n, _i, s) => skipped.push(s) });
  t.deepEqual(skipped, [true]);
});

test.serial('wrong result: a truncated case file is detected, named and recomputed on rerun; summarize names it', async (t) => {
  const m = await tinyModel();
  const dir = tmp();
  const opts = { method: 'none' as const, outDir: dir };
  await runCounterFactEval(m, [CF_REC], opts);
  const file = path.join(dir, 'case_7.json');
  const whole = readFileSync(file, 'utf8');
  writeFileSync(file, whole.slice(0, whole.length >> 1));
  t.throws(() => summarize([dir]), { message: new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: unreadable case result`) });
  const skipped: boolean[] = [];
  const write = process.stderr.write.bind(process.stderr);
  let msg = '';
  process.stderr.write = ((s: string) => ((msg += s), true)) as typeof process.stderr.write;
  try {
    await runCounterFactEval(m, [CF_REC], { ...opts, onCase: (_d, _n, _i, s) => skipped.push(s) });
  } finally {
    process.stderr.write = write;
  }
  t.deepEqual(skipped, [false]);
  t.true(msg.includes(file), msg);
  t.deepEqual(JSON.parse(readFileSync(file, 'utf8')), JSON.parse(whole));
  t.is(summarize([dir])[0].n, 1);
});

// ---- Hyperparameters and command-line counts ---------------------------------------------------------------------

function hparamsFile(obj: Record<string, unknown>): string {
  const f = path.join(tmp(), 'hp.json');
  writeFileSync(f, JSON.stringify(obj));
  return f;
}

test.serial('wrong result: hparams of the wrong type or range are refused, naming the file and the field', (t) => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ layer: 0, vLr: 'fast' }, /"vLr" must be a finite number > 0, got "fast"/],
    [{ layer: 0, vNumGradSteps: 'twenty' }, /"vNumGradSteps" must be an integer >= 1, got "twenty"/],
    [{ layer: 0, vNumGradSteps: -5 }, /"vNumGradSteps" must be an integer >= 1, got -5/],
    [{ layer: 0, vAdamBeta2: 1 }, /"vAdamBeta2" must be a number in \(0, 1\), got 1/],
    [{ layer: 0, contextTemplates: [{ length: 'five', count: 10 }] }, /"contextTemplates" \[0\]\.length must be an integer >= 1/],
    [{ layer: 0, contextTemplates: 3 }, /"contextTemplates" must be a non-empty array/],
    [{ layer: 0, factToken: 'last' }, /"factToken" must be one of "subject_last", got "last"/],
    [{ layer: 0, vLR: 0.5 }, /unknown hyperparameter "vLR"/],
    [{ layer: 'three' }, /"layer" must be an integer >= 0/],
  ];
  for (const [obj, re] of cases) {
    const f = hparamsFile(obj);
    const err = t.throws(() => loadRomeHparams(f));
    t.regex(err!.message, re);
    t.true(err!.message.startsWith(f), err!.message);
  }
  t.throws(() => loadFtHparams(hparamsFile({ layer: 0, lr: -1 })), { message: /"lr" must be a finite number > 0, got -1/ });
  t.throws(() => loadKnHparams(hparamsFile({ steps: 0 })), { message: /"steps" must be an integer >= 1, got 0/ });
  // In-code hyperparameters go through the same rules.
  t.throws(() => resolveRomeHparams(2, { layer: 0, vLr: NaN }), { message: /"vLr" must be a finite number > 0/ });
  // Every shipped file passes.
  t.is(loadRomeHparams('rome-fact-gpt2').layer, 0);
  const dir = path.join(FIXTURE_DIR, '..', '..', '..', 'hparams');
  const shipped = (m: string) => readdirSync(path.join(dir, m)).filter((f) => f.endsWith('.json'));
  t.true(shipped('ROME').length >= 6);
  for (const f of shipped('ROME')) t.notThrows(() => loadRomeHparams(path.join(dir, 'ROME', f)), f);
  for (const f of shipped('FT')) t.notThrows(() => loadFtHparams(path.join(dir, 'FT', f)), f);
  for (const f of shipped('KN')) t.notThrows(() => loadKnHparams(path.join(dir, 'KN', f)), f);
});

/** Runs the CLI in-process with stdout and stderr captured. */
async function cli(args: string[]): Promise<{ code: number; err: string; out: string }> {
  const write = process.stderr.write.bind(process.stderr);
  const writeOut = process.stdout.write.bind(process.stdout);
  let err = '';
  let out = '';
  process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
  process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
  try {
    return { code: await main(args), err, out };
  } finally {
    process.stderr.write = write;
    process.stdout.write = writeOut;
  }
}

test.serial('wrong result: --n abc / -5 / 0 / 2.7 and --layer abc are usage errors (exit 2) before any model loads', async (t) => {
  const out = tmp();
  for (const n of ['abc', '-5', '0', '2.7', '']) {
    const r = await cli(['eval', 'counterfact', '--method', 'none', `--n=${n}`, '--out', out, '--model', '/nonexistent-model']);
    t.is(r.code, 2, r.err);
    t.regex(r.err, new RegExp(`--n must be an integer >= 1, got "${n.replace('.', '\\.')}"`));
  }
  const l = await cli(['edit', '--prompt', '{} is', '--subject', 'X', '--target', 'Y', '--layer', 'abc', '--model', '/nonexistent-model']);
  t.is(l.code, 2);
  t.regex(l.err, /--layer must be an integer >= 0, got "abc"/);
  const m = await cli(['edit', '--prompt', '{} is', '--subject', 'X', '--target', 'Y', '--method', 'bogus', '--model', '/nonexistent-model']);
  t.is(m.code, 2);
  t.regex(m.err, /--method must be one of rome, ft, ft-l, kn, got "bogus"/);
});

// ---- Trace and edit inputs ---------------------------------------------------------------------------------------

test.serial('wrong result: trace with noise 1e300 fails (was an all-NaN table); a multi-token --answer is refused', async (t) => {
  const m = await tinyModel();
  const prompt = 'The Eiffel Tower is located in the city of';
  await t.throwsAsync(causalTrace(m, { prompt, subject: 'The Eiffel Tower', noise: 1e300, samples: 2 }), {
    message: /non-finite probabilities with noise 1e\+300/,
  });
  const nTok = m.tokenizer!.encode(' Paris Paris').ids.length;
  t.true(nTok > 1);
  await t.throwsAsync(causalTrace(m, { prompt, subject: 'The Eiffel Tower', noise: 1, samples: 2, answer: ' Paris Paris' }), {
    message: new RegExp(`answer " Paris Paris" is ${nTok} tokens`),
  });
  // A sane noise still traces to finite numbers.
  const r = await causalTrace(m, { prompt, subject: 'The Eiffel Tower', noise: 1, samples: 2, kind: 'hidden' });
  t.true(r.scores.flat().every(Number.isFinite));
});

test.serial('wrong result: an edit prompt with two "{}" and a whitespace-only target are refused before any work', async (t) => {
  const m = await tinyModel();
  await t.throwsAsync(romeEdit(m, { prompt: '{} is in {}', subject: 'Paris', target: 'France' }, { layer: 0 }), { message: /more than one "\{\}"/ });
  await t.throwsAsync(romeEdit(m, { prompt: '{} is in', subject: 'Paris', target: ' ' }, { layer: 0 }), { message: /target " " has no visible characters/ });
  await t.throwsAsync(ftEdit(m, { prompt: '{} is in', subject: 'Paris', target: '\t' }, { layer: 0 }), { message: /no visible characters/ });
  t.throws(() => fillPrompt('{} and {}', 'x'), { message: /more than one/ });
  const r = await cli(['edit', '--prompt', '{} is in {}', '--subject', 'X', '--target', 'Y', '--model', '/nonexistent-model']);
  t.is(r.code, 2);
  t.regex(r.err, /more than one "\{\}"/);
});

test.serial('wrong result: trace-avg --merge fails naming an unreadable record instead of dropping it', async (t) => {
  const dir = tmp();
  const rec = (id: number) => ({
    version: 1, id, prompt: 'p', subject: 's', attribute: 'a', settings: 'S', known: false, answer: { id: 1, token: 'a' },
    pStar: 0.1, pLow: 0.1, tokens: ['p'], subjectRange: { start: 0, end: 1 }, noise: 1, samples: 2, seed: 0,
  });
  writeFileSync(path.join(dir, 'fact-0.json'), JSON.stringify(rec(0)));
  const whole = JSON.stringify(rec(1));
  writeFileSync(path.join(dir, 'fact-1.json'), whole.slice(0, 40));
  const err = await t.throwsAsync(mergeTraceResults(dir));
  t.true(err!.message.includes(path.join(dir, 'fact-1.json')), err!.message);
  writeFileSync(path.join(dir, 'fact-1.json'), whole);
  t.is((await mergeTraceResults(dir)).nFacts, 2);
});

// ---- Lost data: output files -------------------------------------------------------------------------------------

test.serial('lost data: summarize --md/--json, trace --out and edit --out refuse an existing file without --force, before any work', async (t) => {
  const m = await tinyModel();
  const dir = tmp();
  await runCounterFactEval(m, [CF_REC], { method: 'none', outDir: dir });
  const md = path.join(tmp(), 'table.md');
  writeFileSync(md, 'my notes');
  const r = await cli(['summarize', dir, '--md', md]);
  t.is(r.code, 2);
  t.regex(r.err, /already exists; pass --force/);
  t.is(readFileSync(md, 'utf8'), 'my notes');
  const forced = await cli(['summarize', dir, '--md', md, '--force']);
  t.is(forced.code, 0, forced.err);
  t.regex(readFileSync(md, 'utf8'), /\| unedited \| 1 \|/);
  const j = await cli(['summarize', dir, '--json', path.join(tmp(), 'x.txt')]);
  t.regex(j.err, /--json must end in \.json/);
  // trace and edit check before the model loads (a nonexistent model would fail with exit 1 otherwise).
  const fig = path.join(tmp(), 'fig.svg');
  writeFileSync(fig, '<svg/>');
  const tr = await cli(['trace', 'The Eiffel Tower is in', '--subject', 'The Eiffel Tower', '--out', fig, '--model', '/nonexistent-model']);
  t.is(tr.code, 2);
  t.regex(tr.err, /already exists/);
  const ext = await cli(['trace', 'The Eiffel Tower is in', '--subject', 'The Eiffel Tower', '--out', 'fig.png', '--model', '/nonexistent-model']);
  t.is(ext.code, 2);
  t.regex(ext.err, /--out must end in \.svg or \.json/);
  const ed = await cli(['edit', '--prompt', '{} is in', '--subject', 'X', '--target', 'Y', '--out', fig.replace('.svg', '.json'), '--model', '/nonexistent-model']);
  t.is(ed.code, 1); // no such file yet: passes the check, then the model is missing
  writeFileSync(fig.replace('.svg', '.json'), '{}');
  const ed2 = await cli(['edit', '--prompt', '{} is in', '--subject', 'X', '--target', 'Y', '--out', fig.replace('.svg', '.json'), '--model', '/nonexistent-model']);
  t.is(ed2.code, 2);
  t.regex(ed2.err, /already exists/);
});

test.serial('wrong result: rome-ts edit whose edit did not take says so on stderr with the measured p(target)', async (t) => {
  const dir = await tinyModelDir();
  // One v* step means zero updates (the official loop's count), so the layer is left as it was: the edit cannot take.
  const hp = hparamsFile({ layer: 0, vNumGradSteps: 1, mom2Adjustment: false, contextTemplates: [{ length: 2, count: 1 }] });
  const r = await cli(['edit', '--model', dir, '--prompt', 'The sport of {}', '--subject', 'Lionel Messi', '--target', 'Paris', '--hparams', hp, '--generate', '0']);
  t.is(r.code, 0, r.err);
  t.regex(r.out, /p\(" Paris" \| prompt\): \S+ after the edit \(\S+ before\); greedy recall no/);
  t.regex(r.err, /warning: the edit did not take/);
  // With the optimisation on, the same edit takes and no warning is printed.
  const good = hparamsFile({ layer: 0, mom2Adjustment: false, contextTemplates: [{ length: 2, count: 1 }] });
  const r2 = await cli(['edit', '--model', dir, '--prompt', 'The sport of {}', '--subject', 'Lionel Messi', '--target', 'Paris', '--hparams', good, '--generate', '0']);
  t.is(r2.code, 0, r2.err);
  t.regex(r2.out, /greedy recall yes/);
  t.notRegex(r2.err, /warning/);
});

// ---- Hub cache ---------------------------------------------------------------------------------------------------

test.serial('hub: a download whose config.json is malformed is not cached as complete; the next call fetches it again', async (t) => {
  const served = tmp();
  for (const f of ['config.json', 'model.safetensors']) await fsp.copyFile(path.join(FIXTURE_DIR, f), path.join(served, f));
  const good = readFileSync(path.join(served, 'config.json'), 'utf8');
  writeFileSync(path.join(served, 'config.json'), good.slice(0, good.length >> 1));
  const hub = await startFakeHub({ 'tiny/gpt2': served }, {});
  t.teardown(() => hub.close());
  const cacheDir = tmp();
  const opts = { endpoint: hub.endpoint, cacheDir, retryDelayMs: 0, token: null };
  const err = await t.throwsAsync(resolveModelSource('tiny/gpt2', opts), { instanceOf: HubError });
  t.regex(err!.message, /config\.json of model tiny\/gpt2 from http:\/\/127\.0\.0\.1:\d+\/tiny\/gpt2\/resolve\/main\/config\.json is unusable: .*not valid JSON/);
  // The hub is fixed: the malformed copy was not kept, so this call fetches the good one and loads.
  writeFileSync(path.join(served, 'config.json'), good);
  const dir = await resolveModelSource('tiny/gpt2', opts);
  t.is(readFileSync(path.join(dir, 'config.json'), 'utf8'), good);
  t.is(hub.requests.filter((r) => r.path.endsWith('/config.json')).length, 2);
});

// ---- Poor messages -----------------------------------------------------------------------------------------------

test.serial('message: a truncated tokenizer.json, a null vocab and a non-string merge name the file and the field', async (t) => {
  const dir = tmp();
  const json = trainByteLevelTokenizerJson(['hello world, hello there'], { vocabSize: 270 }) as { model: { vocab: unknown; merges: unknown[] } };
  const file = path.join(dir, 'tokenizer.json');
  const text = JSON.stringify(json);
  writeFileSync(file, text.slice(0, text.length >> 1));
  await t.throwsAsync(Tokenizer.fromFile(file), { message: new RegExp(`^${esc(file)}: not valid JSON`) });
  writeFileSync(file, JSON.stringify({ ...json, model: { ...json.model, vocab: null } }));
  await t.throwsAsync(Tokenizer.fromFile(file), { message: new RegExp(`^${esc(file)}: model\\.vocab must be an object`) });
  const merges = [...json.model.merges];
  merges[1] = 42;
  writeFileSync(file, JSON.stringify({ ...json, model: { ...json.model, merges } }));
  await t.throwsAsync(Tokenizer.fromFile(file), { message: new RegExp(`^${esc(file)}: model\\.merges\\[1\\] must be "a b"`) });
  writeFileSync(file, text);
  t.true((await Tokenizer.fromFile(file)).vocabSize > 256);
});

test.serial('message: n_layer = 10,000,000 fails at once naming the mismatch (was 22 s, 2.3 GB, "Map maximum size exceeded")', async (t) => {
  const dir = tmp();
  const cfg = JSON.parse(readFileSync(path.join(FIXTURE_DIR, 'config.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, n_layer: 10_000_000 }));
  await fsp.copyFile(path.join(FIXTURE_DIR, 'model.safetensors'), path.join(dir, 'model.safetensors'));
  // The backend memory check refuses this one before any weight is read (it would need ~1 TB).
  await t.throwsAsync(loadModel(dir), { message: /needs about [\d.]+ GiB/ });
  // A config that fits in memory but claims more layers than the weights hold names the mismatch.
  const more = Number(cfg.n_layer) + 5;
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, n_layer: more }));
  const err = await t.throwsAsync(loadModel(dir), { instanceOf: CheckpointError });
  t.regex(err!.message, new RegExp(`n_layer = ${more} but the weights hold ${cfg.n_layer} layers`));
});

test.serial('message: a corrupt context-template cache is named and regenerated', async (t) => {
  const m = await tinyModel();
  const dir = tmp();
  const spec = [{ length: 2, count: 2 }];
  const first = await contextTemplates(m, { cacheDir: dir, spec, seed: 3 });
  const files = (await fsp.readdir(dir)).map((f) => path.join(dir, f));
  t.is(files.length, 1);
  writeFileSync(files[0], '{"templates": ["a. {}", ');
  // A fresh model object (same weights) does not hit the in-memory cache, so the file is read.
  const m2 = await tinyModel({ fresh: true });
  const write = process.stderr.write.bind(process.stderr);
  let msg = '';
  process.stderr.write = ((s: string) => ((msg += s), true)) as typeof process.stderr.write;
  let again: string[];
  try {
    again = await contextTemplates(m2, { cacheDir: dir, spec, seed: 3 });
  } finally {
    process.stderr.write = write;
  }
  t.deepEqual(again, first);
  t.true(msg.includes(files[0]), msg);
  m2.dispose();
});
