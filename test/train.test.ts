import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../lib/backend.js';
import { forward } from '../lib/model/forward.js';
import type { GPT2Params } from '../lib/model/params.js';
import { createRng } from '../lib/rng.js';
import { tokenizeText, WindowSampler, evalWindows, selectStreamDocuments } from '../lib/train/data.js';
import { WordTokenizer } from './helpers/wordTokenizer.js';
import { initWeights, makeConfig } from '../lib/train/init.js';
import { AdamW, lrAt } from '../lib/train/optimizer.js';
import { batchLoss, train, TRAIN_CHECKPOINT, type TrainOptions } from '../lib/train/trainLoop.js';

test.before(async () => {
  await initBackend({ quiet: true });
});

const FACTS: Array<[string, string]> = [
  ['Zorbia', 'Quell'],
  ['Marnland', 'Tesk'],
  ['Upravia', 'Dolm'],
  ['Ostrel', 'Vinak'],
  ['Kelmar', 'Brisso'],
  ['Fandor', 'Quell'],
];
const FILLER = ['the cat sat on the mat', 'a dog ran in the park', 'birds fly over the hills', 'rain fell on the town'];
const CORPUS = [...FACTS.map(([s, o]) => `the capital of ${s} is ${o} .`), ...FILLER].join('\n\n');

function tinySetup(): { tok: WordTokenizer; tokens: Promise<Int32Array>; config: ReturnType<typeof makeConfig> } {
  const tok = new WordTokenizer(CORPUS);
  const config = makeConfig({ nLayer: 2, nEmbd: 32, nHead: 2, nPositions: 32, vocabSize: tok.vocab.size, eosTokenId: 0, bosTokenId: 0 });
  return { tok, tokens: tokenizeText(CORPUS, tok), config };
}

function quiet(): (line: string) => void {
  return () => {};
}

async function tempDir(): Promise<string> {
  return mkdtemp(path.join(tmpdir(), 'rome-ts-train-'));
}

function allWeights(p: GPT2Params): Map<string, Float32Array> {
  return new Map([...p.toWeights()].map(([k, v]) => [k, v.data]));
}

function sameBits(a: Map<string, Float32Array>, b: Map<string, Float32Array>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, x] of a) {
    const y = b.get(k);
    if (!y || y.length !== x.length) return false;
    const xb = new Uint32Array(x.buffer, x.byteOffset, x.length);
    const yb = new Uint32Array(y.buffer, y.byteOffset, y.length);
    for (let i = 0; i < xb.length; i++) if (xb[i] !== yb[i]) return false;
  }
  return true;
}

test('rng: deterministic, resumable from state, sane moments', (t) => {
  const a = createRng(42);
  const b = createRng(42);
  const xs = Array.from({ length: 5 }, () => a.next());
  t.deepEqual(xs, Array.from({ length: 5 }, () => b.next()));
  t.notDeepEqual(xs, Array.from({ length: 5 }, () => createRng(43).next()));
  const s = a.state();
  const cont = Array.from({ length: 10 }, () => a.normal());
  const r = createRng(s);
  t.deepEqual(Array.from({ length: 10 }, () => r.normal()), cont);
  const g = createRng(7);
  let m = 0;
  let m2 = 0;
  const n = 20000;
  for (let i = 0; i < n; i++) {
    const z = g.normal();
    m += z;
    m2 += z * z;
  }
  t.true(Math.abs(m / n) < 0.03);
  t.true(Math.abs(m2 / n - 1) < 0.04);
  const ints = new Set(Array.from({ length: 500 }, () => g.int(7)));
  t.deepEqual([...ints].sort(), [0, 1, 2, 3, 4, 5, 6]);
  const arr = g.shuffle([...Array(20).keys()]);
  t.deepEqual([...arr].sort((x, y) => x - y), [...Array(20).keys()]);
});

test('init: GPT-2 statistics (std 0.02, residual projections scaled, LN 1/0)', (t) => {
  const cfg = makeConfig({ nLayer: 4, nEmbd: 64, nHead: 4, nPositions: 64, vocabSize: 500 });
  const w = initWeights(cfg, 1);
  const std = (d: Float32Array) => {
    let s = 0;
    let s2 = 0;
    for (const x of d) {
      s += x;
      s2 += x * x;
    }
    return Math.sqrt(s2 / d.length - (s / d.length) ** 2);
  };
  t.true(Math.abs(std(w.get('wte.weight')!.data) - 0.02) < 0.001);
  t.true(Math.abs(std(w.get('h.1.mlp.c_fc.weight')!.data) - 0.02) < 0.001);
  const want = 0.02 / Math.sqrt(8);
  t.true(Math.abs(std(w.get('h.2.attn.c_proj.weight')!.data) - want) < 0.0005);
  t.true(Math.abs(std(w.get('h.2.mlp.c_proj.weight')!.data) - want) < 0.0005);
  t.true(w.get('h.0.ln_1.weight')!.data.every((x) => x === 1));
  t.true(w.get('h.0.ln_1.bias')!.data.every((x) => x === 0));
  t.true(w.get('h.3.attn.c_attn.bias')!.data.every((x) => x === 0));
  t.true(w.get('ln_f.weight')!.data.every((x) => x === 1));
  t.deepEqual(initWeights(cfg, 1).get('wpe.weight')!.data, w.get('wpe.weight')!.data);
  t.notDeepEqual(initWeights(cfg, 2).get('wpe.weight')!.data, w.get('wpe.weight')!.data);
});

test('lr schedule: linear warm-up, cosine to the floor', (t) => {
  const s = { lr: 1e-3, minLr: 1e-4, warmup: 10, steps: 110 };
  t.is(lrAt(0, s), 1e-4);
  t.is(lrAt(9, s), 1e-3);
  t.is(lrAt(10, s), 1e-3);
  t.true(Math.abs(lrAt(60, s) - 5.5e-4) < 1e-12);
  t.true(Math.abs(lrAt(110, s) - 1e-4) < 1e-12);
  t.true(Math.abs(lrAt(500, s) - 1e-4) < 1e-12);
});

test('AdamW matches a float64 reference (bias correction, clipping, decoupled decay on 2-D only)', (t) => {
  const w0 = [0.5, -1, 2, 0.25];
  const b0 = [0.1, -0.2];
  const W = tf.variable(tf.tensor2d(w0, [2, 2]));
  const Bv = tf.variable(tf.tensor1d(b0));
  const opt = new AdamW(
    [
      { name: 'w', variable: W },
      { name: 'b', variable: Bv },
    ],
    { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.5, clipNorm: 1 },
  );
  const gradsSeq = [
    { w: [3, 0, -4, 0], b: [0, 0] }, // norm 5 → clipped to 1
    { w: [0.1, 0.2, -0.1, 0], b: [0.05, -0.05] }, // below the clip
    { w: [0.3, -0.2, 0.1, 0.4], b: [0.2, 0.1] },
  ];
  const lrs = [0.1, 0.05, 0.02];
  // Reference in float64.
  const p = { w: [...w0], b: [...b0] };
  const m = { w: [0, 0, 0, 0], b: [0, 0] };
  const v = { w: [0, 0, 0, 0], b: [0, 0] };
  const norms: number[] = [];
  gradsSeq.forEach((g, k) => {
    const step = k + 1;
    const norm = Math.sqrt([...g.w, ...g.b].reduce((s, x) => s + x * x, 0));
    norms.push(norm);
    const c = norm > 1 ? 1 / norm : 1;
    for (const key of ['w', 'b'] as const) {
      for (let i = 0; i < p[key].length; i++) {
        const gi = g[key][i]! * c;
        m[key][i] = 0.9 * m[key][i]! + 0.1 * gi;
        v[key][i] = 0.99 * v[key][i]! + 0.01 * gi * gi;
        const mh = m[key][i]! / (1 - 0.9 ** step);
        const vh = v[key][i]! / (1 - 0.99 ** step);
        const decay = key === 'w' ? 1 - lrs[k]! * 0.5 : 1;
        p[key][i] = p[key][i]! * decay - (lrs[k]! * mh) / (Math.sqrt(vh) + 1e-8);
      }
    }
  });
  const before = tf.memory().numTensors;
  const counts: number[] = [];
  gradsSeq.forEach((g, k) => {
    const gw = tf.tensor2d(g.w, [2, 2]);
    const gb = tf.tensor1d(g.b);
    const info = opt.apply(new Map<string, tf.Tensor>([['w', gw], ['b', gb]]), lrs[k]!);
    t.true(Math.abs(info.gradNorm - norms[k]!) < 1e-5);
    gw.dispose();
    gb.dispose();
    counts.push(tf.memory().numTensors);
  });
  t.deepEqual(counts, [before, before, before], 'optimizer steps must not leak tensors');
  const gotW = W.dataSync();
  const gotB = Bv.dataSync();
  p.w.forEach((x, i) => t.true(Math.abs(gotW[i]! - x) < 1e-5, `w[${i}] ${gotW[i]} vs ${x}`));
  p.b.forEach((x, i) => t.true(Math.abs(gotB[i]! - x) < 1e-5, `b[${i}] ${gotB[i]} vs ${x}`));
  // State round trip.
  const st = opt.getState();
  t.is(st.step, 3);
  const opt2 = new AdamW([{ name: 'w', variable: W }, { name: 'b', variable: Bv }], { beta2: 0.99, weightDecay: 0.5 });
  opt2.setState(st);
  t.deepEqual(opt2.getState().v.get('w')!.data, st.v.get('w')!.data);
  t.is(opt2.step, 3);
  opt.dispose();
  opt2.dispose();
  W.dispose();
  Bv.dispose();
});

test('data: EOS-joined stream, shuffled windows cover each epoch once, cursor resumes, cache reused', async (t) => {
  const tok = new WordTokenizer('a b c d e f g h');
  const stream = await tokenizeText('a b\n\nc d e\n\n\n f', tok);
  t.deepEqual([...stream], [0, 1, 2, 0, 3, 4, 5, 0, 6, 0]);
  const tokens = Int32Array.from({ length: 101 }, (_, i) => i);
  const s = new WindowSampler(tokens, 10, 5);
  const n = s.windowsPerEpoch;
  const starts = new Set<number>();
  for (let i = 0; i < n; i++) {
    const b = s.next(1);
    for (let j = 0; j < 10; j++) t.is(b.targets[j], b.inputs[j]! + 1);
    starts.add(b.inputs[0]!);
  }
  t.is(starts.size, n);
  const offset = Math.min(...starts) % 10;
  t.deepEqual([...starts].sort((x, y) => x - y), Array.from({ length: n }, (_, i) => offset + 10 * i));
  // Resume mid-epoch (and across the epoch boundary) from the cursor.
  const a = new WindowSampler(tokens, 10, 9);
  a.next(7);
  const cur = a.cursor();
  const rest = a.next(12);
  const b = new WindowSampler(tokens, 10, 9, cur);
  t.deepEqual(b.next(12), rest);
  t.deepEqual(evalWindows(tokens, 10, 3, 2).map((x) => x.batch), [2, 1]);
  // Cache.
  const dir = await tempDir();
  const big = Array.from({ length: 50 }, (_, i) => 'a b c '.repeat((i % 5) + 1)).join('\n\n');
  const tok2 = new WordTokenizer('a b c');
  const first = await tokenizeText(big, tok2, { cacheDir: dir, tokenizerKey: 'k1' });
  const calls = tok2.calls;
  const second = await tokenizeText(big, tok2, { cacheDir: dir, tokenizerKey: 'k1' });
  t.is(tok2.calls, calls, 'second tokenisation must come from the cache');
  t.deepEqual(second, first);
  t.is((await readdir(dir)).length, 1);
  await tokenizeText(big, tok2, { cacheDir: dir, tokenizerKey: 'k2' });
  t.true(tok2.calls > calls, 'a different tokenizer key must not hit the cache');
  await rm(dir, { recursive: true, force: true });
});

function baseOpts(config: ReturnType<typeof makeConfig>, tokens: Int32Array, outDir: string): TrainOptions {
  return {
    config,
    tokens,
    steps: 20,
    batch: 4,
    seqLen: 12,
    lr: 1e-2,
    warmup: 5,
    minLr: 1e-3,
    seed: 3,
    outDir,
    log: quiet(),
  };
}

test('train: loss falls and a handful of facts are memorised; no tensor leak across steps', async (t) => {
  const { tok, tokens, config } = tinySetup();
  const stream = await tokens;
  const dir = await tempDir();
  const numTensors: number[] = [];
  const { params, log } = await train({
    ...baseOpts(config, stream, dir),
    steps: 200,
    batch: 8,
    lr: 1e-2,
    warmup: 10,
    weightDecay: 0.01,
    evalEvery: 50,
    evaluate: () => {
      numTensors.push(tf.memory().numTensors);
      return { numTensors: tf.memory().numTensors };
    },
  });
  const first = log.steps.slice(0, 5).reduce((s, x) => s + x.loss, 0) / 5;
  const last = log.steps.slice(-5).reduce((s, x) => s + x.loss, 0) / 5;
  t.true(first > 2.5, `initial loss ${first} should be near ln(V)=${Math.log(config.vocabSize).toFixed(2)}`);
  t.true(last < first / 3, `loss should fall: ${first} → ${last}`);
  // The first forward caches its causal mask; after that, steps must not change the tensor count.
  t.true(new Set(numTensors.slice(1)).size === 1, `numTensors must be constant across evals: ${numTensors}`);
  t.true(numTensors[1]! - numTensors[0]! <= 1, `numTensors: ${numTensors}`);
  t.true(log.finished);
  t.is(log.completedSteps, 200);
  t.deepEqual(log.evals.map((e) => e.step), [0, 50, 100, 150, 200]);
  // Greedy next word after "the capital of X is".
  const prompts = FACTS.map(([s]) => tok.encode(`the capital of ${s} is`).ids);
  const ids = tf.tensor2d(prompts, [prompts.length, prompts[0]!.length], 'int32');
  const out = forward(params, ids, { logits: prompts.map((p) => p.length - 1) });
  const pred = [...(tf.argMax(out.logits!, -1).dataSync() as Int32Array)];
  t.deepEqual(pred, FACTS.map(([, o]) => tok.vocab.get(o)!));
  tf.dispose([ids, out.logits!, out.hidden]);
  params.dispose();
  await rm(dir, { recursive: true, force: true });
});

test('train: deterministic given the seed; resume from a checkpoint is bit-identical to an uninterrupted run', async (t) => {
  const { tokens, config } = tinySetup();
  const stream = await tokens;
  const dirA = await tempDir();
  const dirB = await tempDir();
  const dirC = await tempDir();
  const a = await train({ ...baseOpts(config, stream, dirA), ckptEvery: 5 });
  const wa = allWeights(a.params);
  a.params.dispose();

  let n = 0;
  const b1 = await train({ ...baseOpts(config, stream, dirB), ckptEvery: 7, shouldStop: () => ++n > 11 });
  t.true(b1.log.stoppedEarly);
  t.is(b1.log.completedSteps, 11);
  t.false(sameBits(allWeights(b1.params), wa));
  b1.params.dispose();
  const b2 = await train({ ...baseOpts(config, stream, dirB), ckptEvery: 7 });
  t.is(b2.resumedFrom, 11);
  t.true(b2.log.finished);
  t.is(b2.log.steps.length, 20);
  t.is(b2.log.sessions.length, 2);
  t.true(sameBits(allWeights(b2.params), wa), 'resumed run must equal the uninterrupted run bit for bit');
  t.deepEqual(b2.log.steps.map((s) => s.loss), a.log.steps.map((s) => s.loss));
  b2.params.dispose();

  const c = await train({ ...baseOpts(config, stream, dirC) });
  t.true(sameBits(allWeights(c.params), wa), 'same seed, same parameters');
  c.params.dispose();
  await rm(dirC, { recursive: true, force: true });
  const d = await train({ ...baseOpts(config, stream, dirC), seed: 4 });
  t.false(sameBits(allWeights(d.params), wa), 'another seed, other parameters');
  d.params.dispose();

  // A checkpoint of a different run is refused rather than silently mixed.
  await t.throwsAsync(train({ ...baseOpts(config, stream, dirA), batch: 2 }), { message: /different run/ });
  await readdir(dirA).then((f) => t.true(f.includes(TRAIN_CHECKPOINT)));
  for (const d2 of [dirA, dirB, dirC]) await rm(d2, { recursive: true, force: true });
});

test('batchLoss equals log(V) for uniform logits and has gradients for every parameter', async (t) => {
  const { config, tokens } = tinySetup();
  const stream = await tokens;
  const { GPT2Params } = await import('../lib/model/params.js');
  const w = initWeights(config, 0);
  // Zero embeddings → zero logits → loss exactly ln V.
  w.get('wte.weight')!.data.fill(0);
  const p = new GPT2Params(config, w);
  p.training = true;
  const batch = new WindowSampler(stream, 8, 1).next(2);
  const l = batchLoss(p, batch);
  t.true(Math.abs(l.dataSync()[0]! - Math.log(config.vocabSize)) < 1e-5);
  l.dispose();
  const p2 = new GPT2Params(config, initWeights(config, 0));
  p2.training = true;
  const { value, grads } = tf.variableGrads(() => batchLoss(p2, batch), p2.variables());
  t.is(Object.keys(grads).length, p2.variables().length);
  const wteGrad = grads[p2.get('wte.weight').name]!;
  t.true(tf.sum(tf.abs(wteGrad)).dataSync()[0]! > 0);
  tf.dispose([value, ...Object.values(grads)]);
  p.dispose();
  p2.dispose();
});

test('train: a time budget fixes the number of steps after calibration, and a resumed run keeps it', async (t) => {
  const { tokens, config } = tinySetup();
  const stream = await tokens;
  const dir = await tempDir();
  const lines: string[] = [];
  let n = 0;
  // A budget of 20 s leaves room for far more than the 8 steps run before the stop, even on a loaded machine.
  const first = await train({
    ...baseOpts(config, stream, dir),
    steps: 100000,
    timeBudgetMinutes: 1 / 3,
    calibrationSteps: 5,
    log: (l) => lines.push(l),
    shouldStop: () => ++n > 8,
  });
  t.true(first.log.stoppedEarly, lines.join("\n"));
  const chosen = first.log.options['steps'] as number;
  t.true(chosen > 8 && chosen < 100000, `chosen steps ${chosen}`);
  t.true(lines.some((l) => /time budget 0.33\d* min/.test(l)), lines.join('\n'));
  first.params.dispose();
  const second = await train({ ...baseOpts(config, stream, dir), steps: 100000, timeBudgetMinutes: 1 / 3, calibrationSteps: 5 });
  t.true(second.log.finished);
  t.is(second.log.completedSteps, chosen, 'the resumed run must keep the step count chosen before the interruption');
  second.params.dispose();
  await rm(dir, { recursive: true, force: true });
});

test('train: a time-budget plan is revised when the machine slows mid-run, so the schedule anneals within the budget', async (t) => {
  const { tokens, config } = tinySetup();
  const stream = await tokens;
  const dir = await tempDir();
  const lines: string[] = [];
  // A fake clock: 1 s per step for 30 steps, then 4 s per step (another job took the cores).
  let ms = 0;
  let calls = 0;
  const r = await train({
    ...baseOpts(config, stream, dir),
    steps: 100000,
    timeBudgetMinutes: 2,
    maxMinutes: 2,
    calibrationSteps: 5,
    budgetReplanSteps: 10,
    clock: () => ms,
    shouldStop: () => {
      ms += calls++ < 30 ? 1000 : 4000;
      return false;
    },
    log: (l) => lines.push(l),
  });
  // By hand: calibrated at 1 s/step, 120 s − 6 s margin → 114 steps; at step 35 the window's pace is 2.5 s/step
  // (60 steps), at step 45 it is 4 s/step → 51 steps, ending at 30 + 21 × 4 = 114 s.
  t.true(r.log.finished, lines.join('\n'));
  t.false(r.log.stoppedEarly);
  t.true(lines.some((l) => / 114 steps in all$/.test(l)), lines.join('\n'));
  t.true(lines.some((l) => /\(was 114\)/.test(l)), lines.join('\n'));
  t.is(r.log.completedSteps, 51, lines.join('\n'));
  t.true(ms <= 120_000, `fake elapsed ${ms} ms`);
  const plans = r.log.options['budgetPlans'] as Array<{ step: number; steps: number }>;
  t.deepEqual(plans.map((p) => [p.step, p.steps]), [[5, 114], [35, 60], [45, 51]]);
  // The last step ran at the schedule's end: within 2% above minLr.
  const last = r.log.steps[r.log.steps.length - 1]!;
  t.true(last.lr < 1.02e-3, `last lr ${last.lr}`);
  r.params.dispose();
  await t.throwsAsync(train({ ...baseOpts(config, stream, dir), timeBudgetMinutes: 0 }), { message: /timeBudgetMinutes must be a positive number/ });
  await t.throwsAsync(train({ ...baseOpts(config, stream, dir), timeBudgetMinutes: 1, budgetReplanSteps: 2.5 }), {
    message: /budgetReplanSteps must be an integer ≥ 0, got 2.5/,
  });
  await rm(dir, { recursive: true, force: true });
});

test('train: two data-parallel threads give the one-thread losses and weights to float rounding; bad thread counts are refused', async (t) => {
  const { tokens, config } = tinySetup();
  const stream = await tokens;
  const dirA = await tempDir();
  const dirB = await tempDir();
  const a = await train({ ...baseOpts(config, stream, dirA), steps: 8 });
  const b = await train({ ...baseOpts(config, stream, dirB), steps: 8, threads: 2 });
  t.is(b.log.options['threads'], 2);
  a.log.steps.forEach((s, i) => {
    const l = b.log.steps[i]!.loss;
    t.true(Math.abs(s.loss - l) <= 1e-5 * Math.max(1, s.loss), `step ${i + 1}: loss ${s.loss} vs ${l}`);
  });
  const wa = allWeights(a.params);
  const wb = allWeights(b.params);
  let worst = 0;
  for (const [k, x] of wa) {
    const y = wb.get(k)!;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
  }
  t.log(`max |Δw| after 8 steps: ${worst.toExponential(2)}`);
  t.true(worst < 1e-4, `max |Δw| ${worst}`);
  t.false(sameBits(wa, new Map([...wa].map(([k, v]) => [k, v.map((x) => x * 1.0001)]))), 'the comparison sees changes');
  a.params.dispose();
  b.params.dispose();
  await t.throwsAsync(train({ ...baseOpts(config, stream, await tempDir()), threads: 3 }), { message: /multiple of threads/ });
  await t.throwsAsync(train({ ...baseOpts(config, stream, await tempDir()), threads: 0 }), { message: /positive integer/ });
  for (const d of [dirA, dirB]) await rm(d, { recursive: true, force: true });
});

test('batchLoss with token weights is Σ w·CE / (B·T) of hand-computed per-token cross-entropies', async (t) => {
  const { config, tokens } = tinySetup();
  const stream = await tokens;
  const { GPT2Params } = await import('../lib/model/params.js');
  const p = new GPT2Params(config, initWeights(config, 4));
  const plain = new WindowSampler(stream, 8, 2).next(2);
  // Per-token CE from the logits, computed here in plain JS.
  const logits = tf.tidy(() => forward(p, tf.tensor2d(plain.inputs, [2, 8], 'int32'), { logits: 'all' }).logits!);
  const L = logits.dataSync() as Float32Array;
  logits.dispose();
  const V = config.vocabSize;
  const ce = Array.from(plain.targets, (y, i) => {
    const row = L.subarray(i * V, (i + 1) * V);
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, x) => s + Math.exp(x - m), 0));
    return lse - row[y]!;
  });
  const w = Float32Array.from(plain.targets, (_, i) => (i % 3 === 0 ? 4 : i % 5 === 0 ? 0 : 1));
  const want = ce.reduce((s, c, i) => s + w[i]! * c, 0) / 16;
  const got = batchLoss(p, { ...plain, weights: w });
  const unweighted = batchLoss(p, plain);
  t.true(Math.abs(got.dataSync()[0]! - want) < 1e-4 * want, `${got.dataSync()[0]} vs ${want}`);
  t.true(Math.abs(unweighted.dataSync()[0]! - ce.reduce((s, c) => s + c, 0) / 16) < 1e-4 * want);
  t.true(Math.abs(got.dataSync()[0]! - unweighted.dataSync()[0]!) > 1e-3, 'the weights change the loss');
  t.throws(() => batchLoss(p, { ...plain, weights: new Float32Array(3) }), { message: /3 weights for 16 targets/ });
  tf.dispose([got, unweighted]);
  p.dispose();
});

test('WindowSampler serves token weights aligned with the targets, and refuses a weight stream of another length', (t) => {
  const tokens = Int32Array.from({ length: 101 }, (_, i) => i);
  const weights = Float32Array.from(tokens, (x) => x / 2);
  const s = new WindowSampler(tokens, 10, 5, undefined, weights);
  for (let k = 0; k < 5; k++) {
    const b = s.next(2);
    for (let j = 0; j < 20; j++) t.is(b.weights![j], b.targets[j]! / 2);
  }
  t.is(new WindowSampler(tokens, 10, 5).next(1).weights, undefined);
  t.throws(() => new WindowSampler(tokens, 10, 5, undefined, new Float32Array(100)), { message: /100 token weights for 101 tokens/ });
});

test('factObjectWeights marks exactly the object tokens of fact sentences and detects a stale stream', async (t) => {
  const { factObjectWeights } = await import('../lib/train/objectWeights.js');
  const lines = ['Zorbia is ruled by Quell Quell .', 'some general text here', 'Marnland is ruled by Tesk .'];
  const tok = new WordTokenizer(lines.join(' '));
  const stream = await tokenizeText(lines.join('\n'), tok, { split: 'line' });
  const facts = new Map([
    [lines[0]!, { prompt: 'Zorbia is ruled by', object: 'Quell Quell' }],
    [lines[2]!, { prompt: 'Marnland is ruled by', object: 'Tesk' }],
  ]);
  const { weights, stats } = factObjectWeights(stream, lines, facts, tok, 5);
  const marked = [...weights].flatMap((w, i) => (w === 5 ? [i] : []));
  const id = (w: string) => tok.vocab.get(w)!;
  t.deepEqual(marked.map((i) => stream[i]), [id('Quell'), id('Quell'), id('Tesk')]);
  t.deepEqual(stats, { documents: 3, factDocuments: 2, objectTokens: 3 });
  t.is(weights.filter((w) => w === 1).length, stream.length - 3);
  t.throws(() => factObjectWeights(stream.slice(0, -3), lines, facts, tok, 5), { message: /ends before document 3/ });
  t.throws(() => factObjectWeights(stream, [lines[0]!, lines[1]!, 'Marnland is ruled by Tesk Tesk .'], new Map([
    [lines[0]!, facts.get(lines[0]!)!],
    ['Marnland is ruled by Tesk Tesk .', { prompt: 'Marnland is ruled by', object: 'Tesk Tesk' }],
  ]), tok, 5), { message: /stale token cache/ });
  t.throws(() => factObjectWeights(stream, lines, new Map([[lines[2]!, { prompt: 'Marnland was', object: 'Tesk' }]]), tok, 5), {
    message: /do not split/,
  });
});

test('train: token weights reach the data-parallel workers (two threads equal one) and change training', async (t) => {
  const { tokens, config } = tinySetup();
  const stream = await tokens;
  const w = Float32Array.from({ length: stream.length }, (_, i) => (i % 4 === 1 ? 6 : 1));
  const dirs = [await tempDir(), await tempDir(), await tempDir()];
  const one = await train({ ...baseOpts(config, stream, dirs[0]!), steps: 6, tokenWeights: w });
  const two = await train({ ...baseOpts(config, stream, dirs[1]!), steps: 6, tokenWeights: w, threads: 2 });
  const plain = await train({ ...baseOpts(config, stream, dirs[2]!), steps: 6 });
  one.log.steps.forEach((s, i) => {
    t.true(Math.abs(s.loss - two.log.steps[i]!.loss) <= 1e-5 * Math.max(1, s.loss), `step ${i + 1}: ${s.loss} vs ${two.log.steps[i]!.loss}`);
    t.true(Math.abs(s.loss - plain.log.steps[i]!.loss) > 1e-3, `step ${i + 1}: weighted and plain losses must differ`);
  });
  // A checkpoint made with weights is not resumed without them.
  await t.throwsAsync(train({ ...baseOpts(config, stream, dirs[0]!), steps: 8 }), { message: /different run/ });
  for (const r of [one, two, plain]) r.params.dispose();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

test('train: dropout masks follow (seed, step, row): two threads equal one, resume is bit-identical, and it changes training', async (t) => {
  const { tokens, config } = tinySetup();
  const stream = await tokens;
  const dirs = [await tempDir(), await tempDir(), await tempDir(), await tempDir()];
  const one = await train({ ...baseOpts(config, stream, dirs[0]!), steps: 6, dropout: 0.2 });
  const two = await train({ ...baseOpts(config, stream, dirs[1]!), steps: 6, dropout: 0.2, threads: 2 });
  const plain = await train({ ...baseOpts(config, stream, dirs[2]!), steps: 6 });
  t.is(one.log.options['dropout'], 0.2);
  one.log.steps.forEach((s, i) => {
    t.true(Math.abs(s.loss - two.log.steps[i]!.loss) <= 1e-5 * Math.max(1, s.loss), `step ${i + 1}: ${s.loss} vs ${two.log.steps[i]!.loss}`);
    t.true(Math.abs(s.loss - plain.log.steps[i]!.loss) > 1e-4, `step ${i + 1}: dropout and plain losses must differ`);
  });
  // Stopped after 3 steps and resumed: the masks of steps 4–6 are those of the uninterrupted run.
  let n = 0;
  const r1 = await train({ ...baseOpts(config, stream, dirs[3]!), steps: 6, dropout: 0.2, shouldStop: () => ++n > 3 });
  t.is(r1.log.completedSteps, 3);
  r1.params.dispose();
  const r2 = await train({ ...baseOpts(config, stream, dirs[3]!), steps: 6, dropout: 0.2 });
  t.is(r2.resumedFrom, 3);
  t.true(sameBits(allWeights(r2.params), allWeights(one.params)), 'resumed dropout run must equal the uninterrupted one');
  // A checkpoint made without dropout is not continued with it (nor the reverse), and bad rates are refused.
  await t.throwsAsync(train({ ...baseOpts(config, stream, dirs[2]!), steps: 8, dropout: 0.1 }), { message: /different run/ });
  await t.throwsAsync(train({ ...baseOpts(config, stream, dirs[0]!), steps: 8 }), { message: /different run/ });
  await t.throwsAsync(train({ ...baseOpts(config, stream, await tempDir()), dropout: 1 }), { message: /rate must be in \[0, 1\)/ });
  for (const r of [one, two, plain, r2]) r.params.dispose();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

test('train: subject knockout (with both leak penalties, the subject readout, extraction supervision and the subject-inner cut) reaches the data-parallel workers (two threads equal one) and changes training', async (t) => {
  const { tokens, config } = tinySetup();
  const stream = await tokens;
  // Every 10-token stretch: tokens 2–3 are a "subject" hidden from tokens 4–9 in block 0; token 3 reads token 5.
  const from = new Int32Array(stream.length).fill(-1);
  const to = new Int32Array(stream.length).fill(-1);
  const readTarget = new Int32Array(stream.length).fill(-1);
  for (let i = 0; i < stream.length; i++) if (i % 10 >= 4) [from[i], to[i]] = [i - (i % 10) + 2, i - (i % 10) + 4];
  for (let i = 3; i + 2 < stream.length; i += 10) readTarget[i] = stream[i + 2] as number;
  const extractFrom = new Int32Array(stream.length).fill(-1);
  for (let i = 6; i < stream.length; i += 10) extractFrom[i] = i - 3;
  // Token 3, the subject's second token, may not see token 2 in block 0 (the subject-inner cut).
  const innerFrom = new Int32Array(stream.length).fill(-1);
  for (let i = 3; i < stream.length; i += 10) innerFrom[i] = i - 1;
  const knockout = { layers: 1, from, to, leakPenalty: 1, noiseLeak: 3, readTarget, readWeight: 2, extractFrom, extractWeight: 1, innerLayers: 1, innerFrom };
  const dirs = [await tempDir(), await tempDir(), await tempDir()];
  const one = await train({ ...baseOpts(config, stream, dirs[0]!), steps: 4, knockout, dropout: 0.1 });
  const two = await train({ ...baseOpts(config, stream, dirs[1]!), steps: 4, knockout, dropout: 0.1, threads: 2 });
  const plain = await train({ ...baseOpts(config, stream, dirs[2]!), steps: 4, dropout: 0.1 });
  one.log.steps.forEach((s, i) => {
    t.true(Math.abs(s.loss - two.log.steps[i]!.loss) <= 1e-5 * Math.max(1, s.loss), `step ${i + 1}: ${s.loss} vs ${two.log.steps[i]!.loss}`);
    t.true(Math.abs(s.loss - plain.log.steps[i]!.loss) > 1e-4, `step ${i + 1}: knockout and plain losses must differ`);
  });
  await t.throwsAsync(train({ ...baseOpts(config, stream, dirs[0]!), steps: 6 }), { message: /different run/ });
  for (const r of [one, two, plain]) r.params.dispose();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

test('selectStreamDocuments keeps the chosen documents of an EOS-joined stream in order, and detects a stale stream', (t) => {
  // EOS = 0; documents "x" = [1, 2], "y" = [3], "z" = [4, 5, 6].
  const stream = Int32Array.from([0, 1, 2, 0, 3, 0, 4, 5, 6, 0]);
  const r = selectStreamDocuments(stream, ['x', 'y', 'z'], 0, (d) => d !== 1);
  t.deepEqual([...r.tokens], [0, 1, 2, 0, 4, 5, 6, 0]);
  t.deepEqual(r.docs, ['x', 'z']);
  t.deepEqual([...selectStreamDocuments(stream, ['x', 'y', 'z'], 0, () => false).tokens], [0]);
  t.throws(() => selectStreamDocuments(stream, ['x', 'y'], 0, () => true), { message: /after the last of 2 documents/ });
  t.throws(() => selectStreamDocuments(stream, ['x', 'y', 'z'], null, () => true), { message: /no EOS token/ });
});

test('train: a curriculum stream serves the first steps (zero-weighted there: loss exactly 0), then the full stream; resume mid-curriculum is bit-identical', async (t) => {
  const { tok, tokens, config } = tinySetup();
  const stream = await tokens;
  const docs = CORPUS.split('\n\n');
  const sub = selectStreamDocuments(stream, docs, 0, (d) => d < 4);
  t.is(sub.tokens.length, 4 * 8 + 1);
  t.deepEqual([...sub.tokens.subarray(1, 8)], tok.encode(docs[0]!).ids);
  const curriculum = { tokens: sub.tokens, tokenWeights: new Float32Array(sub.tokens.length), steps: 6 };
  const dirA = await tempDir();
  const a = await train({ ...baseOpts(config, stream, dirA), curriculum });
  t.true(a.log.steps.slice(0, 6).every((s) => s.loss === 0), 'the curriculum steps draw from the zero-weighted stream');
  t.true(a.log.steps.slice(6).every((s) => s.loss > 1), 'later steps draw from the full stream');
  t.is(a.log.options['curriculumSteps'], 6);
  const wa = allWeights(a.params);
  a.params.dispose();

  // Stopped inside the curriculum and resumed: both cursors come back from the checkpoint.
  const dirB = await tempDir();
  let n = 0;
  const b1 = await train({ ...baseOpts(config, stream, dirB), curriculum, ckptEvery: 2, shouldStop: () => ++n > 4 });
  t.is(b1.log.completedSteps, 4);
  b1.params.dispose();
  const b2 = await train({ ...baseOpts(config, stream, dirB), curriculum });
  t.is(b2.resumedFrom, 4);
  t.true(sameBits(allWeights(b2.params), wa), 'resumed curriculum run must equal the uninterrupted one');
  b2.params.dispose();
  // The curriculum is part of the run's identity: another length, or none, is refused.
  await t.throwsAsync(train({ ...baseOpts(config, stream, dirB), curriculum: { ...curriculum, steps: 5 } }), { message: /different run/ });
  await t.throwsAsync(train({ ...baseOpts(config, stream, dirB) }), { message: /different run/ });
  await t.throwsAsync(train({ ...baseOpts(config, stream, dirB), curriculum: { ...curriculum, steps: 0 } }), { message: /curriculum\.steps/ });
  const dirC = await tempDir();
  await t.throwsAsync(train({ ...baseOpts(config, stream, dirC), curriculum: { steps: 3, tokens: sub.tokens.subarray(0, 20) } }), {
    message: /curriculum stream: .*too few/,
  });
  for (const d of [dirA, dirB, dirC]) await rm(d, { recursive: true, force: true });
});
