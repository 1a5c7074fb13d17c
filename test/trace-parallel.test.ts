import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { traceTestModel, TRACE_PROMPT, TRACE_SUBJECT } from './helpers/traceModels.js';
import type { GPT2Model } from '../lib/model/model.js';
import { clearLayerStatsMemory, corpusFromTexts, layerStats } from '../lib/rome/index.js';
import { TraceSession, sharedTracePool, tableRestorations, tracePrompt, type StateKind, type TracePromptResult } from '../lib/trace/index.js';

const PROMPT = TRACE_PROMPT;
const SUBJECT = TRACE_SUBJECT;
const KINDS: StateKind[] = ['hidden', 'mlp', 'attn'];

const model = traceTestModel;

function maxDiff(a: TracePromptResult, b: TracePromptResult): number {
  let m = 0;
  for (const k of KINDS) a.results[k]!.scores.forEach((row, t) => row.forEach((v, l) => (m = Math.max(m, Math.abs(v - b.results[k]!.scores[t][l])))));
  return m;
}

test.serial('two threads give the one-thread scores (and the naive method agrees)', async (t) => {
  const m = await model();
  const base = { prompt: PROMPT, subject: SUBJECT, noise: 3, samples: 5, seed: 7, windows: { mlp: 3, attn: 3 } };
  const one = await tracePrompt(m, { ...base, threads: 1 });
  const before = tf.memory().numTensors;
  const two = await tracePrompt(m, { ...base, threads: 2 });
  t.is(tf.memory().numTensors, before, 'no tensors left behind on the calling thread');
  const naive = await tracePrompt(m, { ...base, method: 'naive' });
  t.true(maxDiff(one, two) <= 1e-5, `max |1 thread − 2 threads| = ${maxDiff(one, two)}`);
  t.true(maxDiff(two, naive) <= 1e-5, `max |2 threads − naive| = ${maxDiff(two, naive)}`);
  const hidden = two.results.hidden!.scores.flat();
  t.true(Math.max(...hidden) - Math.min(...hidden) > 0.1, 'trace has visible effects');
  // The worker's work is counted.
  t.true(two.stats.flops >= one.stats.flops * 0.9, `flops ${two.stats.flops} vs ${one.stats.flops}`);
});

test.serial('the shared workers are reused across prompts, follow weight changes, and tensors stay stable', async (t) => {
  const m = await model();
  const pool = await sharedTracePool(m, 2);
  let count = -1;
  for (let i = 0; i < 3; i++) {
    const s = await TraceSession.create(m, { prompt: PROMPT, subject: SUBJECT }, { noise: 3, samples: 4, seed: i });
    const rs = tableRestorations(s.length, m.config.nLayer, 'hidden', 1);
    const par = await s.score(rs, { pool });
    const one = await s.score(rs);
    s.dispose();
    const d = Math.max(...par.map((v, j) => Math.abs(v - one[j])));
    t.true(d <= 1e-5, `seed ${i}: max diff ${d}`);
    if (i === 0) count = tf.memory().numTensors;
    else t.is(tf.memory().numTensors, count);
  }
  t.is(await sharedTracePool(m, 2), pool, 'the same workers serve the next trace');
  // An edit after the weights were sent: the stale pool is refused, and a trace through `threads` re-sends them.
  const name = 'h.1.mlp.c_proj.weight';
  const snap = m.snapshotParam(name);
  try {
    const w = tf.tidy(() => tf.mul(m.getParam(name), 3));
    m.setParam(name, w);
    w.dispose();
    t.false(pool.holds(m));
    const s = await TraceSession.create(m, { prompt: PROMPT, subject: SUBJECT }, { noise: 3, samples: 4 });
    await t.throwsAsync(s.score(tableRestorations(s.length, m.config.nLayer, 'mlp', 2), { pool }), { message: /other weights/ });
    s.dispose();
    const base = { prompt: PROMPT, subject: SUBJECT, noise: 3, samples: 4, kinds: ['mlp'] as StateKind[] };
    const one = await tracePrompt(m, { ...base, threads: 1 });
    const two = await tracePrompt(m, { ...base, threads: 2 });
    const d = Math.max(...one.results.mlp!.scores.flat().map((v, j) => Math.abs(v - two.results.mlp!.scores.flat()[j])));
    t.true(d <= 1e-5, `after the edit: max diff ${d}`);
    t.true(pool.holds(m));
  } finally {
    m.restoreParam(snap);
  }
});

test.serial('layerStats on two threads (the shared worker computes every other key batch) equals one thread bit for bit; tensors stay stable', async (t) => {
  const m = await model();
  const texts = Array.from({ length: 40 }, (_, i) => `The ${i}th sample of a statistics corpus talks about ${i % 7} cities and ${i % 3} rivers.`);
  const corpus = corpusFromTexts('parallel-stats', texts);
  const opts = { corpus, maxTokens: null, cacheDir: null, progress: false, batchTokens: 64 } as const;
  clearLayerStatsMemory();
  const one = await layerStats(m, 1, { ...opts, threads: 1 });
  clearLayerStatsMemory();
  const before = tf.memory().numTensors;
  const two = await layerStats(m, 1, { ...opts, threads: 2 });
  t.is(tf.memory().numTensors, before, 'no tensors left behind on the calling thread');
  t.is(two.meta.tokens, one.meta.tokens);
  t.true(one.meta.tokens > 300, `${one.meta.tokens} tokens: enough for many batches of 64`);
  t.true(two.sum.every((x, i) => x === one.sum[i]), 'same sums, bit for bit');
  t.true(one.sum.some((x) => x !== 0));
  clearLayerStatsMemory();
  await t.throwsAsync(layerStats(m, 1, { ...opts, threads: 0 }), { message: /threads must be a positive integer or 'auto', got 0/ });
});
