import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { maxAbsDiff } from './helpers/fixture.js';
import { FAMILY_FIXTURES, FAMILY_MAIN, familyExpected, familyModel } from './helpers/families.js';

const TOL = 1e-4;

for (const name of FAMILY_FIXTURES) {
  test(`${name}: logits, residual, attn, mlp and key states match the float64 reference within 1e-4`, async (t) => {
    const model = await familyModel(name);
    const exp = familyExpected(name);
    const L = model.config.nLayer;
    const names: string[] = [];
    for (let l = 0; l < L; l++) names.push(`blocks.${l}`, `blocks.${l}.attn`, `blocks.${l}.mlp`, `blocks.${l}.mlp.key`);
    const r = model.run(exp.ids, { capture: names });
    try {
      const worst: Record<string, number> = { logits: maxAbsDiff((r.logits!.tensor.arraySync() as number[][][])[0], exp.logits) };
      for (let l = 0; l < L; l++) {
        for (const [hook, ref] of [
          [`blocks.${l}`, exp.hidden[l]],
          [`blocks.${l}.attn`, exp.attn[l]],
          [`blocks.${l}.mlp`, exp.mlp[l]],
          [`blocks.${l}.mlp.key`, exp.key[l]],
        ] as const) {
          worst[hook] = maxAbsDiff((r.get(hook).tensor.arraySync() as number[][][])[0], ref);
        }
      }
      for (const [hook, diff] of Object.entries(worst)) t.true(diff < TOL, `${name} ${hook}: max |diff| ${diff}`);
      t.log(`${name} (${exp.dtype}): max |logit diff| ${worst.logits!.toExponential(2)}`);
    } finally {
      r.dispose();
    }
  });
}

test('the references differ between dtypes and conventions (a wrong convention cannot pass by accident)', (t) => {
  // Each fixture's logits differ from every other's by far more than the tolerance.
  const all = FAMILY_FIXTURES.map((n) => familyExpected(n).logits);
  for (let i = 0; i < all.length; i++) for (let j = i + 1; j < all.length; j++) t.true(maxAbsDiff(all[i], all[j]) > 0.1);
});

for (const name of FAMILY_MAIN) {
  test.serial(`${name}: KV-cached continuation equals the full run, and generation is greedy over it`, async (t) => {
    const model = await familyModel(name);
    const { ids } = familyExpected(name);
    // Causal masks are cached per shape: warm them up so the count below sees only leaks.
    model.run(ids).dispose();
    const warm = await model.generateIds(ids.slice(0, 3), { maxNewTokens: 5, stopAtEos: false });
    t.is(warm.length, 5);
    for (let p = 4; p <= ids.length; p++) model.run(ids.slice(0, p)).dispose();
    const before = tf.memory().numTensors;
    const all = tf.tensor2d([ids], [1, ids.length], 'int32');
    const full = model.forward(all);
    all.dispose();
    const fullLogits = full.logits!.arraySync() as number[][][];
    full.hidden.dispose();
    full.logits!.dispose();
    // Prefix of 4, then one token at a time from the cache.
    const head = tf.tensor2d([ids.slice(0, 4)], [1, 4], 'int32');
    let o = model.forward(head, { returnPresent: true });
    head.dispose();
    let worst = maxAbsDiff((o.logits!.arraySync() as number[][][])[0], fullLogits[0]!.slice(0, 4));
    for (let p = 4; p < ids.length; p++) {
      const one = tf.tensor2d([[ids[p]!]], [1, 1], 'int32');
      const past = o.present!;
      o.hidden.dispose();
      o.logits!.dispose();
      o = model.forward(one, { past, returnPresent: true });
      one.dispose();
      for (const x of [...past.k, ...past.v]) x.dispose();
      worst = Math.max(worst, maxAbsDiff((o.logits!.arraySync() as number[][][])[0]![0], fullLogits[0]![p]));
    }
    o.hidden.dispose();
    o.logits!.dispose();
    for (const x of [...o.present!.k, ...o.present!.v]) x.dispose();
    t.true(worst < 1e-5, `cached vs full: ${worst}`);
    // Generation: each greedy token is the argmax of a fresh full run over the text so far.
    const gen = await model.generateIds(ids.slice(0, 3), { maxNewTokens: 4, stopAtEos: false });
    const seq = ids.slice(0, 3);
    for (const g of gen) {
      const r = model.run(seq, { logits: 'last' });
      const row = (r.logits!.tensor.arraySync() as number[][])[0]!;
      r.dispose();
      t.is(g, row.indexOf(Math.max(...row)));
      seq.push(g);
    }
    t.is(tf.memory().numTensors, before);
  });
}
