/**
 * How much of the v* optimisation does a ROME edit need? One v* run per CounterFact case, observed at every step
 * (computeValue's onStep): the δ at the first step whose loss falls below t is exactly what earlyStopLoss = t
 * gives, so every threshold of --stops is measured from the same run. Each (threshold, left key) variant is
 * committed as a rank-one edit with the hparams file's C and right key, scored on the full record (rewrite,
 * paraphrase, neighbourhood) and undone. A smaller δ moves the neighbours less; the question is how much ES and PS
 * it costs.
 *
 * `npx tsx scripts/dev/early-stop-sweep.ts --hparams FILE --from 0 --n 100 --json OUT [--force]
 *    [--stops 2,1,0.5,0.3,0.1,0.05] [--left bare,averaged] [--cases ID,ID,…]`
 * (--cases keeps only those caseIds of the --from/--n range)
 * `npx tsx scripts/dev/early-stop-sweep.ts --summarize A.json B.json … [--out SUMMARY.json]` (prints the table over all
 * their cases; --out also writes it with every case's outcomes, compact enough to commit). It also prints each
 * variant's paper-style row (the `summarize` command's metrics and CIs, lib/eval/summarize.ts) and --out keeps those
 * rows as `paperRows`: a variant's post-edit evaluation is the one `eval counterfact` records with that
 * earlyStopLoss, because v* is the same run up to the stop.
 */
import { promises as fsp } from 'node:fs';
import { initBackend } from '../../lib/backend.js';
import { loadCounterFact } from '../../lib/data/counterfact.js';
import { evalCounterFactCase, type CounterFactEval, type PromptNll } from '../../lib/eval/counterfact.js';
import { counterFactRow, summaryMarkdown, type SummaryRow as PaperRow } from '../../lib/eval/summarize.js';
import { loadModel } from '../../lib/loadModel.js';
import {
  commitEdit,
  computeKey,
  computeValue,
  contextTemplates,
  fittingTemplates,
  loadRomeHparams,
  mlpProjParams,
  rankOneVectors,
  romeSolver,
  spacedTarget,
  type EditRequest,
} from '../../lib/rome/index.js';

const argv = process.argv.slice(2);
function flag(name: string): string | undefined {
  const i = argv.indexOf(name);
  if (i < 0) return undefined;
  const v = argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`early-stop-sweep: ${name} needs a value`);
  return v;
}
function count(name: string, dflt: number): number {
  const s = flag(name);
  if (s === undefined) return dflt;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0) throw new Error(`early-stop-sweep: ${name} must be an integer >= 0, got "${s}"`);
  return n;
}

interface VariantResult { variant: string; stop: number; left: string; step: number; loss: number; deltaNorm: number; post: CounterFactEval }
interface CaseRow { caseId: number; pre: CounterFactEval; v0Norm: number; variants: VariantResult[] }

const wins = (p: PromptNll) => p.nllNew < p.nllTrue;
const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

interface SummaryRow { variant: string; es: number; ps: number; nPs: number; ns: number; nsDrop: number; s: number; medianStep: number; medianDeltaRatio: number }

function summarize(rows: CaseRow[]): SummaryRow[] {
  const table: SummaryRow[] = [];
  const names = [...new Set(rows.flatMap((r) => r.variants.map((v) => v.variant)))];
  const pct = (x: number) => (100 * x).toFixed(1);
  const preNs = mean(rows.flatMap((r) => r.pre.neighborhood.map((p) => (wins(p) ? 0 : 1))));
  console.log(`${rows.length} cases; unedited NS ${pct(preNs)}, ES ${pct(mean(rows.map((r) => (wins(r.pre.rewrite) ? 1 : 0))))}`);
  console.log('| variant | ES | PS (n) | NS | NS drop | S | median step | median ‖δ‖/‖v₀‖ |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const name of names) {
    const vs = rows.map((r) => ({ r, v: r.variants.find((x) => x.variant === name) })).filter((x) => x.v);
    const es = mean(vs.map(({ v }) => (wins(v!.post.rewrite) ? 1 : 0)));
    const ps = mean(vs.flatMap(({ v }) => v!.post.paraphrase.map((p) => (wins(p) ? 1 : 0))));
    const nPs = vs.filter(({ v }) => v!.post.paraphrase.length > 0).length;
    const ns = mean(vs.flatMap(({ v }) => v!.post.neighborhood.map((p) => (wins(p) ? 0 : 1))));
    const s = 3 / (1 / es + 1 / ps + 1 / ns);
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[(xs.length - 1) >> 1];
    const steps = med(vs.map(({ v }) => v!.step));
    const ratio = med(vs.map(({ r, v }) => v!.deltaNorm / r.v0Norm));
    console.log(`| ${name} | ${pct(es)} | ${pct(ps)} (${nPs}) | ${pct(ns)} | ${pct(preNs - ns)} | ${pct(s)} | ${steps} | ${ratio.toFixed(2)} |`);
    table.push({ variant: name, es, ps, nPs, ns, nsDrop: preNs - ns, s, medianStep: steps, medianDeltaRatio: ratio });
  }
  return table;
}

if (argv[0] === '--summarize') {
  const rows: CaseRow[] = [];
  const outAt = argv.indexOf('--out');
  const summaryOut = outAt > 0 ? argv[outAt + 1] : undefined;
  if (outAt > 0 && (summaryOut === undefined || summaryOut.startsWith('--'))) throw new Error('early-stop-sweep: --out needs a file');
  if (summaryOut && (await fsp.stat(summaryOut).then(() => true, () => false)) && !argv.includes('--force')) {
    throw new Error(`early-stop-sweep: ${summaryOut} exists; pass --force to overwrite it`);
  }
  const inputs = argv.slice(1).filter((a, i, all) => !a.startsWith('--') && all[i - 1] !== '--out');
  const sources: unknown[] = [];
  for (const f of inputs) {
    const j = JSON.parse(await fsp.readFile(f, 'utf8')) as { rows?: CaseRow[] };
    if (!Array.isArray(j.rows)) throw new Error(`early-stop-sweep: ${f} has no "rows" array`);
    rows.push(...j.rows);
    const { hparams, stops, lefts, from, n, done } = j as Record<string, unknown>;
    sources.push({ file: f, hparams, stops, lefts, from, n, done, cases: j.rows.length });
  }
  const table = summarize(rows);
  const paperRows: PaperRow[] = [counterFactRow('unedited', rows.map((r) => r.pre))];
  for (const name of table.map((t) => t.variant)) {
    const posts = rows.flatMap((r) => r.variants.filter((v) => v.variant === name).map((v) => v.post));
    if (posts.length !== rows.length) console.log(`(${name}: ${posts.length} of ${rows.length} cases)`);
    paperRows.push(counterFactRow(name, posts));
  }
  console.log('\n' + summaryMarkdown(paperRows));
  if (summaryOut) {
    // Per case and variant: rewrite edited (1/0), paraphrases edited, neighbours kept, the step v* stopped at.
    const outcome = (e: CounterFactEval) => [wins(e.rewrite) ? 1 : 0, e.paraphrase.map((p) => (wins(p) ? 1 : 0)), e.neighborhood.map((p) => (wins(p) ? 0 : 1))];
    const perCase = rows.map((r) => ({
      caseId: r.caseId,
      unedited: outcome(r.pre),
      variants: Object.fromEntries(r.variants.map((v) => [v.variant, [...outcome(v.post), v.step, Number((v.deltaNorm / r.v0Norm).toFixed(3))]])),
    }));
    const legend = 'unedited: [rewrite edited, paraphrases edited, neighbours kept]; variants: the same, then the v* step and ‖δ‖/‖v₀‖';
    const tmp = `${summaryOut}.tmp-${process.pid}`;
    await fsp.writeFile(tmp, JSON.stringify({ sources, cases: rows.length, table, paperRows, legend, perCase }) + '\n');
    await fsp.rename(tmp, summaryOut);
  }
  process.exit(0);
}

const hparamsFile = flag('--hparams');
if (!hparamsFile) throw new Error('early-stop-sweep: --hparams FILE is required');
const jsonOut = flag('--json');
if (!jsonOut) throw new Error('early-stop-sweep: --json OUT is required');
if (!argv.includes('--force') && (await fsp.stat(jsonOut).then(() => true, () => false))) {
  throw new Error(`early-stop-sweep: ${jsonOut} exists; pass --force to overwrite it`);
}
const stops = (flag('--stops') ?? '2,1,0.5,0.3,0.1,0.05').split(',').map((s) => {
  const t = Number(s);
  if (!Number.isFinite(t) || t <= 0) throw new Error(`early-stop-sweep: --stops entries must be numbers > 0, got "${s}"`);
  return t;
});
const lefts = (flag('--left') ?? 'bare,averaged').split(',');
for (const l of lefts) if (l !== 'bare' && l !== 'averaged') throw new Error(`early-stop-sweep: --left entries are bare or averaged, got "${l}"`);
const from = count('--from', 0);
const n = count('--n', 100);
const modelDir = flag('--model') ?? 'models/rome-fact-gpt2';

await initBackend({ quiet: true });
const model = await loadModel(modelDir);
const hp = loadRomeHparams(hparamsFile);
// The smallest threshold is the run's own early stop, so the run goes as far as any variant needs.
const run = { ...hp, earlyStopLoss: Math.min(...stops) };
const solver = await romeSolver(model, run);
const allTemplates = await contextTemplates(model, { spec: hp.contextTemplates, seed: hp.contextSeed });
const caseIds = flag('--cases')?.split(',').map((s) => {
  const id = Number(s);
  if (!Number.isInteger(id) || id < 0) throw new Error(`early-stop-sweep: --cases entries must be integer caseIds, got "${s}"`);
  return id;
});
const inRange = (await loadCounterFact({ split: 'edit', limit: from + n })).slice(from);
const records = caseIds ? inRange.filter((r) => caseIds.includes(r.caseId)) : inRange;
if (caseIds && records.length !== caseIds.length) {
  const missing = caseIds.filter((id) => !records.some((r) => r.caseId === id));
  throw new Error(`early-stop-sweep: --cases ${missing.join(', ')} not among the ${inRange.length} cases from ${from}`);
}
const rows: CaseRow[] = [];
const save = async (done: boolean): Promise<void> => {
  const tmp = `${jsonOut}.tmp-${process.pid}`;
  await fsp.writeFile(tmp, JSON.stringify({ model: modelDir, hparams: hparamsFile, from, n: records.length, stops, lefts, done, rows }) + '\n');
  await fsp.rename(tmp, jsonOut);
};
const t0 = Date.now();
for (const rec of records) {
  const pre = await evalCounterFactCase(model, rec);
  const req: EditRequest = { prompt: rec.prompt, subject: rec.subject, target: spacedTarget(rec.targetNew) };
  const templates = fittingTemplates(model, allTemplates, req);
  const keys = computeKey(model, hp.layer, req, templates);
  const snaps = new Map<number, { step: number; loss: number; delta: Float32Array }>();
  let last = { step: 0, loss: Infinity, delta: new Float32Array(0) };
  const value = computeValue(model, hp.layer, req, templates, run, {
    onStep: (l, delta) => {
      last = { step: l.step, loss: l.loss, delta };
      for (const t of stops) if (!snaps.has(t) && l.loss < t) snaps.set(t, last);
    },
  });
  const variants: VariantResult[] = [];
  for (const t of stops) {
    const s = snaps.get(t) ?? last;
    const vStar = value.v0.map((x, i) => x + s.delta[i]);
    for (const left of lefts) {
      const r1 = rankOneVectors(model, hp.layer, solver, left === 'bare' ? keys.kBare : keys.kStar, hp.rightVectorKey === 'bare-prompt' ? keys.kBare : keys.kStar, vStar);
      const h = commitEdit(model, {
        method: 'rome',
        layer: hp.layer,
        request: req,
        losses: [],
        updates: [{ kind: 'rank-one', param: mlpProjParams(hp.layer, model.config).weight, u: Array.from(r1.u), v: Array.from(r1.v) }],
        info: {},
      });
      try {
        const post = await evalCounterFactCase(model, rec);
        variants.push({ variant: `stop ${t} ${left}`, stop: t, left, step: s.step, loss: s.loss, deltaNorm: Math.hypot(...s.delta), post });
      } finally {
        h.restore();
      }
    }
  }
  rows.push({ caseId: rec.caseId, pre, v0Norm: Math.hypot(...value.v0), variants });
  await save(false);
  console.log(`case ${rec.caseId} (${rows.length}/${records.length}, ${((Date.now() - t0) / 60000).toFixed(1)} min): v* loss ${last.loss.toFixed(3)} at step ${last.step}`);
}
await save(true);
summarize(rows);
