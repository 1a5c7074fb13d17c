/**
 * Where does a ROME edit reach a neighbourhood prompt? For each named CounterFact case: make the edit with the given
 * hparams, then for the case's neighbourhood prompt print, per token, r = uᵀk_t / uᵀk_r (the share of the edit's
 * change Λ that position t receives at the edited layer), for the edit's own u and for the paper's u = C⁻¹k*, with
 * P(true) and P(new) of the neighbour prompt before and after. The edit is undone after each case.
 *
 * `npx tsx scripts/dev/bleed-positions.ts --hparams FILE --cases 7,56 [--model models/rome-fact-gpt2]`
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../lib/backend.js';
import { loadCounterFact } from '../../lib/data/counterfact.js';
import { evalCounterFactCase } from '../../lib/eval/counterfact.js';
import { loadModel } from '../../lib/loadModel.js';
import { computeKey, contextTemplates, edit, fittingTemplates, loadRomeHparams, resolveRomeHparams, romeSolver } from '../../lib/rome/index.js';

function flag(name: string, dflt?: string): string {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? process.argv[i + 1] : dflt;
  if (v === undefined || v.startsWith('--')) throw new Error(`bleed-positions: ${name} needs a value`);
  return v;
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
};

await initBackend({ quiet: true });
const model = await loadModel(flag('--model', 'models/rome-fact-gpt2'));
const hp = resolveRomeHparams(model.config.nLayer, loadRomeHparams(flag('--hparams')));
const ids = flag('--cases').split(',').map(Number);
if (ids.some((x) => !Number.isInteger(x) || x < 0)) throw new Error('bleed-positions: --cases must be case ids, e.g. 7,56');
const records = (await loadCounterFact({ split: 'edit', limit: Math.max(...ids) + 1000 })).filter((r) => ids.includes(r.caseId));
const solver = await romeSolver(model, hp);
const allTemplates = await contextTemplates(model, { spec: hp.contextTemplates, seed: hp.contextSeed });
for (const rec of records) {
  const req = { prompt: rec.prompt, subject: rec.subject, target: rec.targetNew, targetTrue: rec.targetTrue };
  const nb = rec.neighborhoodPrompts[0];
  if (!nb) continue;
  const probe = { ...rec, paraphrasePrompts: [], neighborhoodPrompts: [nb] };
  const pre = await evalCounterFactCase(model, probe);
  const templates = fittingTemplates(model, allTemplates, { ...req, target: ` ${req.target}` });
  const keys = computeKey(model, hp.layer, { ...req, target: ` ${req.target}` }, templates);
  const kRight = hp.rightVectorKey === 'bare-prompt' ? keys.kBare : keys.kStar;
  const plainU = solver.solve(keys.kStar);
  const h = await edit(model, req, hp);
  const post = await evalCounterFactCase(model, probe);
  const u = h.u;
  // Keys at every position of the neighbour prompt (the edit does not change them: it acts after the key).
  const tok = model.tokenizer;
  if (!tok) throw new Error('bleed-positions: the model has no tokenizer');
  const enc = tok.encode(nb);
  const ids2 = tf.tensor2d([enc.ids], [1, enc.ids.length], 'int32');
  let keyT: tf.Tensor | null = null;
  model.forward(ids2, { endLayer: hp.layer + 1, logits: 'none', hooks: { [`blocks.${hp.layer}.mlp.key`]: (x) => void (keyT = tf.keep(tf.clone(x))) } }).hidden.dispose();
  ids2.dispose();
  const kd = (keyT as unknown as tf.Tensor).dataSync() as Float32Array;
  (keyT as unknown as tf.Tensor).dispose();
  h.restore();
  const n = model.config.nInner;
  const uR = dot(u, kRight);
  const pR = dot(plainU, kRight);
  const p = (x: { nllNew: number; nllTrue: number }) => `P(true) ${(100 * Math.exp(-x.nllTrue)).toFixed(1)}% P(new) ${(100 * Math.exp(-x.nllNew)).toFixed(1)}%`;
  console.log(`\ncase ${rec.caseId}: ${rec.subject} → ${rec.targetNew} (true ${rec.targetTrue}); preserved ${JSON.stringify(h.info.preservedSubjects ?? [])}`);
  console.log(`  rewrite after: ${p(post.rewrite)}; neighbour "${nb}" before ${p(pre.neighborhood[0]!)}, after ${p(post.neighborhood[0]!)}`);
  enc.tokens.forEach((piece, t) => {
    const k = kd.subarray(t * n, (t + 1) * n);
    console.log(`  ${JSON.stringify(piece).padEnd(16)} r(edit) ${(dot(u, k) / uR).toFixed(3).padStart(7)}   r(C⁻¹k*) ${(dot(plainU, k) / pR).toFixed(3).padStart(7)}`);
  });
}
