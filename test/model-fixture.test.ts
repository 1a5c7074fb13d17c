import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { fixtureExpected, fixtureModel, maxAbsDiff } from './helpers/fixture.js';
import { forward } from '../lib/model/forward.js';

const TOL = 1e-4;

test('logits and every captured state match the float64 reference within 1e-4', async (t) => {
  const model = await fixtureModel();
  const exp = fixtureExpected();
  const L = model.config.nLayer;
  const names = [];
  for (let l = 0; l < L; l++) names.push(`blocks.${l}`, `blocks.${l}.mlp`, `blocks.${l}.attn`);
  const r = model.run(exp.ids, { capture: names });
  try {
    const logits = (await r.logits!.array()) as number[][][];
    const d = maxAbsDiff(logits[0], exp.logits);
    t.true(d < TOL, `logits max diff ${d}`);
    for (let l = 0; l < L; l++) {
      for (const [hook, ref] of [
        [`blocks.${l}`, exp.hidden[l]],
        [`blocks.${l}.mlp`, exp.mlp[l]],
        [`blocks.${l}.attn`, exp.attn[l]],
      ] as const) {
        const got = ((await r.get(hook).array()) as number[][][])[0];
        const diff = maxAbsDiff(got, ref);
        t.true(diff < TOL, `${hook} max diff ${diff}`);
      }
    }
  } finally {
    r.dispose();
  }
});

test('capturing does not change the logits (bit-exact)', async (t) => {
  const model = await fixtureModel();
  const { ids } = fixtureExpected();
  const a = model.run(ids);
  const b = model.run(ids, { capture: 'all' });
  t.deepEqual(Array.from(a.logits!.dataSync()), Array.from(b.logits!.dataSync()));
  t.is(b.cache.size, model.hookNames().length);
  a.dispose();
  b.dispose();
});

test('patching every state with its own captured value changes nothing (bit-exact)', async (t) => {
  const model = await fixtureModel();
  const { ids } = fixtureExpected();
  const clean = model.run(ids, { capture: 'all' });
  const names = model.hookNames().filter((n) => n !== 'logits');
  const patched = model.run(ids, {
    patch: names.map((hook) => ({ hook, value: clean.get(hook) })),
  });
  t.deepEqual(Array.from(patched.logits!.dataSync()), Array.from(clean.logits!.dataSync()));
  clean.dispose();
  patched.dispose();
});

test('a patch changes only positions at and after the patched token, and patches compose', async (t) => {
  const model = await fixtureModel();
  const { ids } = fixtureExpected();
  const base = model.run(ids, { capture: ['blocks.2'] });
  const one = model.run(ids, {
    capture: ['blocks.2'],
    patch: [{ hook: 'blocks.0.mlp', positions: [3], value: 0 }],
  });
  const h0 = (await base.get('blocks.2').array()) as number[][][];
  const h1 = (await one.get('blocks.2').array()) as number[][][];
  for (let p = 0; p < 3; p++) t.is(maxAbsDiff(h0[0][p], h1[0][p]), 0, `position ${p} must be untouched`);
  t.true(maxAbsDiff(h0[0][3], h1[0][3]) > 1e-3, 'position 3 must change');
  // Two patches in one run equal the same two effects: zeroing then adding 1 = replacing with 1.
  const two = model.run(ids, {
    patch: [
      { hook: 'blocks.1.attn', positions: [2], value: 0 },
      { hook: 'blocks.1.attn', positions: [2], value: 1, mode: 'add' },
    ],
  });
  const ref = model.run(ids, { patch: [{ hook: 'blocks.1.attn', positions: [2], value: 1 }] });
  t.deepEqual(Array.from(two.logits!.dataSync()), Array.from(ref.logits!.dataSync()));
  for (const r of [base, one, two, ref]) r.dispose();
});

test('a batch with padding equals running each row alone', async (t) => {
  const model = await fixtureModel();
  const rows = [
    [5, 17, 42, 3, 96, 64, 8],
    [1, 2, 3],
    [50, 60, 70, 80, 90],
  ];
  const batch = model.run(rows, { capture: ['blocks.1.mlp'] });
  const bl = (await batch.logits!.array()) as number[][][];
  const bm = (await batch.get('blocks.1.mlp').array()) as number[][][];
  for (let i = 0; i < rows.length; i++) {
    const single = model.run([rows[i]], { capture: ['blocks.1.mlp'] });
    const sl = ((await single.logits!.array()) as number[][][])[0];
    const sm = ((await single.get('blocks.1.mlp').array()) as number[][][])[0];
    t.true(maxAbsDiff(bl[i].slice(0, rows[i].length), sl) < 1e-5, `row ${i} logits`);
    t.true(maxAbsDiff(bm[i].slice(0, rows[i].length), sm) < 1e-5, `row ${i} mlp`);
    single.dispose();
  }
  const last = model.run(rows, { logits: 'last' });
  const ll = (await last.logits!.array()) as number[][];
  rows.forEach((r, i) => t.true(maxAbsDiff(ll[i], bl[i][r.length - 1]) < 1e-6));
  last.dispose();
  batch.dispose();
});

test('resuming from a middle layer with cached keys/values reproduces the full run', async (t) => {
  const model = await fixtureModel();
  const { ids } = fixtureExpected();
  const T = ids.length;
  const full = model.run(ids, { capture: ['blocks.0'] });
  const fullLogits = (await full.logits!.array()) as number[][][];
  // Prefix pass returns K/V of positions < 4; then blocks 1.. run for positions >= 4 only.
  const cut = 4;
  const idsT = tf.tensor2d([ids], [1, T], 'int32');
  const pre = forward(model.params, tf.slice(idsT, [0, 0], [1, cut]) as tf.Tensor2D, { returnPresent: true, logits: 'none' });
  const resid = tf.slice(full.get('blocks.0').tensor, [0, cut, 0], [1, T - cut, -1]) as tf.Tensor3D;
  const rest = forward(model.params, null, { startLayer: 1, residual: resid, past: pre.present!, logits: 'all' });
  const restLogits = (await rest.logits!.array()) as number[][][];
  t.true(maxAbsDiff(restLogits[0], fullLogits[0].slice(cut)) < 1e-5);
  for (const x of [idsT, pre.hidden, resid, rest.hidden, rest.logits!]) x.dispose();
  for (const x of [...pre.present!.k, ...pre.present!.v]) x.dispose();
  full.dispose();
});

test('KV-cached greedy generation equals greedy decoding with full forwards', async (t) => {
  const model = await fixtureModel();
  const prompt = [5, 17, 42];
  const gen = await model.generateIds(prompt, { maxNewTokens: 8, stopAtEos: false });
  const seq = [...prompt];
  for (let i = 0; i < 8; i++) {
    const r = model.run([seq], { logits: 'last' });
    const a = tf.argMax(r.logits!.tensor, -1);
    seq.push(a.dataSync()[0]);
    a.dispose();
    r.dispose();
  }
  t.deepEqual(gen, seq.slice(prompt.length));
  const s1 = await model.generateIds(prompt, { maxNewTokens: 8, topK: 5, seed: 7, stopAtEos: false });
  const s2 = await model.generateIds(prompt, { maxNewTokens: 8, topK: 5, seed: 7, stopAtEos: false });
  t.deepEqual(s1, s2, 'same seed, same sample');
});

test('a parameter can be replaced and restored bit-exactly', async (t) => {
  const model = await fixtureModel();
  const { ids } = fixtureExpected();
  const name = 'h.1.mlp.c_proj.weight';
  const before = model.run(ids);
  const snap = model.snapshotParam(name);
  const w = model.getParam(name);
  const noisy = tf.tidy(() => tf.add(w, tf.randomNormal(w.shape, 0, 0.5, 'float32', 1)));
  model.setParam(name, noisy);
  noisy.dispose();
  const edited = model.run(ids);
  t.true(maxAbsDiff(Array.from(edited.logits!.dataSync()), Array.from(before.logits!.dataSync())) > 1e-3);
  model.restoreParam(snap);
  t.deepEqual(Array.from(model.getParam(name).dataSync()), Array.from(snap.data));
  const after = model.run(ids);
  t.deepEqual(Array.from(after.logits!.dataSync()), Array.from(before.logits!.dataSync()));
  for (const r of [before, edited, after]) r.dispose();
});

test('bad hook names, shapes and token ids give clear errors', async (t) => {
  const model = await fixtureModel();
  t.throws(() => model.run([1, 2], { capture: ['blocks.9'] }), { message: /layer 9 out of range/ });
  t.throws(() => model.run([1, 2], { capture: ['blocks.0.mlpp'] }), { message: /unknown hook point/ });
  t.throws(() => model.run([1, 500]), { message: /token id 500 out of range/ });
  t.throws(() => model.run([1, 2], { patch: [{ hook: 'blocks.0', value: tf.zeros([3, 3, 3, 3]) }] }), {
    message: /rank/,
  });
  t.throws(() => model.run('hello'), { message: /no tokenizer/ });
});

test('numTensors does not grow over 200 runs with captures and patches', async (t) => {
  const model = await fixtureModel();
  const { ids } = fixtureExpected();
  const warm = model.run(ids, { capture: ['blocks.1'], patch: [{ hook: 'blocks.0.mlp', positions: [2], value: 0 }] });
  warm.dispose();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 200; i++) {
    const clean = model.run(ids, { capture: ['blocks.1', 'blocks.2.mlp.key'] });
    const r = model.run(ids, {
      capture: ['blocks.2'],
      patch: [
        { hook: 'blocks.1', positions: [1, 2], value: clean.get('blocks.1') },
        { hook: 'embed', positions: [0], value: (x) => tf.mul(x, 2), mode: 'replace' },
      ],
    });
    r.dispose();
    clean.dispose();
  }
  t.is(tf.memory().numTensors, before);
});
