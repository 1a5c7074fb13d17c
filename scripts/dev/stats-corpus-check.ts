/**
 * Does the corpus C is estimated on change ROME's specificity? The paper estimates C over Wikipedia text, i.e. text
 * like the model's pretraining data; rome-ts's default is WikiText + Gutenberg, while the bundled model was trained
 * mostly on fact lines. This re-runs ROME (the model's hparams) on the first N cases of an earlier eval run with C
 * from another corpus (a UTF-8 text file, one document per line, e.g. the model's build/corpus/train.txt) and
 * prints ES / PS / NS of both runs over the same cases.
 *
 * `npx tsx scripts/dev/stats-corpus-check.ts --records out/results/counterfact/rome --corpus build/corpus/train.txt
 * [--from 0] [--n 40] [--model models/rome-fact-gpt2] [--hparams rome-fact-gpt2]`
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { initBackend } from '../../lib/backend.js';
import { loadCounterFact } from '../../lib/data/counterfact.js';
import { sha256 } from '../../lib/data/hash.js';
import { evalCounterFactCase, type CounterFactEval, type PromptNll } from '../../lib/eval/counterfact.js';
import { loadModel } from '../../lib/loadModel.js';
import { edit, loadRomeHparams, type StatsCorpus } from '../../lib/rome/index.js';

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? process.argv[i + 1] : fallback;
  if (v === undefined || v.startsWith('--')) throw new Error(`stats-corpus-check: ${name} needs a value`);
  return v;
}

interface Rec {
  caseId: number;
  post: CounterFactEval;
}

const ok = (p: PromptNll): number => (p.nllNew < p.nllTrue ? 1 : 0);
const okTrue = (p: PromptNll): number => (p.nllTrue < p.nllNew ? 1 : 0);
const mean = (xs: number[]): number => (xs.length ? (100 * xs.reduce((a, b) => a + b, 0)) / xs.length : NaN);

function scores(evals: CounterFactEval[]): { es: number; ps: number; ns: number } {
  return {
    es: mean(evals.map((e) => ok(e.rewrite))),
    ps: mean(evals.flatMap((e) => e.paraphrase.map(ok))),
    ns: mean(evals.flatMap((e) => e.neighborhood.map(okTrue))),
  };
}

async function main(): Promise<void> {
  const recordsDir = arg('--records');
  const corpusFile = arg('--corpus');
  const n = Number(arg('--n', '40'));
  const from = Number(arg('--from', '0'));
  if (!Number.isInteger(n) || n < 1) throw new Error(`stats-corpus-check: --n must be a positive integer`);
  if (!Number.isInteger(from) || from < 0) throw new Error(`stats-corpus-check: --from must be a non-negative integer`);
  await initBackend();
  const model = await loadModel(arg('--model', 'models/rome-fact-gpt2'));
  const hp = loadRomeHparams(arg('--hparams', 'rome-fact-gpt2'));
  const text = await fsp.readFile(corpusFile, 'utf8');
  const lines = text.split('\n').filter((l) => l.length > 0);
  const corpus: StatsCorpus = { name: path.basename(corpusFile), identity: sha256(new TextEncoder().encode(text)), texts: () => lines };
  const files = (await fsp.readdir(recordsDir)).filter((f) => /^case_\d+\.json$/.test(f));
  const earlier = new Map<number, Rec>();
  for (const f of files) {
    const r = JSON.parse(await fsp.readFile(path.join(recordsDir, f), 'utf8')) as Rec;
    earlier.set(r.caseId, r);
  }
  const records = (await loadCounterFact({ split: 'edit' })).filter((r) => earlier.has(r.caseId)).slice(from, from + n);
  if (records.length < n) throw new Error(`${recordsDir}: only ${records.length} of cases ${from}…${from + n - 1} have records`);
  const unedited = new Map<number, CounterFactEval>();
  for (const f of files) {
    const r = JSON.parse(await fsp.readFile(path.join(recordsDir, f), 'utf8')) as { caseId: number; pre: CounterFactEval };
    unedited.set(r.caseId, r.pre);
  }
  const before: CounterFactEval[] = [];
  const after: CounterFactEval[] = [];
  for (const [i, rec] of records.entries()) {
    const h = await edit(model, { prompt: rec.prompt, subject: rec.subject, target: rec.targetNew }, hp, { stats: { corpus, progress: false } });
    try {
      after.push(await evalCounterFactCase(model, rec));
    } finally {
      h.restore();
    }
    before.push((earlier.get(rec.caseId) as Rec).post);
    if ((i + 1) % 10 === 0) process.stderr.write(`${i + 1}/${records.length} cases\n`);
  }
  const u = scores(records.map((r) => unedited.get(r.caseId) as CounterFactEval));
  const a = scores(before);
  const b = scores(after);
  console.log(`cases ${from}…${from + records.length - 1} of ${recordsDir}\n| C estimated on | n | ES | PS | NS |\n|---|---|---|---|---|`);
  console.log(`| (unedited) | ${records.length} | ${u.es.toFixed(1)} | ${u.ps.toFixed(1)} | ${u.ns.toFixed(1)} |`);
  console.log(`| the earlier run's corpus (${recordsDir}) | ${records.length} | ${a.es.toFixed(1)} | ${a.ps.toFixed(1)} | ${a.ns.toFixed(1)} |`);
  console.log(`| ${corpusFile} (first ${hp.mom2Tokens ?? 'all'} tokens) | ${records.length} | ${b.es.toFixed(1)} | ${b.ps.toFixed(1)} | ${b.ns.toFixed(1)} |`);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
