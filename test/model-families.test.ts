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

// Mistral too: its sliding window (4) must hold when decoding from the cache past the window.
for (const name of [...FAMILY_MAIN, 'tiny-mistral-bf16']) {
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

test('BOOL mask buffers are skipped; a sharded index loads the same weights; a quantized weight is refused', async (t) => {
  const { readSafetensorsHeader, readSafetensors, writeSafetensors } = await import('../lib/io/safetensors.js');
  const { readCheckpoint } = await import('../lib/io/checkpoint.js');
  const { mkdtemp, rm, copyFile, writeFile, readFile } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const path = await import('node:path');
  const { familyDir } = await import('./helpers/families.js');
  const src = familyDir('tiny-gpt-neox');
  const header = await readSafetensorsHeader(path.join(src, 'model.safetensors'));
  t.is(header.unreadable.get('gpt_neox.layers.0.attention.bias'), 'BOOL', 'the fixture carries the BOOL causal mask');
  const single = await readCheckpoint(src);
  const dir = await mkdtemp(path.join(tmpdir(), 'rome-ts-shards-'));
  try {
    // Two shards plus model.safetensors.index.json, as Hugging Face writes large checkpoints.
    const all = (await readSafetensors(path.join(src, 'model.safetensors'), { names: header.entries.keys() })).tensors;
    const names = [...all.keys()];
    const half = Math.floor(names.length / 2);
    const weightMap: Record<string, string> = {};
    for (const [i, part] of [names.slice(0, half), names.slice(half)].entries()) {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      await writeSafetensors(path.join(dir, file), new Map(part.map((n) => [n, all.get(n)!])));
      for (const n of part) weightMap[n] = file;
    }
    await writeFile(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    await copyFile(path.join(src, 'config.json'), path.join(dir, 'config.json'));
    const sharded = await readCheckpoint(dir);
    t.deepEqual([...sharded.weights.keys()].sort(), [...single.weights.keys()].sort());
    for (const [n, w] of single.weights) t.deepEqual(Array.from(sharded.weights.get(n)!.data), Array.from(w.data), n);
    // The stored [out, in] nn.Linear matrices arrive as [in, out].
    t.deepEqual(single.weights.get('layers.0.attention.query_key_value.weight')!.shape, [32, 96]);
    t.deepEqual(header.entries.get('gpt_neox.layers.0.attention.query_key_value.weight')!.shape, [96, 32]);
    // A weight stored as I8 (a quantized checkpoint) is named, not silently missing.
    const bytes = await readFile(path.join(dir, 'model-00001-of-00002.safetensors'));
    const n = Number(bytes.readBigUInt64LE(0));
    const json = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>;
    const victim = 'gpt_neox.embed_in.weight';
    if (json[victim]) {
      const e = json[victim]!;
      json[victim] = { ...e, dtype: 'I8', shape: [e.shape[0]!, e.shape[1]! * 4] };
      let text = JSON.stringify(json);
      text += ' '.repeat((8 - (text.length % 8)) % 8);
      const head = Buffer.alloc(8);
      head.writeBigUInt64LE(BigInt(text.length));
      await writeFile(path.join(dir, 'model-00001-of-00002.safetensors'), Buffer.concat([head, Buffer.from(text), bytes.subarray(8 + n)]));
      await t.throwsAsync(() => readCheckpoint(dir), { message: /"gpt_neox\.embed_in\.weight" is stored as I8/ });
    } else t.fail('embed_in expected in the first shard');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
