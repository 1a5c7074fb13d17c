// Dev check: attention mass the last token puts on the subject's positions per layer, clean vs subject embeddings
// noised (trace-style, noise sd ν). Usage: npx tsx scripts/dev/leak-check.ts MODEL NU [N]
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../lib/backend.js';
import { loadModel } from '../../lib/loadModel.js';
import { forward } from '../../lib/model/forward.js';
import { knownPrompts } from './knownPrompts.js';

const [dir, nuArg, nArg] = process.argv.slice(2);
await initBackend({ quiet: true });
const model = await loadModel(dir!);
const nu = Number(nuArg);
const N = Number(nArg ?? 50);
const L = model.config.nLayer;
const clean = new Float64Array(L), noisy = new Float64Array(L);
let n = 0;
for (const { ids, s0, s1, target } of await knownPrompts(model, N)) {
  const T = ids.length;
  if (s1 >= T) continue;
  const x = tf.tensor2d([ids], [1, T], 'int32');
  for (const corrupt of [false, true]) {
    const acc = corrupt ? noisy : clean;
    const hooks: Record<string, (t: tf.Tensor) => tf.Tensor | undefined> = {};
    for (let l = 0; l < L; l++) {
      hooks[`blocks.${l}.attn.pattern`] = (p) => {
        const v = p.dataSync() as Float32Array;
        const H = p.shape[1] as number;
        let m = 0;
        for (let h = 0; h < H; h++) for (let s = s0; s < s1; s++) m += v[(h * T + (T - 1)) * T + s] as number;
        acc[l] += m / H;
        return undefined;
      };
    }
    if (corrupt) {
      hooks.embed = (e) => tf.tidy(() => {
        const mask = new Float32Array(T);
        for (let s = s0; s < s1; s++) mask[s] = 1;
        const noise = tf.mul(tf.randomNormal(e.shape, 0, nu, 'float32', 7), tf.reshape(tf.tensor1d(mask), [1, T, 1]));
        return tf.add(e, noise);
      });
    }
    const out = forward(model.params, x, { logits: 'none', hooks });
    out.hidden.dispose();
  }
  x.dispose();
  n++;
}
const f = (a: Float64Array) => Array.from(a, (v) => (v / n).toFixed(3)).join(' ');
console.log(`${dir}: ${n} prompts; last token's attention on the subject per layer\n  clean: ${f(clean)}\n  noisy: ${f(noisy)}`);
