import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.js';
import { forward } from '../lib/model/forward.js';
import { GPT2Params } from '../lib/model/params.js';
import { WindowSampler, type Batch } from '../lib/train/data.js';
import { batchRows } from '../lib/train/dataParallel.js';
import { initWeights, makeConfig } from '../lib/train/init.js';
import { subjectKnockout, subjectReadout } from '../lib/train/subjectKnockout.js';
import { batchLoss, knockoutBias } from '../lib/train/trainLoop.js';
import { WordTokenizer } from './helpers/wordTokenizer.js';

test.before(async () => {
  await initBackend({ quiet: true });
});

const config = makeConfig({ nLayer: 3, nEmbd: 32, nHead: 2, nPositions: 16, vocabSize: 40, eosTokenId: 0, bosTokenId: 0 });
const maxDiff = (x: Float32Array, y: Float32Array) => x.reduce((m, xi, i) => Math.max(m, Math.abs(xi - (y[i] as number))), 0);

function logitsOf(params: GPT2Params, ids: tf.Tensor2D, opts: Parameters<typeof forward>[2] = {}): Float32Array {
  const out = forward(params, ids, opts);
  const v = out.logits!.dataSync() as Float32Array;
  out.logits!.dispose();
  out.hidden.dispose();
  return v;
}

test('forward knockout: the same run as renormalising the attention pattern without the cut edges, only in the listed layers', (t) => {
  const params = new GPT2Params(config, initWeights(config, 3));
  const T = 6;
  const ids = tf.tensor2d([[1, 5, 9, 3, 7, 2], [4, 4, 8, 1, 11, 6]], [2, T], 'int32');
  // Row 0: queries 3..5 lose keys 1..2; row 1: query 5 loses key 0.
  const cut = (b: number, q: number, k: number) => (b === 0 && q >= 3 && k >= 1 && k <= 2) || (b === 1 && q === 5 && k === 0);
  const bias = new Float32Array(2 * T * T);
  const keep = new Float32Array(2 * T * T).fill(1);
  for (let b = 0; b < 2; b++) for (let q = 0; q < T; q++) for (let k = 0; k < T; k++) if (cut(b, q, k)) {
    bias[(b * T + q) * T + k] = -1e9;
    keep[(b * T + q) * T + k] = 0;
  }
  const biasT = tf.tensor4d(bias, [2, 1, T, T]);
  const keepT = tf.tensor4d(keep, [2, 1, T, T]);
  const renorm = (p: tf.Tensor) => tf.tidy(() => {
    const kept = tf.mul(p, keepT);
    return tf.div(kept, tf.sum(kept, -1, true));
  });
  const plain = logitsOf(params, ids);
  // After the first run: the causal mask is cached for the process.
  const before = tf.memory().numTensors;
  const viaKnockout = logitsOf(params, ids, { knockout: { bias: biasT, layers: [0, 2] } });
  const viaHook = logitsOf(params, ids, { hooks: { 'blocks.0.attn.pattern': renorm, 'blocks.2.attn.pattern': renorm } });
  t.true(maxDiff(viaKnockout, viaHook) < 1e-5, `knockout vs renormalised pattern: ${maxDiff(viaKnockout, viaHook)}`);
  t.true(maxDiff(viaKnockout, plain) > 1e-4, 'cutting edges must change the run');
  // Queries before any cut edge (row 0, positions 0..2) are untouched.
  const V = 40;
  t.true(maxDiff(viaKnockout.subarray(0, 3 * V), plain.subarray(0, 3 * V)) < 1e-6);
  t.is(tf.memory().numTensors, before);
  t.throws(() => logitsOf(params, ids, { knockout: { bias: biasT, layers: [3] } }), { message: /knockout layer 3/ });
  const wrong = tf.zeros([2, 1, T, T + 1]) as tf.Tensor4D;
  t.throws(() => logitsOf(params, ids, { knockout: { bias: wrong, layers: [0] } }), { message: /knockout bias has shape/ });
  tf.dispose([biasT, keepT, wrong, ids]);
  params.dispose();
});

test('forward knockout of every earlier key in every layer: each position computes alone (its token at its position)', (t) => {
  const params = new GPT2Params(config, initWeights(config, 5));
  const row = [7, 2, 9, 13, 4];
  const T = row.length;
  const bias = new Float32Array(T * T);
  for (let q = 0; q < T; q++) for (let k = 0; k < q; k++) bias[q * T + k] = -1e9;
  const biasT = tf.tensor4d(bias, [1, 1, T, T]);
  const ids = tf.tensor2d([row], [1, T], 'int32');
  const all = logitsOf(params, ids, { knockout: { bias: biasT, layers: [0, 1, 2] } });
  const V = 40;
  for (let q = 0; q < T; q++) {
    const one = tf.tensor2d([[row[q] as number]], [1, 1], 'int32');
    const pos = tf.tensor2d([[q]], [1, 1], 'int32');
    const alone = logitsOf(params, one, { positionIds: pos });
    t.true(maxDiff(all.subarray(q * V, (q + 1) * V), alone) < 1e-5, `position ${q}`);
    tf.dispose([one, pos]);
  }
  tf.dispose([biasT, ids]);
  params.dispose();
});

test('subjectKnockout: every token after the subject gets the subject range, nothing before it or in other documents', (t) => {
  const docs = ['the capital of France is Paris .', 'some general text here', 'Berlin Wall is in Germany .'];
  const tok = new WordTokenizer(docs.join(' '));
  const stream: number[] = [0];
  for (const d of docs) stream.push(...tok.encode(d).ids, 0);
  const tokens = Int32Array.from(stream);
  const lines = new Map([
    [docs[0]!, 'France'],
    [docs[2]!, 'Berlin Wall'],
  ]);
  const { knockout, stats } = subjectKnockout(tokens, docs, lines, tok, 2);
  t.is(knockout.layers, 2);
  t.deepEqual(stats, { documents: 2, queries: 3 + 4, skipped: 0 });
  // Doc 0 occupies stream 1..7: "France" is stream 4; queries 5..7 (is, Paris, .) cut [4, 5).
  const expectFrom = new Array(tokens.length).fill(-1);
  const expectTo = new Array(tokens.length).fill(-1);
  for (const q of [5, 6, 7]) [expectFrom[q], expectTo[q]] = [4, 5];
  // Doc 2 starts at stream 14 ("Berlin"): subject 14..15, queries 16..19.
  for (const q of [16, 17, 18, 19]) [expectFrom[q], expectTo[q]] = [14, 16];
  t.deepEqual(Array.from(knockout.from), expectFrom);
  t.deepEqual(Array.from(knockout.to), expectTo);
  // A subject that is not in its line is counted as skipped, not guessed.
  const r = subjectKnockout(tokens, docs, new Map([[docs[0]!, 'Spain']]), tok, 1);
  t.is(r.stats.skipped, 1);
  t.true(r.knockout.from.every((x) => x === -1));
  t.throws(() => subjectKnockout(tokens.slice(0, 10), docs, lines, tok, 1), { message: /stream ends before document/ });
  t.throws(() => subjectKnockout(tokens, docs, lines, tok, 0), { message: /layers must be a positive integer/ });
});

test('WindowSampler and batchRows carry the cut ranges window-relative (clipped at the window start); knockoutBias never cuts a query itself', (t) => {
  const n = 64;
  const tokens = Int32Array.from({ length: n }, (_, i) => i % 30);
  const from = new Int32Array(n).fill(-1);
  const to = new Int32Array(n).fill(-1);
  for (let q = 20; q < 30; q++) [from[q], to[q]] = [15, 18];
  const sampler = new WindowSampler(tokens, 8, 1, undefined, undefined, { layers: 2, from, to });
  let seen = 0;
  for (let i = 0; i < 40; i++) {
    const b = sampler.next(2);
    const k = b.knockout!;
    t.is(k.layers, 2);
    for (let r = 0; r < 2; r++) {
      for (let p = 0; p < 8; p++) {
        const j = r * 8 + p;
        // The stream position of this input token is recovered from its value (tokens are i % 30, windows < 30 apart).
        if ((k.cutTo[j] as number) > (k.cutFrom[j] as number)) {
          seen++;
          t.true((k.cutTo[j] as number) <= p, 'a cut range ends before its query');
          t.true((k.cutFrom[j] as number) >= 0);
          const tokAt = b.inputs[j] as number;
          t.true(tokAt >= 20 && tokAt < 30, `query token ${tokAt} is one of the cut queries`);
          t.is((k.cutTo[j] as number) - p, 18 - tokAt, 'range end sits at the subject end');
        }
      }
    }
    const half = batchRows(b, 1, 2);
    t.deepEqual(Array.from(half.knockout!.cutFrom), Array.from(k.cutFrom.subarray(8)));
  }
  t.true(seen > 0);
  const batch: Batch = {
    inputs: new Int32Array(4),
    targets: new Int32Array(4),
    batch: 1,
    seqLen: 4,
    knockout: { layers: 1, cutFrom: Int32Array.from([0, 0, 0, 1]), cutTo: Int32Array.from([0, 3, 2, 9]) },
  };
  const kb = knockoutBias(batch)!;
  const v = Array.from(kb.bias.dataSync()).map((x) => (x < -1 ? 1 : 0));
  kb.bias.dispose();
  // Query 1 asks to cut [0,3) but keeps itself; query 2 cuts [0,2); query 3 cuts [1,9) → keys 1,2 only.
  t.deepEqual(v, [0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0]);
  t.deepEqual(kb.layers, [0]);
});

test('knockout leak: the mass the plain run gives the cut edges, per knockout layer; the penalty enters the batch loss with its gradient', (t) => {
  const params = new GPT2Params(config, initWeights(config, 9));
  const T = 5;
  const ids = tf.tensor2d([[3, 8, 1, 6, 2]], [1, T], 'int32');
  const bias = new Float32Array(T * T);
  for (const q of [3, 4]) for (const k of [1, 2]) bias[q * T + k] = -1e9;
  const biasT = tf.tensor4d(bias, [1, 1, T, T]);
  // Independent value: the plain run's attention pattern, captured by a hook, summed over the cut edges.
  const expected: number[] = [];
  const hooks: Record<string, (p: tf.Tensor) => undefined> = {};
  for (const l of [0, 1]) {
    hooks[`blocks.${l}.attn.pattern`] = (p) => {
      const v = p.dataSync() as Float32Array;
      let m = 0;
      for (let h = 0; h < 2; h++) for (const q of [3, 4]) for (const k of [1, 2]) m += v[(h * T + q) * T + k] as number;
      expected.push(m);
      return undefined;
    };
  }
  logitsOf(params, ids, { hooks });
  // The cut changes layer 1's input, so compare layer 0 exactly and layer 1 by its definition on the cut run.
  const leak: tf.Scalar[] = [];
  logitsOf(params, ids, { knockout: { bias: biasT, layers: [0, 1], leak } });
  t.is(leak.length, 2);
  t.true(Math.abs((leak[0]!.dataSync()[0] as number) - (expected[0] as number)) < 1e-5, `layer 0 leak ${leak[0]!.dataSync()[0]} vs ${expected[0]}`);
  t.true((leak[1]!.dataSync()[0] as number) > 0);
  tf.dispose(leak);
  // batchLoss: the penalty adds weight × Σ leak / (B·T) to the cross-entropy.
  const batch: Batch = {
    inputs: Int32Array.from([3, 8, 1, 6, 2]),
    targets: Int32Array.from([8, 1, 6, 2, 3]),
    batch: 1,
    seqLen: T,
    knockout: { layers: 2, cutFrom: Int32Array.from([0, 0, 0, 1, 1]), cutTo: Int32Array.from([0, 0, 0, 3, 3]) },
  };
  const plainLoss = batchLoss(params, batch);
  const withPenalty = batchLoss(params, { ...batch, knockout: { ...batch.knockout!, leakPenalty: 2 } });
  const leak2: tf.Scalar[] = [];
  logitsOf(params, ids, { knockout: { bias: biasT, layers: [0, 1], leak: leak2 } });
  const total = (leak2[0]!.dataSync()[0] as number) + (leak2[1]!.dataSync()[0] as number);
  const diff = (withPenalty.dataSync()[0] as number) - (plainLoss.dataSync()[0] as number);
  t.true(Math.abs(diff - (2 * total) / T) < 1e-5, `penalty ${diff} vs ${(2 * total) / T}`);
  // The noised-subject leak of block 0 adds to the penalty (subject = the cut keys 1..2; a positive mass).
  const withNoise = batchLoss(params, { ...batch, knockout: { ...batch.knockout!, leakPenalty: 2, noiseLeak: 3 } });
  t.true((withNoise.dataSync()[0] as number) > (withPenalty.dataSync()[0] as number) + 1e-4);
  const again = batchLoss(params, { ...batch, knockout: { ...batch.knockout!, leakPenalty: 2, noiseLeak: 3 } });
  t.is(again.dataSync()[0], withNoise.dataSync()[0]);
  again.dispose();
  tf.dispose([plainLoss, withPenalty, withNoise, ...leak2, biasT, ids]);
  // Its gradient reaches the attention weights of layer 0.
  const vars = params.variables();
  const { value, grads } = tf.variableGrads(() => {
    const lk: tf.Scalar[] = [];
    const x = tf.tensor2d([[3, 8, 1, 6, 2]], [1, T], 'int32');
    const b = tf.tensor4d(bias, [1, 1, T, T]);
    const out = forward(params, x, { logits: 'none', knockout: { bias: b, layers: [0], leak: lk } });
    out.hidden.dispose();
    return lk[0]!;
  }, vars);
  const g = Object.entries(grads).find(([k]) => k.includes('h.0.attn.c_attn.weight'));
  t.truthy(g);
  t.true((tf.norm(g![1]).dataSync()[0] as number) > 0);
  value.dispose();
  tf.dispose(Object.values(grads));
  params.dispose();
});

test('subjectReadout: the object\'s first token at the last subject token of each fact line; misaligned lines skipped; stale streams refused', (t) => {
  const docs = ['the capital of France is Paris .', 'some general text here', 'Berlin Wall is in Germany .', 'Paris is the capital of France .'];
  const tok = new WordTokenizer(docs.join(' '));
  const stream: number[] = [0];
  for (const d of docs) stream.push(...tok.encode(d).ids, 0);
  const tokens = Int32Array.from(stream);
  const lines = new Map([
    [docs[0]!, { subject: 'France', prompt: 'the capital of France is', object: 'Paris' }],
    [docs[2]!, { subject: 'Berlin Wall', prompt: 'Berlin Wall is in', object: 'Germany' }],
    // The subject comes after the object: nothing at the subject can be read for it.
    [docs[3]!, { subject: 'France', prompt: 'Paris is the capital of', object: 'France' }],
  ]);
  const { target, extractFrom, stats } = subjectReadout(tokens, docs, lines, tok);
  t.deepEqual(stats, { documents: 2, skipped: 1 });
  // The prompt's last token ("is" at stream 5; "in" at 17) should find the last subject token (4; 15).
  const expectFrom = new Array(tokens.length).fill(-1);
  expectFrom[5] = 4;
  expectFrom[17] = 15;
  t.deepEqual(Array.from(extractFrom), expectFrom);
  const expected = new Array(tokens.length).fill(-1);
  // Doc 0 at stream 1..7: "France" at 4, object "Paris"; doc 2 at stream 14..19: "Wall" at 15, object "Germany".
  expected[4] = tok.vocab.get('Paris');
  expected[15] = tok.vocab.get('Germany');
  t.deepEqual(Array.from(target), expected);
  t.throws(() => subjectReadout(tokens.slice(0, 10), docs, lines, tok), { message: /stream ends before document/ });
  // Doc 0 one token short in the stream (a cache made with another tokenizer): refused, not misplaced.
  const stale = Int32Array.from([0, ...tok.encode(docs[0]!).ids.slice(0, -1), ...Array.from(tokens.subarray(8))]);
  t.throws(() => subjectReadout(stale, docs, lines, tok), { message: /document 1 has 6 tokens in the stream, 7 when encoded: stale/ });
});

test('subject readout loss: weight × the cross-entropy of the model\'s own logits when the read block is the last one; gradient reaches block 0; no tensor leak', (t) => {
  const params = new GPT2Params(config, initWeights(config, 11));
  const T = 6;
  const inputs = Int32Array.from([3, 8, 1, 6, 2, 9]);
  const targets = Int32Array.from([8, 1, 6, 2, 9, 4]);
  // Nothing cut; read the residual after block 2 (= all 3 blocks) at positions 1 and 4.
  const readTarget = Int32Array.from([-1, 17, -1, -1, 5, -1]);
  const batch: Batch = {
    inputs,
    targets,
    batch: 1,
    seqLen: T,
    knockout: { layers: 3, cutFrom: new Int32Array(T), cutTo: new Int32Array(T) },
  };
  // Independent value: log-softmax of the plain forward's logits at those positions.
  const logits = logitsOf(params, tf.tensor2d([Array.from(inputs)], [1, T], 'int32'));
  const V = 40;
  const ce = (p: number, y: number) => {
    const row = Array.from(logits.subarray(p * V, (p + 1) * V));
    const m = Math.max(...row);
    return Math.log(row.reduce((a, x) => a + Math.exp(x - m), 0)) + m - (row[y] as number);
  };
  const expected = (3 * (ce(1, 17) + ce(4, 5))) / T;
  const base = batchLoss(params, batch);
  const before = tf.memory().numTensors;
  const withRead = batchLoss(params, { ...batch, knockout: { ...batch.knockout!, readTarget, readWeight: 3 } });
  const diff = (withRead.dataSync()[0] as number) - (base.dataSync()[0] as number);
  t.true(Math.abs(diff - expected) < 1e-4, `readout term ${diff} vs ${expected}`);
  t.is(tf.memory().numTensors, before + 1);
  // Weight 0 or no targets: no term.
  const off = batchLoss(params, { ...batch, knockout: { ...batch.knockout!, readTarget, readWeight: 0 } });
  t.is(off.dataSync()[0], base.dataSync()[0]);
  t.throws(() => batchLoss(params, { ...batch, knockout: { ...batch.knockout!, readTarget: new Int32Array(3), readWeight: 1 } }), {
    message: /3 readout targets for 6 positions/,
  });
  tf.dispose([base, withRead, off]);
  // Read after block 0: its gradient reaches block 0's MLP and not block 2's (which the read residual never sees).
  const vars = params.variables();
  const { value, grads } = tf.variableGrads(() => {
    const plain = batchLoss(params, { ...batch, knockout: { layers: 1, cutFrom: new Int32Array(T), cutTo: new Int32Array(T) } });
    const read = batchLoss(params, { ...batch, knockout: { layers: 1, cutFrom: new Int32Array(T), cutTo: new Int32Array(T), readTarget, readWeight: 1 } });
    return tf.sub(read, plain) as tf.Scalar;
  }, vars);
  const norm = (name: string) => {
    const g = Object.entries(grads).find(([k]) => k.includes(name));
    return g ? (tf.norm(g[1]).dataSync()[0] as number) : 0;
  };
  t.true(norm('h.0.mlp.c_proj.weight') > 0);
  t.true(norm('h.2.mlp.c_proj.weight') < 1e-7);
  value.dispose();
  tf.dispose(Object.values(grads));
  params.dispose();
});

test('extraction supervision: weight × −log(mean over heads of the hooked attention on the supervised key), summed over the blocks from K on; window-relative in the sampler', (t) => {
  const params = new GPT2Params(config, initWeights(config, 13));
  const T = 6;
  const inputs = Int32Array.from([3, 8, 1, 6, 2, 9]);
  const targets = Int32Array.from([8, 1, 6, 2, 9, 4]);
  // Query 4 should find key 2; query 1 asks for key 3 (not causal: ignored).
  const extractFrom = Int32Array.from([-1, 3, -1, -1, 2, -1]);
  const knock = { layers: 1, cutFrom: new Int32Array(T), cutTo: new Int32Array(T) };
  const batch: Batch = { inputs, targets, batch: 1, seqLen: T, knockout: knock };
  // Independent value: the plain run's patterns in blocks 1 and 2, captured by hooks.
  const expected: number[] = [];
  const hooks: Record<string, (p: tf.Tensor) => undefined> = {};
  for (const l of [1, 2]) {
    hooks[`blocks.${l}.attn.pattern`] = (p) => {
      const v = p.dataSync() as Float32Array;
      expected.push(-Math.log(((v[(0 * T + 4) * T + 2] as number) + (v[(1 * T + 4) * T + 2] as number)) / 2 + 1e-6));
      return undefined;
    };
  }
  logitsOf(params, tf.tensor2d([Array.from(inputs)], [1, T], 'int32'), { hooks });
  const base = batchLoss(params, batch);
  const withEx = batchLoss(params, { ...batch, knockout: { ...knock, extractFrom, extractWeight: 2 } });
  const diff = (withEx.dataSync()[0] as number) - (base.dataSync()[0] as number);
  const want = (2 * ((expected[0] as number) + (expected[1] as number))) / T;
  t.true(Math.abs(diff - want) < 1e-4, `extraction term ${diff} vs ${want}`);
  tf.dispose([base, withEx]);
  // The sampler maps stream positions into the window and drops sources before it.
  const n = 64;
  const tokens = Int32Array.from({ length: n }, (_, i) => i % 30);
  const from = new Int32Array(n).fill(-1);
  const to = new Int32Array(n).fill(-1);
  const ex = new Int32Array(n).fill(-1);
  for (let q = 20; q < 30; q++) ex[q] = 17;
  const sampler = new WindowSampler(tokens, 8, 1, undefined, undefined, { layers: 1, from, to, extractFrom: ex, extractWeight: 1 });
  let seen = 0;
  for (let i = 0; i < 30; i++) {
    const b = sampler.next(2);
    for (let j = 0; j < 16; j++) {
      const s = b.knockout!.extractFrom![j] as number;
      if (s < 0) continue;
      seen++;
      const p = j % 8;
      const tokAt = b.inputs[j] as number;
      t.true(tokAt >= 20 && tokAt < 30);
      t.is(p - s, tokAt - 17, 'the source sits where stream position 17 is in the window');
    }
    t.deepEqual(Array.from(batchRows(b, 1, 2).knockout!.extractFrom!), Array.from(b.knockout!.extractFrom!.subarray(8)));
  }
  t.true(seen > 0);
  params.dispose();
});

test('subject-inner knockout: subjectKnockout marks each subject token after the first with the subject start; the sampler and batchRows carry it window-relative', (t) => {
  const docs = ['the capital of France is Paris .', 'Berlin Wall is in Germany .'];
  const tok = new WordTokenizer(docs.join(' '));
  const stream: number[] = [0];
  for (const d of docs) stream.push(...tok.encode(d).ids, 0);
  const tokens = Int32Array.from(stream);
  const { innerFrom } = subjectKnockout(tokens, docs, new Map([[docs[0]!, 'France'], [docs[1]!, 'Berlin Wall']]), tok, 2);
  // Doc 1 starts at stream 9 ("Berlin"): only "Wall" (10) is inside the subject after its first token; one-token
  // "France" has none.
  const expect = new Array(tokens.length).fill(-1);
  expect[10] = 9;
  t.deepEqual(Array.from(innerFrom), expect);
  const n = 48;
  const tk = Int32Array.from({ length: n }, (_, i) => i % 24);
  const inner = new Int32Array(n).fill(-1);
  for (let q = 11; q < 15; q++) inner[q] = 10;
  const none = new Int32Array(n).fill(-1);
  const sampler = new WindowSampler(tk, 6, 3, undefined, undefined, { layers: 2, from: none, to: none, innerLayers: 1, innerFrom: inner });
  let seen = 0;
  for (let i = 0; i < 30; i++) {
    const b = sampler.next(2);
    const k = b.knockout!;
    t.is(k.innerLayers, 1);
    for (let j = 0; j < 12; j++) {
      const f = k.innerFrom![j] as number;
      if (f < 0) continue;
      seen++;
      const p = j % 6;
      const tokAt = b.inputs[j] as number;
      t.true(tokAt >= 11 && tokAt < 15, `query token ${tokAt} is inside the subject`);
      // Window position of the subject start, clipped at 0.
      t.is(f, Math.max(0, p - (tokAt - 10)));
    }
    t.deepEqual(Array.from(batchRows(b, 1, 2).knockout!.innerFrom!), Array.from(k.innerFrom!.subarray(6)));
  }
  t.true(seen > 0);
});

test('subject-inner knockout in batchLoss: the same loss (and leak penalty) as the forward knockout cutting those edges in those blocks; no tensor leak', (t) => {
  const params = new GPT2Params(config, initWeights(config, 5));
  const T = 6;
  const inputs = Int32Array.from([4, 9, 12, 7, 3, 5]);
  const targets = Int32Array.from([9, 12, 7, 3, 5, 4]);
  // Subject = positions 1..3: query 2 may not see key 1, query 3 may not see keys 1..2 (in block 0 only).
  const innerFrom = Int32Array.from([-1, -1, 1, 1, -1, -1]);
  const empty = new Int32Array(T);
  const inner: Batch = { inputs, targets, batch: 1, seqLen: T, knockout: { layers: 1, cutFrom: empty, cutTo: empty, innerLayers: 1, innerFrom } };
  // The reference: the forward's own knockout (a −1e9 bias before the softmax) on the same edges, block 0.
  const asCut: Batch = {
    inputs,
    targets,
    batch: 1,
    seqLen: T,
    knockout: { layers: 1, cutFrom: Int32Array.from([0, 0, 1, 1, 0, 0]), cutTo: Int32Array.from([0, 0, 2, 3, 0, 0]) },
  };
  const plain = batchLoss(params, { inputs, targets, batch: 1, seqLen: T });
  for (const leakPenalty of [0, 3]) {
    const a = batchLoss(params, { ...inner, knockout: { ...inner.knockout!, leakPenalty } });
    const b = batchLoss(params, { ...asCut, knockout: { ...asCut.knockout!, leakPenalty } });
    const [va, vb] = [a.dataSync()[0] as number, b.dataSync()[0] as number];
    t.true(Math.abs(va - vb) < 1e-5, `penalty ${leakPenalty}: ${va} vs ${vb}`);
    t.true(Math.abs(va - (plain.dataSync()[0] as number)) > 1e-6, 'the cut changes the loss');
    tf.dispose([a, b]);
  }
  plain.dispose();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) batchLoss(params, { ...inner, knockout: { ...inner.knockout!, leakPenalty: 1 } }).dispose();
  t.is(tf.memory().numTensors, before);
  params.dispose();
});
