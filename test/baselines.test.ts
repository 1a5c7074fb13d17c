import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { tinyModel } from './helpers/romeTiny.js';
import { ftEdit, ftlEdit, knAttribution, knEdit } from '../lib/baselines/index.js';
import { applyEdit, mlpProjParams, weightsHash } from '../lib/rome/index.js';

const REQ = { prompt: 'The sport of {}', subject: 'Lionel Messi', target: 'Paris', targetTrue: 'French' };
const TEXT = 'The sport of Lionel Messi';

test.serial('FT lowers the target NLL with proper teacher forcing, restores bit-exactly, and re-applies from JSON', async (t) => {
  const model = await tinyModel();
  const h0 = weightsHash(model);
  const before = model.scoreTargets([{ prompt: TEXT, target: ' Paris' }])[0].nll;
  const h = await ftEdit(model, REQ, { layer: 0, lr: 5e-3 });
  const after = model.scoreTargets([{ prompt: TEXT, target: ' Paris' }])[0].nll;
  t.is(h.method, 'ft');
  t.true(after < before - 3, `${before} → ${after}`);
  // The recorded loss is the mean NLL of the target tokens on the prompt, the same quantity scoreTargets reports.
  t.true(Math.abs(h.losses[0].loss - before) < 1e-3, `first loss ${h.losses[0].loss} vs nll ${before}`);
  const logits = Array.from(model.run(TEXT).logits!.dataSync());
  const json = JSON.stringify(h.toJSON());
  h.restore();
  t.is(weightsHash(model), h0);
  const h2 = applyEdit(model, json);
  t.deepEqual(Array.from(model.run(TEXT).logits!.dataSync()), logits);
  h2.restore();
  t.is(weightsHash(model), h0);
});

test.serial('FT+L keeps every weight within ε of the original (L∞)', async (t) => {
  const model = await tinyModel();
  const name = mlpProjParams(0).weight;
  const w0 = (model.getParam(name).dataSync() as Float32Array).slice();
  const eps = 2e-3;
  const h = await ftlEdit(model, REQ, { layer: 0, lr: 5e-3, normConstraint: eps });
  const w1 = model.getParam(name).dataSync() as Float32Array;
  let max = 0;
  for (let i = 0; i < w0.length; i++) max = Math.max(max, Math.abs(w1[i] - w0[i]));
  t.is(h.method, 'ft-l');
  t.true(max <= eps * (1 + 1e-5), `max |Δw| ${max}`);
  t.true(max > eps / 2, 'the constraint is active');
  h.restore();
});

test.serial('KN: selected neurons pass the adaptive threshold; the edit touches only selected rows by ±2·embeddings', async (t) => {
  const model = await tinyModel();
  const scores = knAttribution(model, TEXT, ' French', 20);
  t.is(scores.length, model.config.nLayer);
  t.true(scores.every((s) => s.every(Number.isFinite)));
  const before = new Map(model.params.names().map((n) => [n, (model.getParam(n).dataSync() as Float32Array).slice()]));
  const h = await knEdit(model, REQ);
  const neurons = h.info.neurons as [number, number][];
  t.true(neurons.length > 0);
  const max = Math.max(...scores.flat().flatMap((s) => Array.from(s)));
  for (const [l, i] of neurons) t.true(scores[l][i] > 0.2 * max);
  const d = model.config.nEmbd;
  const wte = model.getParam('wte.weight').dataSync() as Float32Array;
  const oldId = h.info.originalPredictionId as number;
  const newId = h.info.newToken as number;
  for (const n of model.params.names()) {
    const a = before.get(n)!;
    const b = model.getParam(n).dataSync() as Float32Array;
    const m = /^h\.(\d+)\.mlp\.c_proj\.weight$/.exec(n);
    for (let r = 0; r < (m ? a.length / d : 1); r++) {
      const sel = m !== null && neurons.some(([l, i]) => l === Number(m[1]) && i === r);
      for (let j = 0; j < (m ? d : a.length); j++) {
        const k = m ? r * d + j : j;
        const expected = sel ? a[k] - 2 * wte[oldId * d + j] + 2 * wte[newId * d + j] : a[k];
        if (Math.abs(b[k] - expected) > 1e-5) {
          t.fail(`${n}[${k}]: ${b[k]} vs ${expected}`);
          return;
        }
      }
    }
  }
  h.restore();
  for (const n of model.params.names()) t.deepEqual(Array.from(model.getParam(n).dataSync()), Array.from(before.get(n)!));
});

test.serial('baselines leak no tensors', async (t) => {
  const model = await tinyModel();
  (await ftEdit(model, REQ, { layer: 0, numSteps: 2 })).restore();
  (await knEdit(model, REQ, { steps: 4 })).restore();
  const n0 = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) {
    (await ftEdit(model, REQ, { layer: 0, numSteps: 2 })).restore();
    (await ftlEdit(model, REQ, { layer: 0, numSteps: 2 })).restore();
    (await knEdit(model, REQ, { steps: 4 })).restore();
  }
  t.is(tf.memory().numTensors, n0);
});

test.serial('KN attribution obeys integrated gradients completeness: Σ_i IG_i(layer l) = p(answer) − p(answer | that layer\'s last-position keys zeroed)', async (t) => {
  const model = await tinyModel();
  // The model's own top token after the prompt: a probability large enough that the check is not lost in rounding.
  const probs = tf.tidy(() => model.nextTokenProbs(TEXT));
  const order = Array.from(probs.dataSync()).map((p, i) => [p, i] as const).sort((a, b) => b[0] - a[0]);
  probs.dispose();
  // The first that is a whole word with a leading space, so that encoding the answer gives back this one token.
  const pick = order.find(([, i]) => {
    const s = model.decode([i]);
    return s.startsWith(' ') && s.length > 1 && model.tokenizer!.encode(s).ids.join() === String(i);
  });
  t.truthy(pick);
  const aId = [pick![1]];
  const answer = model.decode(aId);
  // 400 Riemann points make the sum converge to the integral (the attribution uses α = 0 … 1 inclusive).
  const scores = knAttribution(model, TEXT, answer, 400);
  const T = model.tokenizer!.encode(TEXT).ids.length;
  const pAnswer = (zeroLayer: number | null): number => {
    const hooks =
      zeroLayer === null
        ? {}
        : {
            [`blocks.${zeroLayer}.mlp.key`]: (x: tf.Tensor) =>
              tf.concat([tf.slice(x, [0, 0, 0], [1, T - 1, -1]), tf.zerosLike(tf.slice(x, [0, T - 1, 0], [1, 1, -1]))], 1),
          };
    const p = tf.tidy(() => model.nextTokenProbs(TEXT, { hooks }));
    const v = p.dataSync()[aId[0]!] as number;
    p.dispose();
    return v;
  };
  const full = pAnswer(null);
  for (let l = 0; l < model.config.nLayer; l++) {
    const sum = scores[l]!.reduce((s, x) => s + x, 0);
    const diff = full - pAnswer(l);
    t.log(`layer ${l}: Σ IG ${sum} vs Δp ${diff} (p ${full})`);
    t.true(Math.abs(diff) > 1e-3, 'the layer matters for this answer');
    t.true(Math.abs(sum - diff) <= 0.02 * Math.abs(diff), `layer ${l}: Σ IG ${sum} vs Δp ${diff}`);
  }
});
