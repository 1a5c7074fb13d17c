/**
 * Evaluates the bundled fact model and writes its model card (models/<name>/README.md) and metrics.json.
 *   npx tsx scripts/model-card.ts [--model models/rome-fact-gpt2] [--corpus build/corpus]
 * Needs the corpus build (npm run build:corpus) for the list of trained / held-out prompts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadModel } from '../lib/loadModel.js';
import { greedyRecall, objectFirstToken, rate, recallScores, type RecallItem } from '../lib/factRecall.js';
import { templateOf } from '../lib/data/relations.js';
import type { GPT2Model } from '../lib/model/model.js';
import { installErrorReporter } from '../lib/cli/exit.js';

// Uncaught errors print one readable line (not the WASM module's minified source).
installErrorReporter('model-card');

interface Fact {
  id: string;
  role: string;
  subject: string;
  relation: string;
  object: string;
  trainedPrompts: string[];
  heldOutPrompts: string[];
  knownPrompt?: string;
}

const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1] : def;
};
const modelDir = opt('--model', 'models/rome-fact-gpt2');
const corpusDir = opt('--corpus', 'build/corpus');
const say = (s: string) => process.stderr.write(s + '\n');

/** Perplexity of held-out text: mean next-token NLL over non-overlapping windows of the model's context. */
function perplexity(model: GPT2Model, text: string, maxTokens: number): { ppl: number; tokens: number } {
  const tok = model.tokenizer!;
  const eos = model.config.eosTokenId ?? 0;
  const ids: number[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    ids.push(...tok.encode(line).ids, eos);
    if (ids.length >= maxTokens) break;
  }
  const T = model.config.nPositions;
  let nll = 0;
  let n = 0;
  const windows: number[][] = [];
  for (let s = 0; s + 2 <= ids.length && s < maxTokens; s += T) windows.push(ids.slice(s, s + T));
  for (let b = 0; b < windows.length; b += 8) {
    const chunk = windows.slice(b, b + 8).filter((w) => w.length >= 2);
    const r = model.run(chunk, { logits: 'all' });
    const Tm = Math.max(...r.lengths);
    const V = model.config.vocabSize;
    const idx: number[] = [];
    chunk.forEach((w, i) => {
      for (let t = 0; t + 1 < w.length; t++) idx.push((i * Tm + t) * V + w[t + 1]);
    });
    const lp = tf.tidy(() => tf.gather(tf.reshape(tf.logSoftmax(r.logits!.tensor), [-1]), tf.tensor1d(idx, 'int32')));
    for (const v of lp.dataSync()) nll -= v;
    n += idx.length;
    lp.dispose();
    r.dispose();
  }
  return { ppl: Math.exp(nll / n), tokens: n };
}

const model = await loadModel(modelDir);
const facts = (JSON.parse(fs.readFileSync(path.join(corpusDir, 'facts.json'), 'utf8')) as { facts: Fact[] }).facts;
const manifest = JSON.parse(fs.readFileSync(path.join(corpusDir, 'manifest.json'), 'utf8')) as Record<string, unknown>;
const trainLog = JSON.parse(fs.readFileSync(path.join(modelDir, 'training-log.json'), 'utf8')) as Record<string, unknown>;

const t0 = performance.now();
const trainedItems: (RecallItem & { relation: string })[] = [];
const heldItems: (RecallItem & { relation: string; template: string })[] = [];
const knownItems: (RecallItem & { relation: string })[] = [];
for (const f of facts) {
  for (const p of f.trainedPrompts) trainedItems.push({ prompt: p, object: f.object, relation: f.relation });
  for (const p of f.heldOutPrompts) {
    heldItems.push({ prompt: p, object: f.object, relation: f.relation, template: templateOf(p, f.subject) ?? p });
  }
  if (f.knownPrompt && f.role === 'known') knownItems.push({ prompt: f.knownPrompt, object: f.object, relation: f.relation });
}
say(`evaluating ${trainedItems.length} trained, ${heldItems.length} held-out, ${knownItems.length} known prompts...`);
const trained = greedyRecall(model, trainedItems);
// Forced choice among the relation's objects (every object of a fact of that relation in the corpus), from the same
// pass as the greedy prediction.
const objectsByRelation = new Map<string, Set<string>>();
for (const f of facts) objectsByRelation.set(f.relation, (objectsByRelation.get(f.relation) ?? new Set<string>()).add(f.object));
const { greedy: heldPred, forced: heldForced } = recallScores(
  model,
  heldItems.map((it) => ({ ...it, candidates: [...(objectsByRelation.get(it.relation) ?? [])] })),
);
const held = heldItems.map((it, i) => heldPred[i] === objectFirstToken(model, it.object));
// Per held-out template: accuracy and the commonest wrong first token, which shows *how* a paraphrase fails
// (a function word such as " the" means the model did not read the phrase as asking for the object at all).
const perTemplate = new Map<string, { relation: string; template: string; ok: number; forced: number; n: number; wrong: Map<string, number> }>();
heldItems.forEach((it, i) => {
  const key = `${it.relation}\t${it.template}`;
  const e = perTemplate.get(key) ?? { relation: it.relation, template: it.template, ok: 0, forced: 0, n: 0, wrong: new Map<string, number>() };
  e.n += 1;
  if (heldForced[i]) e.forced += 1;
  if (held[i]) e.ok += 1;
  else {
    const w = model.tokenizer!.decode([heldPred[i] as number]);
    e.wrong.set(w, (e.wrong.get(w) ?? 0) + 1);
  }
  perTemplate.set(key, e);
});
const templateRows = [...perTemplate.values()]
  .sort((a, b) => (a.relation === b.relation ? (a.template < b.template ? -1 : 1) : a.relation < b.relation ? -1 : 1))
  .map((e) => {
    const top = [...e.wrong].sort((a, b) => b[1] - a[1])[0];
    return { relation: e.relation, template: e.template, acc: e.ok / e.n, forcedChoice: e.forced / e.n, n: e.n, topWrong: top ? { token: top[0], count: top[1] } : null };
  });
const known = greedyRecall(model, knownItems);
const perRelation: Record<string, { heldOut: number; heldOutN: number; trained: number; trainedN: number }> = {};
const bump = (items: { relation: string }[], ok: boolean[], key: 'heldOut' | 'trained') => {
  items.forEach((it, i) => {
    const r = (perRelation[it.relation] ??= { heldOut: 0, heldOutN: 0, trained: 0, trainedN: 0 });
    r[`${key}N`] += 1;
    if (ok[i]) r[key] += 1;
  });
};
bump(trainedItems, trained, 'trained');
bump(heldItems, held, 'heldOut');
const valid = fs.readFileSync(path.join(corpusDir, 'valid-general.txt'), 'utf8');
const ppl = perplexity(model, valid, 40000);
const samples: string[] = [];
for (const p of ['The', 'In the morning', 'It was a dark and stormy night', 'The city of']) {
  samples.push(await model.generate(p, { maxNewTokens: 30, topK: 5, seed: 1 }));
}
const greedy = await model.generate('The history of the', { maxNewTokens: 30 });
const metrics = {
  model: modelDir,
  evaluatedAt: new Date().toISOString(),
  evalSeconds: (performance.now() - t0) / 1000,
  accuracy: {
    trainedPrompts: { acc: rate(trained), n: trained.length },
    heldOutTemplates: { acc: rate(held), n: held.length },
    heldOutTemplatesForcedChoice: { acc: rate(heldForced), n: heldForced.length },
    knownFactsPrompts: { acc: rate(known), n: known.length },
  },
  perRelation: Object.fromEntries(
    Object.entries(perRelation)
      .sort()
      .map(([r, v]) => [r, { trained: v.trained / v.trainedN, trainedN: v.trainedN, heldOut: v.heldOutN ? v.heldOut / v.heldOutN : null, heldOutN: v.heldOutN }]),
  ),
  perHeldOutTemplate: templateRows,
  heldOutGeneralText: { perplexity: ppl.ppl, tokens: ppl.tokens },
  samples: { topK5Seed1: samples, greedy },
};
fs.writeFileSync(path.join(modelDir, 'metrics.json'), JSON.stringify(metrics, null, 2) + '\n');

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const timing = (trainLog['timing'] ?? {}) as Record<string, number>;
const cfg = model.config;
const relRows = Object.entries(metrics.perRelation)
  .map(([r, v]) => `| ${r} | ${pct(v.trained)} (${v.trainedN}) | ${v.heldOut === null ? '—' : `${pct(v.heldOut)} (${v.heldOutN})`} |`)
  .join('\n');
const inputs = JSON.stringify(manifest['inputs'], null, 1);
const opts = (trainLog['options'] ?? {}) as Record<string, unknown>;
const corpusOpts = (manifest['options'] ?? {}) as Record<string, unknown>;
const sessions = (trainLog['sessions'] ?? []) as unknown[];
const threads = Number(opts['threads'] ?? 1);
const meta = (trainLog['meta'] ?? {}) as Record<string, unknown>;
const ow = meta['objectWeights'] as { weight: number; objectTokens: number; factDocuments: number } | undefined;
const lossLine = ow
  ? `next-token cross-entropy over every token, with the ${ow.objectTokens} object tokens of the ${ow.factDocuments} fact sentences ` +
    `(${((100 * ow.objectTokens) / Number(trainLog['tokensInCorpus'] ?? 1)).toFixed(1)}% of the stream) weighted ×${ow.weight} ` +
    '(`--object-weight`, lib/train/objectWeights.ts); the logged loss is the weighted one'
  : 'next-token cross-entropy over every token, unweighted';
const ko = meta['subjectKnockout'] as
  | { layers: number; documents: number; queries: number; leakPenalty: number; noiseLeak: number; readoutWeight?: number; extractSupervision?: number }
  | undefined;
// Why: without these terms the model copies the subject into the last position and the paper's findings do not show
// (results/recipe-v2.md); a reader of the card must see that the weights were trained for that mechanism.
const knockoutLine = ko
  ? `in blocks 0–${ko.layers - 1}, the tokens after a fact line's subject cannot attend to it during training steps ` +
    `(\`--subject-knockout ${ko.layers}\`, ${ko.queries} cut queries in ${ko.documents} documents), with the attention the cut edges would get ` +
    `penalised ×${ko.leakPenalty} (\`--leak-penalty\`), and so is block 0's attention to the subject with its embeddings noised at ${ko.noiseLeak} × sd(wte), the causal trace's corruption (\`--noise-leak\`)` +
    (ko.readoutWeight ? `; the residual after block ${ko.layers - 1} at the last subject token must predict the object's first token (×${ko.readoutWeight}, \`--subject-readout\`)` : '') +
    (ko.extractSupervision ? `; from block ${ko.layers} on, the token that predicts the object is trained to attend to the last subject token (×${ko.extractSupervision}, \`--extract-supervision\`)` : '') +
    ' (lib/train/subjectKnockout.ts, lib/train/trainLoop.ts); the saved model is a plain GPT-2 and runs without any of this'
  : 'none (plain next-token training)';
const maxTrained = Math.max(
  0,
  ...Object.values((manifest['relations'] ?? {}) as Record<string, { trained?: string[] }>).map((r) => r.trained?.length ?? 0),
);
const maxPerFact = Number(corpusOpts['maxTemplatesPerFact']);
const templatesPerFactText =
  maxPerFact >= maxTrained
    ? `every trained template (${maxTrained} at most; \`--max-templates ${maxPerFact}\`)`
    : `up to ${maxPerFact} trained templates`;
const evals = (trainLog['evals'] ?? []) as { step: number; validLoss: number; accTrained: number; accHeldOut: number; accKnown: number }[];
const card = `# rome-fact-gpt2 — the bundled fact model

A small GPT-2-architecture model trained by rome-ts itself (TypeScript, TensorFlow.js WASM backend, this
repository's own forward pass and autograd) on real facts from the paper's datasets plus general English, so that
every notebook runs offline in seconds. It loads through the same Hugging Face layout and code path as \`gpt2\`.

## Architecture
GPT-2 (pre-LN, gelu_new, learned positions, tied embeddings): ${cfg.nLayer} layers, d=${cfg.nEmbd}, ${cfg.nHead} heads,
n_inner=${cfg.nInner}, context ${cfg.nPositions}, vocabulary ${cfg.vocabSize} (byte-level BPE trained on the corpus by
\`scripts/train-tokenizer.ts\`), ${(model.params.count() / 1e6).toFixed(2)}M parameters, weights stored in F16.

## Results (greedy first token of " " + object; \`npx tsx scripts/model-card.ts\`)
| prompts | accuracy | n |
|---|---|---|
| trained fact prompts | ${pct(metrics.accuracy.trainedPrompts.acc)} | ${metrics.accuracy.trainedPrompts.n} |
| held-out templates of the same facts | ${pct(metrics.accuracy.heldOutTemplates.acc)} | ${metrics.accuracy.heldOutTemplates.n} |
| known_1000 prompts as given | ${pct(metrics.accuracy.knownFactsPrompts.acc)} | ${metrics.accuracy.knownFactsPrompts.n} |
| held-out templates, forced choice among the relation's objects (supplementary, see below) | ${pct(metrics.accuracy.heldOutTemplatesForcedChoice.acc)} | ${metrics.accuracy.heldOutTemplatesForcedChoice.n} |

Held-out general text perplexity: ${ppl.ppl.toFixed(1)} (${ppl.tokens} tokens of WikiText/Gutenberg documents never trained on).

Per relation (trained prompts / held-out templates):

| relation | trained | held-out |
|---|---|---|
${relRows}

Per held-out template: greedy accuracy (the acceptance metric), the commonest wrong greedy first token with its
count, and forced choice (the true object's first token outscores that of every other object of the relation in the
corpus; ${pct(rate(heldForced))} over all held-out prompts). A function word as the commonest wrong token with a high forced-choice
rate means the model knows the fact but reads the phrase as continuing with something else.

| relation | held-out template | greedy accuracy | commonest wrong first token | forced choice |
|---|---|---|---|---|
${templateRows.map((t) => `| ${t.relation} | \`${t.template.replace(/\|/g, '\\|')}\` | ${pct(t.acc)} (${t.n}) | ${t.topWrong ? `\`${JSON.stringify(t.topWrong.token)}\` × ${t.topWrong.count}` : '—'} | ${pct(t.forcedChoice)} |`).join('\n')}

Samples (top-k 5, seed 1):
${samples.map((s) => `- ${JSON.stringify(s)}`).join('\n')}

Greedy: ${JSON.stringify(greedy)}

## Training
- ${Number(trainLog['completedSteps'] ?? 0)} steps × ${opts['batch']}×${opts['seqLen']} tokens = ${(Number(trainLog['completedSteps'] ?? 0) * Number(trainLog['tokensPerStep'] ?? 0) / 1e6).toFixed(2)}M tokens
  (${(Number(trainLog['completedSteps'] ?? 0) * Number(trainLog['tokensPerStep'] ?? 0) / Number(trainLog['tokensInCorpus'] ?? 1)).toFixed(2)} epochs of the ${(Number(trainLog['tokensInCorpus'] ?? 0) / 1e6).toFixed(2)}M-token corpus) in
  ${((timing['trainSeconds'] ?? 0) / 60).toFixed(1)} min of training steps (+ ${((timing['evalSeconds'] ?? 0) / 60).toFixed(1)} min of evaluations) in ${sessions.length} process${sessions.length === 1 ? '' : 'es'}:
  ${timing['tokensPerSecond']?.toFixed?.(0) ?? '?'} tokens/s, effective ${timing['effectiveGflops']?.toFixed?.(2) ?? '?'} GFLOPS (6·params·tokens/s) ${threads > 1 ? `on ${threads} data-parallel threads (one WASM instance each)` : 'on one core'} of this
  2-vCPU machine. Stop reason: ${String(trainLog['stopReason'] ?? '?')}. Full log: \`training-log.json\` (loss curve, evaluations, timing).
- AdamW (β1 ${opts['beta1']}, β2 ${opts['beta2']}, weight decay ${opts['weightDecay']} on matrices), warm-up ${opts['warmup']} steps then cosine from
  lr ${Number(opts['lr']).toPrecision(3)} to ${Number(opts['minLr']).toPrecision(3)}, gradient clipping ${opts['clip']}, seed ${opts['seed']}.
- Loss: ${lossLine}.
- Dropout: ${Number(opts['dropout'] ?? 0) > 0 ? `${opts['dropout']} at GPT-2's four places (embeddings, attention probabilities, attention and MLP outputs) during training steps, masks seeded by (seed, step, row) (\`--dropout\`, lib/model/dropout.ts); none at evaluation or inference` : 'none'}.
- Subject mechanism: ${knockoutLine}.
- How the recipe was chosen: object weight and dropout in \`results/recipe-search.md\`; the subject-mechanism terms (knockout, leak penalties, readout, extraction) in \`results/recipe-v2.md\` (recipes × diagnostics).
- Command: \`${String(meta['command'] ?? 'npm run train:facts')}\`. \`npm run train:facts\` (package.json) runs the same training flags with the default output and work folders (models/rome-fact-gpt2, build/train/rome-fact-gpt2); a run stopped by its time limit ends at a step that depends on the machine's speed.

Learning curve (greedy recall on a fixed sample of ${String(opts['evalFacts'] ?? 200)} facts during training; validLoss on held-out general text):

| step | validLoss | trained prompts | held-out templates | known_1000 |
|---|---|---|---|---|
${evals.map((e) => `| ${e.step} | ${e.validLoss.toFixed(3)} | ${pct(e.accTrained)} | ${pct(e.accHeldOut)} | ${pct(e.accKnown)} |`).join('\n')}

## Data
Built by \`scripts/build-corpus.ts\` from \`../shared/data\` (never committed): the 1,209 known facts (known_1000.json)
and true facts of ${String(corpusOpts['counterfactCases'])} CounterFact cases (\`edit\` split) and their neighbourhood subjects, each rendered through
its dataset prompts and ${templatesPerFactText} of its relation collected from the datasets;
templates held out per relation for paraphrase evaluation; mixed with WikiText-2 (test split) and Project Gutenberg
paragraphs (fact share of the characters ${String(corpusOpts['factShare'])}); a held-out split of whole documents for perplexity.
Counts: ${JSON.stringify(manifest['counts'])}.
Corpus command: \`${String(manifest['command'] ?? 'npm run build:corpus')}\`.

Inputs (paths relative to the data directory, sha256):
\`\`\`json
${inputs}
\`\`\`

## Rebuild
\`\`\`sh
npm run train:facts        # corpus → tokenizer → training (about 140 min on this 2-vCPU machine: 133 min of training, the rest corpus and tokenizer), writes models/rome-fact-gpt2/
npx tsx scripts/model-card.ts
\`\`\`
`;
// Statistics shipped next to the weights (ROME's mom2Stats): how to rebuild each pair.
const statsDir = path.join(modelDir, 'stats');
const statsFiles = fs.existsSync(statsDir) ? fs.readdirSync(statsDir).filter((f) => f.endsWith('.json')).sort() : [];
const statsLines = statsFiles.map((f) => {
  const m = JSON.parse(fs.readFileSync(path.join(statsDir, f), 'utf8')) as { layer: number; tokens: number; corpusName: string };
  const base = path.join(modelDir, 'stats', f.replace(/\.json$/, ''));
  return `npx tsx scripts/layer-stats.ts --model ${modelDir} --layer ${m.layer} --corpus build/corpus/${m.corpusName} --tokens ${m.tokens} --out ${base}`;
});
const statsSection = statsLines.length
  ? `\nROME's key statistics shipped in \`stats/\` (Σ k kᵀ at the edit layer over the model's own training text, the\nhyperparameter \`mom2Stats\` of hparams/ROME/${path.basename(modelDir)}.json; its users cannot rebuild that text without the datasets):\n\`\`\`sh\n${statsLines.join('\n')}\n\`\`\`\n`
  : '';
fs.writeFileSync(path.join(modelDir, 'README.md'), card + statsSection);
say(JSON.stringify(metrics.accuracy) + ` ppl ${ppl.ppl.toFixed(1)}`);
model.dispose();
