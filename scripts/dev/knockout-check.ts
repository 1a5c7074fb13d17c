// Dev check: recall of known_1000 prompts by the plain model vs with the training-time subject knockout applied
// (positions after the subject cannot attend to it in blocks 0..K-1), and the subject readout: the object's first token
// read from the residual after block K-1 at the last subject token through the final norm and unembedding (what
// train-facts --subject-readout trains). Usage: npx tsx scripts/dev/knockout-check.ts MODEL K [N]
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../lib/backend.js';
import { loadModel } from '../../lib/loadModel.js';
import { finalNorm, forward, unembed } from '../../lib/model/forward.js';
import { knownPrompts } from './knownPrompts.js';

const [dir, kArg, nArg] = process.argv.slice(2);
await initBackend({ quiet: true });
const model = await loadModel(dir!);
const K = Number(kArg);
const N = Number(nArg ?? 200);
let plainHit = 0, koHit = 0, n = 0, plainP = 0, koP = 0, readHit = 0, readP = 0;
for (const { ids, s0, s1, target } of await knownPrompts(model, N)) {
  const T = ids.length;
  const bias = new Float32Array(T * T);
  for (let q = s1; q < T; q++) for (let s = s0; s < s1; s++) bias[q * T + s] = -1e9;
  const x = tf.tensor2d([ids], [1, T], 'int32');
  const b = tf.tensor4d(bias, [1, 1, T, T]);
  const run = (ko: boolean) => {
    const out = forward(model.params, x, { logits: [T - 1], ...(ko ? { knockout: { bias: b, layers: Array.from({ length: K }, (_, l) => l) } } : {}) });
    const p = tf.tidy(() => tf.softmax(out.logits!).dataSync() as Float32Array);
    out.logits!.dispose(); out.hidden.dispose();
    let arg = 0; for (let i = 1; i < p.length; i++) if (p[i]! > p[arg]!) arg = i;
    return { hit: arg === target, p: p[target]! };
  };
  const a = run(false), c = run(true);
  const read = (() => {
    const out = forward(model.params, x, { endLayer: K, logits: 'none' });
    const p = tf.tidy(() => {
      const h = tf.slice(out.hidden, [0, s1 - 1, 0], [1, 1, -1]);
      return tf.softmax(tf.reshape(unembed(model.params, finalNorm(model.params, h)), [1, -1])).dataSync() as Float32Array;
    });
    out.hidden.dispose();
    let arg = 0; for (let i = 1; i < p.length; i++) if (p[i]! > p[arg]!) arg = i;
    return { hit: arg === target, p: p[target]! };
  })();
  n++; plainHit += +a.hit; koHit += +c.hit; plainP += a.p; koP += c.p; readHit += +read.hit; readP += read.p;
  tf.dispose([x, b]);
}
console.log(`${dir}: ${n} known prompts; plain top-1 ${(100 * plainHit / n).toFixed(1)}% mean p ${(plainP / n).toFixed(3)}; with knockout in blocks 0-${K - 1}: top-1 ${(100 * koHit / n).toFixed(1)}% mean p ${(koP / n).toFixed(3)}; subject readout after block ${K - 1}: top-1 ${(100 * readHit / n).toFixed(1)}% mean p ${(readP / n).toFixed(3)}`);
