/**
 * Core benchmark: forward throughput and one training step on a randomly initialised GPT-2-small-shaped model
 * (124M parameters, weights made at run time), with and without the WASM kernel overrides, in the same process.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.js';
import { setWasmOverrides, wasmOverridesEnabled } from '../lib/wasmKernels.js';
import { forward } from '../lib/model/forward.js';
import { createModel, makeConfig } from '../lib/train/init.js';
import { timeIt, type BenchRow } from './types.js';

/** FLOPs of one forward over T tokens (matmuls only): 2·(12·L·d² + 2·L·T·d + d·V) per token. */
export function forwardFlops(L: number, d: number, V: number, T: number, B = 1): number {
  return 2 * B * T * (12 * L * d * d + 2 * L * T * d + d * V);
}

/** Runs the core benchmark and returns its rows. */
export async function benchCore(opts: { quick?: boolean } = {}): Promise<BenchRow[]> {
  const backend = await initBackend();
  const rows: BenchRow[] = [];
  const b = 'core';
  const log = (m: string) => process.stderr.write(`bench core: ${m} (wasm/tf memory ${(tf.memory().numBytes / 1e6).toFixed(0)} MB)\n`);
  // Raw matmul: the shape of GPT-2 small's MLP input projection over 1024 tokens.
  {
    const a = tf.randomNormal([1024, 768]);
    const w = tf.randomNormal([768, 3072]);
    const wt = tf.randomNormal([3072, 768]);
    const flops = 2 * 1024 * 768 * 3072;
    const plain = await timeIt(() => tf.tidy(() => tf.matMul(a, w)).dispose() as void, 5);
    setWasmOverrides(false);
    const tDefault = await timeIt(() => tf.tidy(() => tf.matMul(a, wt, false, true)).dispose() as void, 2);
    setWasmOverrides(true);
    const tFixed = await timeIt(() => tf.tidy(() => tf.matMul(a, wt, false, true)).dispose() as void, 5);
    rows.push({ bench: b, name: 'matMul [1024,768]x[768,3072]', value: flops / plain / 1e6, unit: 'GFLOPS', note: `${plain.toFixed(1)} ms, ${backend}` });
    rows.push({ bench: b, name: 'matMul transposeB, tfjs default', value: flops / tDefault / 1e6, unit: 'GFLOPS', note: `${tDefault.toFixed(1)} ms` });
    rows.push({ bench: b, name: 'matMul transposeB, rome-ts override', value: flops / tFixed / 1e6, unit: 'GFLOPS', note: `${tFixed.toFixed(1)} ms` });
    for (const t of [a, w, wt]) t.dispose();
  }
  log('matmul done');
  const cfg = makeConfig({ nLayer: 12, nEmbd: 768, nHead: 12, nPositions: 1024, vocabSize: 50257 });
  const params = createModel(cfg, 1);
  rows.push({ bench: b, name: 'gpt2-small-shaped parameters', value: params.count() / 1e6, unit: 'M' });
  // Forward: batch 1 x 128 tokens and batch 8 x 32, logits at every position.
  for (const [B, T] of [
    [1, 128],
    [8, 32],
  ]) {
    const ids = tf.tensor2d(Array.from({ length: B * T }, (_, i) => (i * 7919) % cfg.vocabSize), [B, T], 'int32');
    const ms = await timeIt(async () => {
      const o = forward(params, ids, { logits: 'all' });
      await o.logits!.data();
      o.logits!.dispose();
      o.hidden.dispose();
    }, opts.quick ? 1 : 3);
    const fl = forwardFlops(cfg.nLayer, cfg.nEmbd, cfg.vocabSize, T, B);
    rows.push({ bench: b, name: `forward ${B}x${T} tokens/s`, value: (B * T) / (ms / 1000), unit: 'tok/s', note: `${ms.toFixed(0)} ms` });
    rows.push({ bench: b, name: `forward ${B}x${T} efficiency`, value: fl / ms / 1e6, unit: 'GFLOPS' });
    ids.dispose();
  }
  log('forward done');
  // One training step (forward + backward + SGD update), B=1, T=64, with and without the overrides.
  {
    // 64 tokens: at 128 the gradients of a 124M model overflow the WASM heap in this configuration.
    const B = 1;
    const T = 64;
    const V = cfg.vocabSize;
    const ids = tf.tensor2d(Array.from({ length: B * T }, (_, i) => (i * 104729) % V), [B, T], 'int32');
    const targets = tf.oneHot(tf.tensor1d(Array.from({ length: B * T }, (_, i) => (i * 15485863) % V), 'int32'), V);
    params.training = true;
    const vars = params.variables();
    const step = async () => {
      const { value, grads } = tf.variableGrads(() => {
        const o = forward(params, ids, { logits: 'all' });
        o.hidden.dispose();
        return tf.tidy(() => tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(tf.reshape(o.logits!, [B * T, V])), targets), -1)))) as tf.Scalar;
      }, vars);
      tf.tidy(() => {
        for (const v of vars) v.assign(tf.sub(v, tf.mul(grads[v.name], 1e-4)));
      });
      await value.data();
      value.dispose();
      for (const g of Object.values(grads)) g.dispose();
    };
    const stepFlops = 3 * forwardFlops(cfg.nLayer, cfg.nEmbd, V, T, B);
    const fast = await timeIt(step, opts.quick ? 1 : 2, 1);
    log('fast step done');
    setWasmOverrides(false);
    const slow = await timeIt(step, 1, 0);
    setWasmOverrides(true);
    const note = backend === 'wasm' ? '' : ` (overrides only act on wasm; backend ${backend})`;
    rows.push({ bench: b, name: `train step ${B}x${T}, overrides on`, value: fast / 1000, unit: 's', note: `${(stepFlops / fast / 1e6).toFixed(2)} GFLOPS${note}` });
    rows.push({ bench: b, name: `train step ${B}x${T}, tfjs default`, value: slow / 1000, unit: 's', note: `${(stepFlops / slow / 1e6).toFixed(2)} GFLOPS` });
    rows.push({ bench: b, name: 'train step speed-up from overrides', value: slow / fast, unit: 'x', note: wasmOverridesEnabled() ? 'same run, same model' : 'overrides not installed' });
    params.training = false;
    ids.dispose();
    targets.dispose();
  }
  params.dispose();
  return rows;
}
