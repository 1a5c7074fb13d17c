import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.js';
import { applyDropout, dropoutMask } from '../lib/model/dropout.js';
import { forward } from '../lib/model/forward.js';
import { GPT2Params } from '../lib/model/params.js';
import { initWeights, makeConfig } from '../lib/train/init.js';

test.before(async () => {
  await initBackend({ quiet: true });
});

const config = makeConfig({ nLayer: 2, nEmbd: 32, nHead: 2, nPositions: 16, vocabSize: 40, eosTokenId: 0, bosTokenId: 0 });

test('dropoutMask: zero fraction ≈ rate (binomial bound), kept entries are 1/(1−rate), rows keyed by their seed and the site', (t) => {
  const spec = { rate: 0.1, rowSeeds: [11, 22, 33, 44] };
  const m = dropoutMask(spec, [4, 250, 100], 5);
  const v = m.dataSync() as Float32Array;
  m.dispose();
  let zeros = 0;
  for (const x of v) {
    if (x === 0) zeros++;
    else t.true(Math.abs(x - 1 / 0.9) < 1e-6, `kept entry ${x}`);
  }
  // 100,000 draws: the binomial sd of the fraction is 0.00095; 0.005 is > 5 sd.
  t.true(Math.abs(zeros / v.length - 0.1) < 0.005, `zero fraction ${zeros / v.length}`);
  // Row 2's mask depends only on its seed: the same seed in another batch slot gives the same row.
  const solo = dropoutMask({ rate: 0.1, rowSeeds: [33] }, [1, 250, 100], 5);
  t.deepEqual(Array.from(solo.dataSync()), Array.from(v.subarray(2 * 25000, 3 * 25000)));
  solo.dispose();
  const other = dropoutMask(spec, [4, 250, 100], 6);
  const ov = other.dataSync();
  other.dispose();
  let same = 0;
  for (let i = 0; i < v.length; i++) if ((v[i] === 0) === (ov[i] === 0)) same++;
  t.true(same < v.length - 1000, 'another site must draw another mask');
  t.throws(() => dropoutMask({ rate: 0.1, rowSeeds: [1, 2] }, [3, 4], 0), { message: /2 row seeds for a batch of 3/ });
});

test('forward with dropout: rate 0 is the plain run, same seeds give the same run, other seeds another; no tensor growth', (t) => {
  const params = new GPT2Params(config, initWeights(config, 7));
  const ids = tf.tensor2d([[1, 5, 9, 3, 7, 2], [4, 4, 8, 1, 0, 6]], [2, 6], 'int32');
  const run = (dropout?: { rate: number; rowSeeds: number[] }): Float32Array => {
    const out = forward(params, ids, dropout ? { dropout } : {});
    const v = out.logits!.dataSync() as Float32Array;
    out.logits!.dispose();
    out.hidden.dispose();
    return v;
  };
  const plain = run();
  const before = tf.memory().numTensors;
  t.deepEqual(run({ rate: 0, rowSeeds: [1, 2] }), plain);
  const a = run({ rate: 0.3, rowSeeds: [1, 2] });
  t.deepEqual(run({ rate: 0.3, rowSeeds: [1, 2] }), a);
  const maxDiff = (x: Float32Array, y: Float32Array) => x.reduce((m, xi, i) => Math.max(m, Math.abs(xi - (y[i] as number))), 0);
  t.true(maxDiff(a, plain) > 1e-3, 'dropout must change the logits');
  t.true(maxDiff(run({ rate: 0.3, rowSeeds: [3, 4] }), a) > 1e-3, 'other seeds, other masks');
  t.is(tf.memory().numTensors, before);
  t.throws(() => run({ rate: 1.2, rowSeeds: [1, 2] }), { message: /rate must be in \[0, 1\)/ });
  t.throws(() => run({ rate: 0.3, rowSeeds: [1] }), { message: /1 row seeds for a batch of 2/ });
  ids.dispose();
  params.dispose();
});

test('applyDropout is unbiased: averaged over 400 row seeds it gives back its input', (t) => {
  const x = tf.tensor3d(Array.from({ length: 2 * 3 * 4 }, (_, i) => i - 10), [2, 3, 4]);
  const acc = new Float64Array(24);
  for (let s = 0; s < 400; s++) {
    const y = applyDropout(x, { rate: 0.25, rowSeeds: [2 * s, 2 * s + 1] }, 1);
    (y.dataSync() as Float32Array).forEach((v, i) => (acc[i]! += v / 400));
    y.dispose();
  }
  const xv = x.dataSync();
  // Each mean has sd |x|·sqrt(rate/(1−rate)/400) ≤ 14·0.029 = 0.4; allow 4 sd.
  acc.forEach((m, i) => t.true(Math.abs(m - (xv[i] as number)) <= 4 * 0.029 * Math.max(1, Math.abs(xv[i] as number)), `elem ${i}: ${m} vs ${xv[i]}`));
  x.dispose();
});
