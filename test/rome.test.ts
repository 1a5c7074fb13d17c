import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, readFileSync, rmSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { tinyModel, TINY_SENTENCES } from './helpers/romeTiny.js';
import {
  applyEdit,
  choleskyInPlace,
  choleskySolve,
  clearLayerStatsMemory,
  computeKey,
  computeValue,
  fittingTemplates,
  resolveRomeHparams,
  romeSolver,
  saveLayerStatsFile,
  contextTemplates,
  corpusFromTexts,
  edit,
  identitySolver,
  layerStats,
  mlpProjParams,
  projectKey,
  weightsHash,
  loadPreservedFacts,
  preservedDirection,
  preservedFactsFor,
  preservedKeys,
  type CovarianceSolver,
  type EditRequest,
} from '../lib/rome/index.js';
import type { GPT2Model } from '../lib/model/model.js';
import { methodHparamsFor } from '../lib/cli/editCommand.js';

// The tiny random model has no trained attention routing, so prompts end with the subject (its last token is the
// prediction position); layer 0 of 2 leaves a block after the edit. See test/helpers/romeTiny.ts.
const REQ: EditRequest = { prompt: 'The sport of {}', subject: 'Lionel Messi', target: 'Paris' };
const TEXT = 'The sport of Lionel Messi';
const UNRELATED = [
  'The capital of France is',
  'Tokyo is the capital of',
  'Apple was founded by',
  'English is spoken in',
  'The official language of Italy is',
  'Michael Jordan plays the sport of',
];
const statsTexts = TINY_SENTENCES.flatMap((s) => s.split('. ')).concat(TINY_SENTENCES);

let solverC: CovarianceSolver | null = null;
async function covSolver(model: GPT2Model): Promise<CovarianceSolver> {
  solverC ??= (await layerStats(model, 0, { corpus: corpusFromTexts('tiny', statsTexts), maxTokens: null, cacheDir: null, progress: false })).solver();
  return solverC;
}

function norm(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s);
}

test.serial('after an edit the layer maps k* to v*: ‖k*ᵀW′ + b − v*‖ / ‖v*‖ < 1e-4 (C = I and C from layerStats)', async (t) => {
  const model = await tinyModel();
  const templates = await contextTemplates(model, { cacheDir: null });
  t.is(templates.length, 21);
  t.is(templates[0], '{}');
  for (const solver of [identitySolver(model.config.nInner), await covSolver(model)]) {
    const h = await edit(model, REQ, { layer: 0 }, { solver, templates });
    // k* is upstream of the edited weight, so recomputing it on the edited model gives the same key.
    const { kStar } = computeKey(model, 0, { ...REQ, target: ' Paris' }, templates);
    const vStar = h.info.vStar as number[];
    const p = mlpProjParams(0);
    const w = model.getParam(p.weight).dataSync() as Float32Array;
    const b = model.getParam(p.bias).dataSync() as Float32Array;
    const out = projectKey(w, b, kStar, model.config.nInner, model.config.nEmbd);
    const err = norm(Array.from(out, (x, j) => x - vStar[j])) / norm(vStar);
    t.true(err < 1e-4, `${solver.kind}: relative error ${err}`);
    h.restore();
  }
});

test.serial('the edited model prefers the new target on the edit prompt; restore() is bit-exact (sha256)', async (t) => {
  const model = await tinyModel();
  const before = weightsHash(model);
  const s0 = model.scoreTargets([{ prompt: TEXT, target: ' Paris' }, { prompt: TEXT, target: ' French' }]);
  const h = await edit(model, REQ, { layer: 0 }, { solver: await covSolver(model) });
  t.not(weightsHash(model), before);
  const s1 = model.scoreTargets([{ prompt: TEXT, target: ' Paris' }, { prompt: TEXT, target: ' French' }]);
  t.true(s1[0].nll < s1[1].nll, `after: nll(new) ${s1[0].nll} vs nll(true) ${s1[1].nll}`);
  t.true(s1[0].nll < s0[0].nll - 3, `nll(new) ${s0[0].nll} → ${s1[0].nll}`);
  t.true(h.losses.length >= 2 && h.losses.at(-1)!.loss < h.losses[0].loss);
  h.restore();
  t.is(weightsHash(model), before);
  t.true(h.restored);
});

test.serial('edit → toJSON → restore → applyEdit gives identical logits', async (t) => {
  const model = await tinyModel();
  const h = await edit(model, REQ, { layer: 0 }, { solver: identitySolver(model.config.nInner) });
  const prompts = [TEXT, ...UNRELATED];
  const a = model.run(prompts);
  const la = Array.from(a.logits!.dataSync());
  a.dispose();
  const json = JSON.stringify(h.toJSON());
  t.true(json.length < 20_000, `edit JSON is ${json.length} bytes`);
  h.restore();
  const h2 = applyEdit(model, json);
  const b = model.run(prompts);
  t.deepEqual(Array.from(b.logits!.dataSync()), la);
  b.dispose();
  h2.restore();
});

test.serial('unrelated prompts barely move: next-token total variation (measured max 0.114, mean 0.040 with C; with C = I max 0.515)', async (t) => {
  const model = await tinyModel();
  const tv = async (solver: CovarianceSolver) => {
    const p0 = model.nextTokenProbs(UNRELATED);
    const h = await edit(model, REQ, { layer: 0 }, { solver });
    const p1 = model.nextTokenProbs(UNRELATED);
    const d = tf.tidy(() => tf.div(tf.sum(tf.abs(tf.sub(p0, p1)), 1), 2).dataSync() as Float32Array);
    p0.dispose();
    p1.dispose();
    h.restore();
    return Array.from(d);
  };
  const withC = await tv(await covSolver(model));
  const withI = await tv(identitySolver(model.config.nInner));
  const max = Math.max(...withC);
  const mean = withC.reduce((a, b) => a + b, 0) / withC.length;
  t.log(`TV with C: ${withC.map((x) => x.toFixed(4)).join(' ')}; with I: ${withI.map((x) => x.toFixed(4)).join(' ')}`);
  t.true(max < 0.15, `max TV ${max}`);
  t.true(mean < 0.06, `mean TV ${mean}`);
  t.true(max < Math.max(...withI), 'C⁻¹ must protect unrelated keys better than C = I');
});

test.serial('sequential edits hold together and undo in reverse order; the bare-prompt right vector variant maps its key', async (t) => {
  const model = await tinyModel();
  const h0 = weightsHash(model);
  const solver = await covSolver(model);
  const a = await edit(model, REQ, { layer: 0 }, { solver });
  const b = await edit(model, { prompt: 'The language of {}', subject: 'Michael Jordan', target: 'French' }, { layer: 0 }, { solver });
  const s = model.scoreTargets([
    { prompt: TEXT, target: ' Paris' },
    { prompt: TEXT, target: ' French' },
    { prompt: 'The language of Michael Jordan', target: ' French' },
  ]);
  t.true(s[0].nll < s[1].nll, 'first edit survives the second');
  t.true(s[2].nll < 3, `second edit holds: ${s[2].nll}`);
  b.restore();
  a.restore();
  t.is(weightsHash(model), h0);

  const templates = await contextTemplates(model, { cacheDir: null });
  const c = await edit(model, REQ, { layer: 0, rightVectorKey: 'bare-prompt' }, { solver, templates });
  const { kBare } = computeKey(model, 0, { ...REQ, target: ' Paris' }, templates);
  const p = mlpProjParams(0);
  const out = projectKey(model.getParam(p.weight).dataSync() as Float32Array, model.getParam(p.bias).dataSync() as Float32Array, kBare, model.config.nInner, model.config.nEmbd);
  const vStar = c.info.vStar as number[];
  t.true(norm(Array.from(out, (x, j) => x - vStar[j])) / norm(vStar) < 1e-4);
  c.restore();
});

test.serial("computeValue's suffix engine (only columns from the subject's last token on) equals the full recomputation", async (t) => {
  const model = await tinyModel({ fresh: true, nLayer: 3 });
  const templates = await contextTemplates(model, { cacheDir: null });
  const hp = resolveRomeHparams(3, { layer: 0 });
  const reqs: EditRequest[] = [
    REQ,
    // Subject mid-prompt and a multi-token target: the suffix then spans prompt tokens and target tokens.
    { prompt: '{} plays the sport of', subject: 'Michael Jordan', target: ' basketball in Tokyo' },
  ];
  for (const layer of [0, 1, 2]) {
    for (const req of reqs) {
      const tpl = fittingTemplates(model, templates, req);
      const full = computeValue(model, layer, req, tpl, { ...hp, vNumGradSteps: 6 }, { engine: 'full' });
      computeValue(model, layer, req, tpl, { ...hp, vNumGradSteps: 1 }, { engine: 'suffix' }); // warm the mask cache
      const n0 = tf.memory().numTensors;
      const suffix = computeValue(model, layer, req, tpl, { ...hp, vNumGradSteps: 6 }, { engine: 'suffix' });
      t.is(tf.memory().numTensors, n0, 'suffix engine leaks no tensors');
      t.is(suffix.losses.length, full.losses.length);
      full.losses.forEach((l, i) => {
        const s = suffix.losses[i]!;
        for (const k of ['loss', 'nll', 'kl', 'weightDecay'] as const) {
          const a = l[k] as number;
          const b = s[k] as number;
          t.true(Math.abs(a - b) <= 1e-4 * Math.max(1, Math.abs(a)), `layer ${layer} step ${i} ${k}: full ${a} suffix ${b}`);
        }
      });
      const dv = Math.max(...Array.from(full.vStar, (x, i) => Math.abs(x - suffix.vStar[i]!)));
      t.true(dv <= 1e-4 * norm(full.vStar), `layer ${layer}: max |Δv*| ${dv} vs ‖v*‖ ${norm(full.vStar)}`);
      // v₀ is the MLP output at the bare prompt's subject; both engines read it from different columns.
      t.deepEqual(Array.from(suffix.v0, (x) => Math.round(x * 1e3)), Array.from(full.v0, (x) => Math.round(x * 1e3)));
    }
  }
  t.throws(() => computeValue(model, 0, REQ, templates, hp, { engine: 'fast' as 'full' }), { message: /unknown engine "fast"/ });
});

test.serial("computeValue's Adam uses vAdamBeta2: the first (bias-corrected) update is lr·sign(g) whatever β₂, the second is not", async (t) => {
  const model = await tinyModel({ fresh: true, nLayer: 3 });
  const templates = await contextTemplates(model, { cacheDir: null });
  const tpl = fittingTemplates(model, templates, REQ);
  const hp = { ...resolveRomeHparams(3, { layer: 1 }), vNumGradSteps: 3, earlyStopLoss: 0, clampNormFactor: 1e6 };
  const a = computeValue(model, 1, REQ, tpl, { ...hp, vAdamBeta2: 0.999 });
  const b = computeValue(model, 1, REQ, tpl, { ...hp, vAdamBeta2: 0.5 });
  t.is(a.losses.length, 3);
  for (const i of [0, 1]) t.true(Math.abs(a.losses[i]!.loss - b.losses[i]!.loss) <= 1e-5 * Math.abs(a.losses[i]!.loss), `step ${i}`);
  t.true(Math.abs(a.losses[2]!.loss - b.losses[2]!.loss) > 1e-4 * Math.abs(a.losses[2]!.loss), `step 2: ${a.losses[2]!.loss} vs ${b.losses[2]!.loss}`);
  // Two updates of lr per coordinate at most: ‖δ‖ ≤ 2·lr·√d.
  t.true(norm(Array.from(a.delta)) <= 2 * hp.vLr * Math.sqrt(model.config.nEmbd) * (1 + 1e-4));
});


test.serial("computeValue's onStep sees, at the first step below t, the δ that earlyStopLoss = t returns", async (t) => {
  const model = await tinyModel({ fresh: true, nLayer: 3 });
  const templates = await contextTemplates(model, { cacheDir: null });
  const tpl = fittingTemplates(model, templates, REQ);
  const hp = { ...resolveRomeHparams(3, { layer: 1 }), vNumGradSteps: 8, earlyStopLoss: 0 };
  const seen: { loss: number; delta: Float32Array }[] = [];
  computeValue(model, 1, REQ, tpl, { ...hp, vNumGradSteps: 1 }); // warm the mask cache
  const n0 = tf.memory().numTensors;
  const full = computeValue(model, 1, REQ, tpl, hp, { onStep: (l, delta) => seen.push({ loss: l.loss, delta }) });
  t.is(tf.memory().numTensors, n0);
  t.is(seen.length, full.losses.length);
  t.deepEqual(Array.from(seen[0]!.delta), new Array(model.config.nEmbd).fill(0), 'step 0 is scored at δ = 0');
  t.deepEqual(Array.from(seen[seen.length - 1]!.delta), Array.from(full.delta), 'the last step scores the returned δ');
  // A threshold between the losses of steps 3 and the best before it: the run must stop at the first step below.
  const before = Math.min(...seen.slice(0, 3).map((s) => s.loss));
  t.true(seen[3]!.loss < before, `the loss falls in the first steps (${seen.map((s) => s.loss.toFixed(3)).join(', ')})`);
  const stop = (before + seen[3]!.loss) / 2;
  const at = seen.findIndex((s) => s.loss < stop);
  const early = computeValue(model, 1, REQ, tpl, { ...hp, earlyStopLoss: stop });
  t.is(early.losses.length, at + 1);
  t.deepEqual(Array.from(early.delta), Array.from(seen[at]!.delta));
});
test('preservedDirection: u ⟂ every preserved key, uᵀk* > 0, and with no keys it is C⁻¹k* (random SPD C, checked by direct products)', (t) => {
  // C = A Aᵀ + I over 6 dims, keys drawn from a fixed LCG: independent of the model and of the Cholesky code path.
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const n = 6;
  const a = Array.from({ length: n * n }, rnd);
  const c = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    let s = i === j ? 1 : 0;
    for (let k = 0; k < n; k++) s += a[i * n + k]! * a[j * n + k]!;
    c[i * n + j] = s;
  }
  const l = Float64Array.from(c);
  t.true(choleskyInPlace(l, n));
  const solver: CovarianceSolver = { kind: 'mom2', n, tokens: 1, solve: (k) => choleskySolve(l, n, k) };
  const kStar = Array.from({ length: n }, rnd);
  const p = [Array.from({ length: n }, rnd), Array.from({ length: n }, rnd)];
  const dot = (x: ArrayLike<number>, y: ArrayLike<number>) => Array.from(x).reduce((s, v, i) => s + v * (y[i] as number), 0);
  const plain = preservedDirection(solver, kStar, []);
  t.is(plain.rho, 1);
  // C · (C⁻¹k*) = k*.
  for (let i = 0; i < n; i++) t.true(Math.abs(dot(c.subarray(i * n, (i + 1) * n), plain.x) - kStar[i]!) < 1e-9);
  const { x, rho } = preservedDirection(solver, kStar, p);
  for (const pk of p) t.true(Math.abs(dot(x, pk)) < 1e-9 * norm(x) * norm(pk), `uᵀp = ${dot(x, pk)}`);
  t.true(rho > 0 && rho < 1);
  t.true(Math.abs(dot(x, kStar) / dot(plain.x, kStar) - rho) < 1e-9);
  // k* inside span(P) cannot be edited alone.
  const inSpan = p[0]!.map((v, i) => 2 * v - 0.5 * p[1]![i]!);
  t.throws(() => preservedDirection(solver, inSpan, p), { message: /lies in the span of the 2 preserved keys/ });
});

test.serial('preserveFacts: the preserved subjects keep their layer output, the edit prompt still gets v*; leftVectorKey; bad files and requests are named', async (t) => {
  const model = await tinyModel();
  const templates = await contextTemplates(model, { cacheDir: null });
  const dir = mkdtempSync(path.join(tmpdir(), 'rome-ts-preserve-'));
  try {
    const file = path.join(dir, 'facts.json');
    const facts = [
      { subject: 'Roger Federer', object: 'tennis' },
      { subject: 'Lionel Messi', object: 'soccer' },
      { subject: 'Serena Williams', object: 'tennis' },
      { subject: 'Tiger Woods', object: 'golf' },
    ];
    writeFileSync(file, JSON.stringify({ facts }));
    const req: EditRequest = { ...REQ, targetTrue: 'soccer' };
    t.deepEqual(preservedFactsFor(loadPreservedFacts(file), { ...req, targetTrue: 'tennis' }, 8).map((f) => f.subject), ['Roger Federer', 'Serena Williams']);
    const kept = { ...req, targetTrue: 'tennis' };
    const h = await edit(model, kept, { layer: 0, rightVectorKey: 'bare-prompt', preserveFacts: file }, { solver: await covSolver(model), templates });
    const p = mlpProjParams(0);
    const w1 = model.getParam(p.weight).dataSync() as Float32Array;
    const b = model.getParam(p.bias).dataSync() as Float32Array;
    const others = preservedKeys(model, 0, kept, preservedFactsFor(loadPreservedFacts(file), kept, 8));
    const { kBare } = computeKey(model, 0, { ...kept, target: ' Paris' }, templates);
    const afterEdit = projectKey(w1, b, kBare, model.config.nInner, model.config.nEmbd);
    const afterOthers = others.map((k) => projectKey(w1, b, k, model.config.nInner, model.config.nEmbd));
    h.restore();
    const w0 = model.getParam(p.weight).dataSync() as Float32Array;
    const vStar = h.info.vStar as number[];
    t.true(norm(Array.from(afterEdit, (x, j) => x - vStar[j]!)) / norm(vStar) < 1e-4, 'the edit prompt gets v*');
    t.deepEqual(h.info.preservedSubjects, ['Roger Federer', 'Serena Williams']);
    others.forEach((k, i) => {
      const before = projectKey(w0, b, k, model.config.nInner, model.config.nEmbd);
      const moved = norm(Array.from(afterOthers[i]!, (x, j) => x - before[j]!));
      // The unconstrained edit moves these keys by a share r of the edit; here they stay put to float32 rounding.
      t.true(moved / norm(before) < 1e-4, `preserved key ${i} moved by ${moved}`);
    });
    // leftVectorKey 'bare-prompt': u is C⁻¹k_bare, normalised, and the bare prompt still gets v*.
    const solver = await covSolver(model);
    const hb = await edit(model, kept, { layer: 0, rightVectorKey: 'bare-prompt', leftVectorKey: 'bare-prompt' }, { solver, templates });
    const wb = model.getParam(p.weight).dataSync() as Float32Array;
    hb.restore();
    const xb = solver.solve(kBare);
    const ub = Array.from(xb, (x) => x / norm(xb));
    t.true(norm(ub.map((x, i) => x - hb.u[i]!)) < 1e-5, 'u = C⁻¹k_bare / ‖C⁻¹k_bare‖');
    const vb = hb.info.vStar as number[];
    t.true(norm(Array.from(projectKey(wb, b, kBare, model.config.nInner, model.config.nEmbd), (x, j) => x - vb[j]!)) / norm(vb) < 1e-4);
    // Control: the paper's update (no preserved keys) does move them.
    const plain = await edit(model, kept, { layer: 0, rightVectorKey: 'bare-prompt' }, { solver: await covSolver(model), templates });
    const wPlain = model.getParam(p.weight).dataSync() as Float32Array;
    plain.restore();
    const movedPlain = others.map((k) => {
      const before = projectKey(w0, b, k, model.config.nInner, model.config.nEmbd);
      return norm(Array.from(projectKey(wPlain, b, k, model.config.nInner, model.config.nEmbd), (x, j) => x - before[j]!)) / norm(before);
    });
    t.true(Math.max(...movedPlain) > 1e-2, `without preservation the keys move by ${movedPlain.join(', ')}`);
    await t.throwsAsync(edit(model, REQ, { layer: 0, preserveFacts: file }, { templates }), { message: /no targetTrue/ });
    await t.throwsAsync(edit(model, req, { layer: 0, preserveFacts: path.join(dir, 'nope.json') }, { templates }), { message: /preserveFacts: .*nope\.json does not exist/ });
    writeFileSync(path.join(dir, 'bad.json'), JSON.stringify([{ subject: 'X' }]));
    await t.throwsAsync(edit(model, req, { layer: 0, preserveFacts: path.join(dir, 'bad.json') }, { templates }), { message: /bad\.json entry 0 must have non-empty string "subject" and "object"/ });
    t.throws(() => resolveRomeHparams(2, { layer: 0, preserveCount: 0 }), { message: /"preserveCount" must be an integer >= 1/ });
    t.throws(() => resolveRomeHparams(2, { layer: 0, leftVectorKey: 'bare' as 'bare-prompt' }), { message: /"leftVectorKey" must be one of "averaged", "bare-prompt"/ });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.serial('numTensors is stable over 100 edit/restore cycles', async (t) => {
  const model = await tinyModel();
  const solver = identitySolver(model.config.nInner);
  const templates = await contextTemplates(model, { cacheDir: null });
  const hp = { layer: 0, vNumGradSteps: 2 };
  (await edit(model, REQ, hp, { solver, templates })).restore(); // warm caches (masks, unembedding)
  const n0 = tf.memory().numTensors;
  for (let i = 0; i < 100; i++) (await edit(model, REQ, hp, { solver, templates })).restore();
  t.is(tf.memory().numTensors, n0);
});

test.serial('layerStats equals an independent Σ k kᵀ, caches on disk, and extends a smaller cache', async (t) => {
  const model = await tinyModel();
  const dir = mkdtempSync(path.join(tmpdir(), 'rome-stats-'));
  clearLayerStatsMemory();
  try {
    const corpus = corpusFromTexts('tiny', statsTexts);
    const full = await layerStats(model, 0, { corpus, maxTokens: null, cacheDir: dir, progress: false, batchTokens: 64 });
    // Independent: capture keys per text with model.run and sum outer products in float64.
    const n = model.config.nInner;
    const ref = new Float64Array(n * n);
    let count = 0;
    for (const text of statsTexts) {
      const r = model.run(text, { capture: ['blocks.0.mlp.key'], logits: 'none' });
      const k = r.get('blocks.0.mlp.key').dataSync();
      const T = k.length / n;
      count += T;
      for (let p = 0; p < T; p++) for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) ref[i * n + j] += k[p * n + i] * k[p * n + j];
      r.dispose();
    }
    t.is(full.meta.tokens, count);
    t.is(full.meta.samples, statsTexts.length);
    let maxRel = 0;
    const scale = Math.max(...Array.from(ref, Math.abs));
    for (let i = 0; i < ref.length; i++) maxRel = Math.max(maxRel, Math.abs(full.sum[i] - ref[i]) / scale);
    t.true(maxRel < 1e-5, `max relative difference ${maxRel}`);
    t.true(readdirSync(path.join(dir, 'tiny-rome')).some((f) => f.endsWith('.f64')));

    const dir2 = mkdtempSync(path.join(tmpdir(), 'rome-stats2-'));
    clearLayerStatsMemory();
    const part = await layerStats(model, 0, { corpus, maxSamples: 5, cacheDir: dir2, progress: false });
    t.is(part.meta.samples, 5);
    clearLayerStatsMemory();
    const ext = await layerStats(model, 0, { corpus, maxTokens: null, cacheDir: dir2, progress: false });
    t.is(ext.meta.tokens, full.meta.tokens);
    let d = 0;
    for (let i = 0; i < ref.length; i++) d = Math.max(d, Math.abs(ext.sum[i] - full.sum[i]) / scale);
    t.true(d < 1e-5, `extended vs direct ${d}`);
    rmSync(dir2, { recursive: true, force: true });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Cholesky solve matches a hand-checked system', (t) => {
  // A = [[4, 2], [2, 3]], b = [2, 1] → x = [0.5, 0].
  const a = Float64Array.from([4, 2, 2, 3]);
  t.true(choleskyInPlace(a, 2));
  const x = choleskySolve(a, 2, [2, 1]);
  t.true(Math.abs(x[0] - 0.5) < 1e-12 && Math.abs(x[1]) < 1e-12);
  t.false(choleskyInPlace(Float64Array.from([1, 2, 2, 1]), 2), 'indefinite matrix is rejected');
});

test.serial('mom2Corpus: C from a text file equals C from the same texts in memory; a bad file or value is named', async (t) => {
  const model = await tinyModel();
  const dir = mkdtempSync(path.join(tmpdir(), 'rome-ts-mom2corpus-'));
  try {
    const file = path.join(dir, 'stats.txt');
    // Blank lines are not documents.
    writeFileSync(file, statsTexts.join('\n\n') + '\n');
    clearLayerStatsMemory();
    const fromFile = await romeSolver(model, resolveRomeHparams(2, { layer: 0, mom2Corpus: file, mom2Tokens: null }), { cacheDir: null, progress: false });
    const inMemory = await covSolver(model);
    t.is(fromFile.tokens, inMemory.tokens);
    const k = Array.from({ length: model.config.nInner }, (_, i) => Math.sin(i + 1));
    const a = fromFile.solve(k);
    const b = inMemory.solve(k);
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]) / (Math.abs(b[i]) + 1e-9));
    t.true(diff < 1e-9, `max relative difference ${diff}`);
    const missing = path.join(dir, 'nope.txt');
    const e = await t.throwsAsync(romeSolver(model, resolveRomeHparams(2, { layer: 0, mom2Corpus: missing }), { cacheDir: null, progress: false }));
    t.regex(e?.message ?? '', /mom2Corpus: .*nope\.txt does not exist/);
    writeFileSync(path.join(dir, 'bad.txt'), Buffer.from([0x66, 0xff, 0xfe, 0x0a]));
    const e2 = await t.throwsAsync(romeSolver(model, resolveRomeHparams(2, { layer: 0, mom2Corpus: path.join(dir, 'bad.txt') }), { cacheDir: null, progress: false }));
    t.regex(e2?.message ?? '', /mom2Corpus: .*bad\.txt is not UTF-8 text/);
    t.throws(() => resolveRomeHparams(2, { layer: 0, mom2Corpus: 5 as unknown as string }), { message: /mom2Corpus/ });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.serial('mom2Stats: shipped statistics give the same C as computing it; any mismatch with the model or hparams is refused', async (t) => {
  const model = await tinyModel();
  const dir = mkdtempSync(path.join(tmpdir(), 'rome-ts-mom2stats-'));
  try {
    const stats = await layerStats(model, 0, { corpus: corpusFromTexts('tiny', statsTexts), maxTokens: null, cacheDir: null, progress: false });
    const base = path.join(dir, 'L0');
    saveLayerStatsFile(stats, base);
    t.throws(() => saveLayerStatsFile(stats, base), { message: /exists/ });
    const hp = (o: Record<string, unknown>) => resolveRomeHparams(2, { layer: 0, mom2Tokens: null, mom2Stats: `${base}.json`, ...o });
    const solver = await romeSolver(model, hp({}), { cacheDir: null, progress: false });
    const k = Array.from({ length: model.config.nInner }, (_, i) => Math.cos(i));
    const a = solver.solve(k);
    const b = (await covSolver(model)).solve(k);
    t.deepEqual(Array.from(a), Array.from(b));
    const refuse = async (o: Record<string, unknown>, re: RegExp) => {
      const e = await t.throwsAsync(romeSolver(model, hp(o), { cacheDir: null, progress: false }));
      t.regex(e?.message ?? '', re);
    };
    await refuse({ layer: 1 }, /mom2Stats: .*L0\.json holds layer 0, but the edit is at layer 1/);
    // The CLI's --layer override drops statistics shipped for another layer (C is then computed there), with a note.
    const hpFile = path.join(dir, 'hp.json');
    writeFileSync(hpFile, JSON.stringify({ layer: 0, mom2Tokens: null, mom2Stats: `${base}.json` }));
    t.is(methodHparamsFor(model, 'rome', hpFile).rome?.mom2Stats, `${base}.json`);
    t.is(methodHparamsFor(model, 'rome', hpFile, 0).rome?.mom2Stats, `${base}.json`);
    let note = '';
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => ((note += s), true)) as typeof process.stderr.write;
    try {
      t.is(methodHparamsFor(model, 'rome', hpFile, 1).rome?.mom2Stats, null);
    } finally {
      process.stderr.write = write;
    }
    t.regex(note, /--layer 1: mom2Stats \(.*L0\.json\) holds layer 0's statistics; computing C at layer 1 from the default corpus/);
    t.true(stats.meta.exhausted);
    await refuse({ mom2Tokens: stats.meta.tokens - 1 }, /holds \d+ tokens, but mom2Tokens is/);
    // The tiny corpus ran out, so asking for more tokens than it holds is consistent.
    t.is((await romeSolver(model, hp({ mom2Tokens: stats.meta.tokens + 100 }), { cacheDir: null, progress: false })).tokens, stats.meta.tokens);
    await refuse({ mom2Corpus: 'other.txt' }, /was computed on "tiny", but mom2Corpus is other\.txt/);
    await refuse({ mom2Stats: path.join(dir, 'none') }, /mom2Stats: .*none\.json does not exist/);
    const meta = JSON.parse(readFileSync(`${base}.json`, 'utf8')) as Record<string, unknown>;
    writeFileSync(`${base}.json`, JSON.stringify({ ...meta, weightsHash: 'x'.repeat(64) }));
    await refuse({}, /was computed for other weights/);
    writeFileSync(`${base}.json`, JSON.stringify(meta));
    const f64 = readFileSync(`${base}.f64`);
    f64[8] ^= 1;
    writeFileSync(`${base}.f64`, f64);
    await refuse({}, /L0\.f64 does not match the checksum/);
    writeFileSync(`${base}.f64`, f64.subarray(0, 16));
    await refuse({}, /L0\.f64 has 16 bytes, expected/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
