// Times one data-parallel share's gradient (B=4, T=128, bundled shape) with and without the subject readout.
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../lib/backend.js';
import { GPT2Params } from '../../lib/model/params.js';
import { initWeights, makeConfig } from '../../lib/train/init.js';
import { batchLoss } from '../../lib/train/trainLoop.js';
import type { Batch } from '../../lib/train/data.js';

await initBackend({ quiet: true });
const config = makeConfig({ nLayer: 6, nEmbd: 256, nHead: 4, nPositions: 128, vocabSize: 4096, eosTokenId: 0, bosTokenId: 0 });
const params = new GPT2Params(config, initWeights(config, 1));
params.training = true;
const B = 4, T = 128;
const inputs = Int32Array.from({ length: B * T }, (_, i) => (i * 7919) % 4096);
const targets = Int32Array.from({ length: B * T }, (_, i) => (i * 104729) % 4096);
const cutFrom = new Int32Array(B * T).fill(-1), cutTo = new Int32Array(B * T).fill(-1);
const readTarget = new Int32Array(B * T).fill(-1);
for (let i = 0; i < B * T; i++) if (i % 12 >= 4) [cutFrom[i], cutTo[i]] = [i % T - (i % 12) + 1, i % T - (i % 12) + 4];
for (let i = 3; i < B * T; i += 12) readTarget[i] = (i * 31) % 4096;
const base: Batch = { inputs, targets, batch: B, seqLen: T, knockout: { layers: 4, cutFrom, cutTo, leakPenalty: 1, noiseLeak: 3 } };
const vars = params.variables();
const time = (b: Batch, label: string) => {
  for (let r = 0; r < 2; r++) { const { value, grads } = tf.variableGrads(() => batchLoss(params, b), vars); value.dispose(); tf.dispose(Object.values(grads)); }
  const t0 = Date.now();
  for (let r = 0; r < 4; r++) { const { value, grads } = tf.variableGrads(() => batchLoss(params, b), vars); value.dataSync(); value.dispose(); tf.dispose(Object.values(grads)); }
  console.log(label, ((Date.now() - t0) / 4).toFixed(0), 'ms/share');
};
for (let k = 0; k < 3; k++) {
  time(base, 'knockout + leak penalties');
  time({ ...base, knockout: { ...base.knockout!, readTarget, readWeight: 8 } }, 'knockout + leak + readout');
}
