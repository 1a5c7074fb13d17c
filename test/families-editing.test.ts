import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { TINY_FAMILIES, tinyFamilyModel } from './helpers/familyTiny.js';
import { TINY_SENTENCES } from './helpers/romeTiny.js';
import { TraceSession, severedTrace, tracePrompt, type TracePromptResult } from '../lib/trace/index.js';
import {
  computeKey,
  corpusFromTexts,
  edit,
  identitySolver,
  layerStats,
  mlpProjParams,
  projectKey,
  weightsHash,
  type EditRequest,
} from '../lib/rome/index.js';
import { ftEdit, ftlEdit, knEdit } from '../lib/baselines/index.js';
import { evalCounterFactCase, evalZsreCase, runCounterFactEval, summarize } from '../lib/eval/index.js';
import type { CounterFactRecord } from '../lib/data/counterfact.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const PROMPT = 'The sport of Lionel Messi';
const SUBJECT = 'Lionel Messi';
const REQ: EditRequest = { prompt: 'The sport of {}', subject: SUBJECT, target: 'Paris', targetTrue: 'French' };
const TEMPLATES = ['{}', 'Tokyo is the capital. {}', 'Apple was founded. {}'];
const EDITED_MODULE = { gpt_neox: 'layers.0.mlp.dense_4h_to_h', llama: 'layers.0.mlp.down_proj', qwen2: 'layers.0.mlp.down_proj', gptj: 'h.0.mlp.fc_out' };

function maxDiff(a: TracePromptResult, b: TracePromptResult): number {
  let m = 0;
  for (const k of ['hidden', 'mlp', 'attn'] as const) {
    const x = a.results[k]!.scores;
    const y = b.results[k]!.scores;
    x.forEach((row, t) => row.forEach((v, l) => (m = Math.max(m, Math.abs(v - y[t]![l]!)))));
  }
  return m;
}

function norm(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return Math.sqrt(s);
}

for (const family of TINY_FAMILIES) {
  test.serial(`${family}: causal trace — incremental = naive, severed paths agree, restoring every state gives p*`, async (t) => {
    const m = await tinyFamilyModel(family);
    const o = { prompt: PROMPT, subject: SUBJECT, noise: 3, samples: 3, seed: 2 };
    const inc = await tracePrompt(m, { ...o, method: 'incremental' });
    const naive = await tracePrompt(m, { ...o, method: 'naive' });
    const d = maxDiff(inc, naive);
    t.true(d <= 1e-5, `max |incremental − naive| = ${d}`);
    t.true(inc.pStar - inc.pLow > 0.05, `noise has an effect (p* ${inc.pStar}, p_low ${inc.pLow})`);
    const hidden = inc.results.hidden!.scores.flat();
    t.true(Math.max(...hidden) - Math.min(...hidden) > 0.05, 'restorations move the score');
    t.log(`p* ${inc.pStar.toFixed(3)}, p_low ${inc.pLow.toFixed(3)}, |incremental − naive| ${d.toExponential(1)}`);
    const a = await severedTrace(m, { ...o, token: 4, method: 'incremental' });
    const b = await severedTrace(m, { ...o, token: 4, method: 'naive' });
    for (const k of ['ordinary', 'mlpSevered', 'attnSevered'] as const) {
      a[k].forEach((v, l) => t.true(Math.abs(v - b[k][l]!) <= 1e-5, `${k}[${l}]: ${v} vs ${b[k][l]}`));
    }
    const s = await TraceSession.create(m, { prompt: PROMPT, subject: SUBJECT }, { noise: 3, samples: 3 });
    try {
      const L = m.config.nLayer;
      const rs = Array.from({ length: L }, (_, l) => Array.from({ length: s.length }, (_, p) => ({ kind: 'hidden' as const, layer: l, position: p })));
      for (const method of ['incremental', 'naive'] as const) {
        const got = await s.score(rs, { method });
        got.forEach((v, i) => t.true(Math.abs(v - s.pStar) < 1e-5, `${method} layer ${i}: ${v} vs p* ${s.pStar}`));
      }
      t.deepEqual(await s.score([[]]), [s.pLow]);
    } finally {
      s.dispose();
    }
  });

  test.serial(`${family}: ROME rewrites ${EDITED_MODULE[family]}: k*ᵀW′ + b = v* (C = I and C from layerStats), exact restore, no leaks`, async (t) => {
    const model = await tinyFamilyModel(family);
    const p = mlpProjParams(0, model.config);
    t.is(p.weight, `${EDITED_MODULE[family]}.weight`);
    const h0 = weightsHash(model);
    const statsTexts = TINY_SENTENCES.flatMap((x) => x.split('. '));
    const cov = (await layerStats(model, 0, { corpus: corpusFromTexts('tiny', statsTexts), maxTokens: null, cacheDir: null, progress: false })).solver();
    for (const solver of [identitySolver(model.config.nInner), cov]) {
      const before = model.scoreTargets([{ prompt: PROMPT, target: ' Paris' }])[0]!.prob;
      const h = await edit(model, REQ, { layer: 0, vNumGradSteps: 8 }, { solver, templates: TEMPLATES });
      const { kStar } = computeKey(model, 0, { ...REQ, target: ' Paris' }, h.info.nTemplates === TEMPLATES.length ? TEMPLATES : ['{}']);
      const vStar = h.info.vStar as number[];
      const w = model.getParam(p.weight).dataSync() as Float32Array;
      const b = p.bias ? (model.getParam(p.bias).dataSync() as Float32Array) : new Float32Array(model.config.nEmbd);
      const out = projectKey(w, b, kStar, model.config.nInner, model.config.nEmbd);
      const err = norm(Array.from(out, (x, j) => x - vStar[j]!)) / norm(vStar);
      t.true(err < 1e-4, `${solver.kind}: relative error ${err}`);
      const after = model.scoreTargets([{ prompt: PROMPT, target: ' Paris' }])[0]!.prob;
      t.true(after > before, `p(Paris) ${before} → ${after}`);
      t.log(`${solver.kind}: rel. error ${err.toExponential(1)}, p(Paris) ${before.toExponential(2)} → ${after.toExponential(2)}`);
      h.restore();
      t.is(weightsHash(model), h0);
    }
    const n0 = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) (await edit(model, REQ, { layer: 0, vNumGradSteps: 2 }, { solver: identitySolver(model.config.nInner), templates: TEMPLATES })).restore();
    t.is(tf.memory().numTensors, n0);
    t.is(weightsHash(model), h0);
  });

  test.serial(`${family}: FT lowers the target NLL, FT+L stays within ε, KN edits only its neurons' rows; all restore exactly`, async (t) => {
    const model = await tinyFamilyModel(family);
    const h0 = weightsHash(model);
    const name = mlpProjParams(0, model.config).weight;
    const nll0 = model.scoreTargets([{ prompt: PROMPT, target: ' Paris' }])[0]!.nll;
    const ft = await ftEdit(model, REQ, { layer: 0, lr: 5e-2, numSteps: 10 });
    const nll1 = model.scoreTargets([{ prompt: PROMPT, target: ' Paris' }])[0]!.nll;
    t.true(nll1 < nll0 - 0.5, `FT: ${nll0} → ${nll1}`);
    t.log(`FT NLL ${nll0.toFixed(2)} → ${nll1.toFixed(2)}`);
    ft.restore();
    t.is(weightsHash(model), h0);
    const w0 = (model.getParam(name).dataSync() as Float32Array).slice();
    const eps = 2e-3;
    const ftl = await ftlEdit(model, REQ, { layer: 0, lr: 5e-3, normConstraint: eps, numSteps: 5 });
    const w1 = model.getParam(name).dataSync() as Float32Array;
    let max = 0;
    for (let i = 0; i < w0.length; i++) max = Math.max(max, Math.abs(w1[i]! - w0[i]!));
    t.true(max <= eps * (1 + 1e-5) && max > eps / 2, `FT+L max |Δw| ${max}`);
    ftl.restore();
    t.is(weightsHash(model), h0);
    const before = new Map(model.params.names().map((n) => [n, (model.getParam(n).dataSync() as Float32Array).slice()]));
    const kn = await knEdit(model, REQ, { steps: 8 });
    const neurons = kn.info.neurons as [number, number][];
    t.true(neurons.length > 0);
    const d = model.config.nEmbd;
    for (const n of model.params.names()) {
      const a = before.get(n)!;
      const b = model.getParam(n).dataSync() as Float32Array;
      const layer = [0, 1].find((l) => mlpProjParams(l, model.config).weight === n);
      for (let k = 0; k < a.length; k++) {
        const row = Math.floor(k / d);
        const selected = layer !== undefined && neurons.some(([l, i]) => l === layer && i === row);
        if (!selected && a[k] !== b[k]) {
          t.fail(`${n}[${k}] changed but is not a selected neuron's row`);
          return;
        }
      }
    }
    kn.restore();
    t.is(weightsHash(model), h0);
    const n0 = tf.memory().numTensors;
    (await ftEdit(model, REQ, { layer: 0, numSteps: 2 })).restore();
    (await knEdit(model, REQ, { steps: 4 })).restore();
    t.is(tf.memory().numTensors, n0);
  });
}

test.serial('LLaMA with a SentencePiece-style tokenizer: <s> first, targets as continuations, trace and ROME line up', async (t) => {
  const model = await tinyFamilyModel('llama', { metaspace: true });
  const tok = model.tokenizer!;
  const prompt = 'The Eiffel Tower is located in the city of';
  const ids = model.encode(prompt);
  t.is(ids[0], tok.bosId!, 'the tokenizer template adds <s>');
  t.deepEqual(tok.tokenRange(prompt, 'Eiffel Tower'), { start: 2, end: 4 });
  // " Paris" after a prompt is the single piece "▁Paris", as in encode("... Paris").
  const whole = model.encode(`${prompt} Paris`);
  t.deepEqual(model.encodeContinuation(' Paris'), whole.slice(-1));
  const [score] = model.scoreTargets([{ prompt, target: ' Paris' }]);
  t.deepEqual(score!.targetIds, whole.slice(-1));
  const r = await tracePrompt(model, { prompt, subject: 'Eiffel Tower', noise: 3, samples: 2, kinds: ['hidden'] });
  t.deepEqual(r.subjectRange, { start: 2, end: 4 });
  t.is(r.results.hidden!.scores.length, ids.length);
  const h = await edit(model, { prompt: '{} is located in the city of', subject: 'The Eiffel Tower', target: 'Paris' }, { layer: 0, vNumGradSteps: 8 }, { solver: identitySolver(model.config.nInner), templates: ['{}'] });
  t.deepEqual(h.info.targetIds, whole.slice(-1));
  // v* was optimised on "<s> The Eiffel Tower is located in the city of" → "▁Paris"; the layer now maps k* to it.
  t.true(h.losses[h.losses.length - 1]!.loss < h.losses[0]!.loss - 1, 'the v* optimisation lowered its loss');
  const { kStar } = computeKey(model, 0, { prompt: '{} is located in the city of', subject: 'The Eiffel Tower', target: ' Paris' }, ['{}']);
  const p = mlpProjParams(0, model.config);
  const out = projectKey(model.getParam(p.weight).dataSync() as Float32Array, new Float32Array(model.config.nEmbd), kStar, model.config.nInner, model.config.nEmbd);
  const vStar = h.info.vStar as number[];
  t.true(norm(Array.from(out, (x, j) => x - vStar[j]!)) / norm(vStar) < 1e-4);
  h.restore();
});

const REC: CounterFactRecord = {
  caseId: 7,
  subject: 'Lionel Messi',
  prompt: 'The sport of {}',
  targetTrue: 'French',
  targetNew: 'Paris',
  relationId: null,
  paraphrasePrompts: ['Tokyo is the capital of Japan. The sport of Lionel Messi'],
  neighborhoodPrompts: ['The sport of Michael Jordan'],
  attributePrompts: [],
  generationPrompts: ['Lionel Messi is'],
  format: 'rome',
  split: null,
  relationInferred: false,
};

for (const family of TINY_FAMILIES) {
  test.serial(`${family}: the CounterFact protocol (ROME, FT) and zsRE metrics run; pre equals the unedited model`, async (t) => {
    const model = await tinyFamilyModel(family);
    const h0 = weightsHash(model);
    const dir = mkdtempSync(path.join(tmpdir(), `rome-fam-${family}-`));
    try {
      const unedited = await evalCounterFactCase(model, REC);
      for (const method of ['rome', 'ft'] as const) {
        await runCounterFactEval(model, [REC], {
          method,
          outDir: path.join(dir, method),
          hparams: { rome: { layer: 0, vNumGradSteps: 8 }, romeOptions: { solver: identitySolver(model.config.nInner), templates: TEMPLATES }, ft: { layer: 0, lr: 5e-2, numSteps: 10 } },
        });
      }
      const { readCaseResult } = await import('../lib/eval/runner.js');
      for (const method of ['rome', 'ft']) {
        const c = readCaseResult<typeof unedited>(path.join(dir, method, 'case_7.json'));
        t.deepEqual(c.pre, unedited);
        t.true(c.post.rewrite.nllNew < c.pre.rewrite.nllNew, `${method}: ${c.pre.rewrite.nllNew} → ${c.post.rewrite.nllNew}`);
      }
      t.deepEqual(summarize([path.join(dir, 'rome'), path.join(dir, 'ft')]).map((r) => r.name), ['unedited', 'ROME', 'FT']);
      t.is(weightsHash(model), h0, 'the protocol restores the model');
      const z = evalZsreCase(model, { index: 0, subject: 'Lionel Messi', prompt: 'The sport of Lionel Messi', template: 'The sport of {}', rephrase: 'Lionel Messi', target: 'Paris', answers: ['French'], locPrompt: 'The capital of France', locAnswer: 'Paris' });
      for (const v of Object.values(z)) t.true(v >= 0 && v <= 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
