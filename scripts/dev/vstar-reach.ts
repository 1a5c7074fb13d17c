/**
 * Is a failed ROME rewrite unreachable at the edit layer, or only not reached by the shipped v* optimisation?
 * For each CounterFact case, v* is optimised under each named setting (the model's hparams file, then overrides), the
 * edit is applied with C = I (the rewrite prompt's key is the right vector, so the rewrite prompt gets v* exactly
 * whatever C is: ES does not depend on C), the rewrite prompt is scored, and the edit is undone. Prints per setting
 * ES, the final v* loss, and ‖δ‖/‖v₀‖; with --json writes every case (after each one, so a stopped run keeps them).
 *
 * `npx tsx scripts/dev/vstar-reach.ts --model models/rome-fact-gpt2 --n 50 [--from 0]
 *   [--setting name:key=value,key=value …] [--json FILE [--force]]`
 * Default settings: "shipped" (the hparams file) and "free" (300 steps, no weight decay, no KL, clamp 100).
 */
import { promises as fsp } from 'node:fs';
import { initBackend } from '../../lib/backend.js';
import { loadCounterFact } from '../../lib/data/counterfact.js';
import { evalCounterFactCase } from '../../lib/eval/counterfact.js';
import { loadModel } from '../../lib/loadModel.js';
import { edit, readHparamsFile, type RomeHparams } from '../../lib/rome/index.js';

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  if (i < 0) return undefined;
  const v = process.argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`vstar-reach: ${name} needs a value`);
  return v;
}
function flags(name: string): string[] {
  const out: string[] = [];
  process.argv.forEach((a, i) => {
    if (a === name) {
      const v = process.argv[i + 1];
      if (v === undefined || v.startsWith('--')) throw new Error(`vstar-reach: ${name} needs a value`);
      out.push(v);
    }
  });
  return out;
}
function int(name: string, dflt: number): number {
  const s = flag(name);
  if (s === undefined) return dflt;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0) throw new Error(`vstar-reach: ${name} must be an integer >= 0, got "${s}"`);
  return n;
}

const NUMERIC = new Set(['vNumGradSteps', 'vLr', 'vWeightDecay', 'klFactor', 'clampNormFactor', 'earlyStopLoss', 'vAdamBeta2', 'layer']);
function parseSetting(s: string): [string, Partial<RomeHparams>] {
  const [name, body] = s.split(':', 2);
  if (!name || body === undefined) throw new Error(`vstar-reach: --setting must be name:key=value,…, got "${s}"`);
  const o: Record<string, number> = {};
  for (const kv of body.split(',').filter(Boolean)) {
    const [k, v] = kv.split('=');
    if (!k || !NUMERIC.has(k) || v === undefined || !Number.isFinite(Number(v))) throw new Error(`vstar-reach: bad setting entry "${kv}" (keys: ${[...NUMERIC].join(', ')})`);
    o[k] = Number(v);
  }
  return [name, o as Partial<RomeHparams>];
}

const modelDir = flag('--model') ?? 'models/rome-fact-gpt2';
const n = int('--n', 50);
const from = int('--from', 0);
const jsonOut = flag('--json');
if (jsonOut && !process.argv.includes('--force')) {
  const exists = await fsp.stat(jsonOut).then(() => true, () => false);
  if (exists) throw new Error(`vstar-reach: ${jsonOut} exists; pass --force to overwrite it`);
}
const settings: [string, Partial<RomeHparams>][] = [['shipped', {}], ['free', { vNumGradSteps: 300, vWeightDecay: 0, klFactor: 0, clampNormFactor: 100 }]];
const extra = flags('--setting').map(parseSetting);
if (extra.length) settings.splice(0, settings.length, ['shipped', {}], ...extra);

await initBackend({ quiet: true });
const model = await loadModel(modelDir);
const base = readHparamsFile('ROME', 'rome-fact-gpt2') as Partial<RomeHparams>;
const records = (await loadCounterFact({ split: 'edit', limit: from + n })).slice(from);
interface Row { caseId: number; setting: string; success: boolean; preSuccess: boolean; finalLoss: number; minLoss: number; deltaRatio: number }
const rows: Row[] = [];
// Written after every case (to a temporary file, then renamed), so a stopped run keeps the cases it finished.
const save = async (done: boolean): Promise<void> => {
  if (!jsonOut) return;
  const tmp = `${jsonOut}.tmp-${process.pid}`;
  await fsp.writeFile(tmp, JSON.stringify({ model: modelDir, from, n: records.length, done, settings, rows }, null, 1) + '\n');
  await fsp.rename(tmp, jsonOut);
};
for (const rec of records) {
  const pre = await evalCounterFactCase(model, { ...rec, paraphrasePrompts: [], neighborhoodPrompts: [] });
  for (const [name, over] of settings) {
    const h = await edit(model, { prompt: rec.prompt, subject: rec.subject, target: rec.targetNew }, { ...base, ...over, mom2Adjustment: false });
    const post = await evalCounterFactCase(model, { ...rec, paraphrasePrompts: [], neighborhoodPrompts: [] });
    h.restore();
    const losses = h.losses.map((l) => l.nll ?? l.loss);
    const row: Row = {
      caseId: rec.caseId,
      setting: name,
      success: post.rewrite.nllNew < post.rewrite.nllTrue,
      preSuccess: pre.rewrite.nllNew < pre.rewrite.nllTrue,
      finalLoss: losses[losses.length - 1] ?? NaN,
      minLoss: Math.min(...losses),
      deltaRatio: (h.info.deltaNorm as number) / (h.info.v0Norm as number),
    };
    rows.push(row);
    console.log(`case ${rec.caseId} ${name}: ${row.success ? 'edits' : 'FAILS'}  nll ${row.finalLoss.toFixed(2)}  |δ|/|v0| ${row.deltaRatio.toFixed(2)}`);
  }
  await save(false);
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1] as number) : NaN;
};
console.log(`\n${records.length} cases from ${from}, model ${modelDir}`);
console.log('| setting | ES | final nll < 1 | median final nll | median |δ|/|v0| | ES where shipped fails |');
console.log('|---|---|---|---|---|---|');
const shippedFail = new Set(rows.filter((r) => r.setting === 'shipped' && !r.success).map((r) => r.caseId));
for (const [name] of settings) {
  const rs = rows.filter((r) => r.setting === name);
  const es = (100 * rs.filter((r) => r.success).length) / rs.length;
  const conv = rs.filter((r) => r.finalLoss < 1).length;
  const rescued = rs.filter((r) => shippedFail.has(r.caseId) && r.success).length;
  console.log(`| ${name} | ${es.toFixed(1)} | ${conv}/${rs.length} | ${median(rs.map((r) => r.finalLoss)).toFixed(2)} | ${median(rs.map((r) => r.deltaRatio)).toFixed(2)} | ${rescued}/${shippedFail.size} |`);
}
await save(true);
