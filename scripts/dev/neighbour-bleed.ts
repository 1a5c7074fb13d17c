/**
 * Why do ROME edits at layer 0 move some neighbourhood prompts? Measures, per CounterFact case of an eval run, how
 * much of the edit reaches the neighbour's key.
 *
 * ROME's update adds (v* − W k*) (C⁻¹k*)ᵀ / (k*ᵀ C⁻¹ k*) to W, so a key k of another prompt receives the fraction
 * r = k*ᵀ C⁻¹ k / k*ᵀ C⁻¹ k* of the change the edited prompt receives (k* here: the bare prompt's key, the right
 * vector the hparams use). This script computes r for each case's neighbourhood prompt (EasyEdit `locality_prompt`,
 * subject from the corpus's neighbour facts) under one or more covariance files and the identity, and prints the
 * neighbourhood flip rate (right before the edit, wrong after) by r bucket, and the AUC of r for predicting a flip.
 *
 * CounterFact's neighbours share the edited fact's relation and true object. As a control, r is also computed for
 * the neighbour's prompt with its subject replaced by a subject of the same relation whose object differs (a corpus
 * fact, picked by case id): if keys at the edited layer carry the object, neighbours' r exceeds the controls'.
 *
 * With --preserve M, r is also computed for a constrained update that leaves up to M other keys unchanged: the keys,
 * in the edit's own prompt, of corpus subjects with the edited fact's relation and true object (facts the corpus
 * holds as CounterFact neighbours are never used, so the evaluated neighbour is never one of them). The update that
 * minimises the C-weighted change subject to Δk* = v* − Wk* and ΔP = 0 has u ∝ C⁻¹k⊥ (lib/rome/preservedKeys.ts);
 * a key k then receives r = uᵀk / uᵀk*.
 *
 * `npx tsx scripts/dev/neighbour-bleed.ts --records out/results-v3/counterfact/rome --model models/rome-fact-gpt2
 *   --stats models/rome-fact-gpt2/stats/L0-train200k [--stats OTHER …] [--layer 0] [--facts build/corpus/facts.json]
 *   [--cases ../shared/data/counterfact/easyedit-counterfact-edit.json] [--preserve M] [--averaged] [--json FILE]`
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { initBackend } from '../../lib/backend.js';
import { loadModel } from '../../lib/loadModel.js';
import { computeKey, keysAtSubject } from '../../lib/rome/computeKey.js';
import { contextTemplates } from '../../lib/rome/contextPrefixes.js';
import { ROME_DEFAULTS } from '../../lib/rome/hparams.js';
import { fittingTemplates } from '../../lib/rome/index.js';
import { identitySolver, type CovarianceSolver } from '../../lib/rome/covariance.js';
import { preservedDirection } from '../../lib/rome/preservedKeys.js';
import { loadLayerStatsFile } from '../../lib/rome/layerStats.js';
import { fillPrompt } from '../../lib/rome/types.js';

interface CaseRecord {
  caseId: number;
  request: { prompt: string; subject: string };
  pre: { rewrite: { nllNew: number; nllTrue: number }; neighborhood: { nllNew: number; nllTrue: number }[] };
  post: { rewrite: { nllNew: number; nllTrue: number }; neighborhood: { nllNew: number; nllTrue: number }[] };
}

function args(name: string): string[] {
  const out: string[] = [];
  process.argv.forEach((a, i) => {
    if (a !== name) return;
    const v = process.argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`neighbour-bleed: ${name} needs a value`);
    out.push(v);
  });
  return out;
}
const arg = (name: string, fallback?: string): string => {
  const v = args(name)[0] ?? fallback;
  if (v === undefined) throw new Error(`neighbour-bleed: ${name} is required`);
  return v;
};

const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
};

/** Area under the ROC curve of score for label (ties count half). */
function auc(score: number[], label: boolean[]): number {
  let pos = 0;
  let neg = 0;
  let wins = 0;
  for (let i = 0; i < score.length; i++) {
    if (!label[i]) continue;
    pos++;
    for (let j = 0; j < score.length; j++) {
      if (label[j]) continue;
      wins += score[i]! > score[j]! ? 1 : score[i] === score[j] ? 0.5 : 0;
    }
  }
  for (const l of label) if (!l) neg++;
  return pos && neg ? wins / (pos * neg) : NaN;
}

async function main(): Promise<void> {
  const recordsDir = arg('--records');
  const layer = Number(arg('--layer', '0'));
  const factsFile = arg('--facts', 'build/corpus/facts.json');
  const casesFile = arg('--cases', path.join('..', 'shared', 'data', 'counterfact', 'easyedit-counterfact-edit.json'));
  const statsFiles = args('--stats');
  const jsonOut = args('--json')[0];
  const preserve = Number(arg('--preserve', '0'));
  if (!Number.isInteger(preserve) || preserve < 0) throw new Error(`neighbour-bleed: --preserve must be an integer >= 0, got ${args('--preserve')[0]}`);
  await initBackend({ quiet: true });
  const model = await loadModel(arg('--model', 'models/rome-fact-gpt2'));
  // --averaged: also r for the left vector the edit uses, C⁻¹ of k* averaged over the default context prompts
  // (those of hparams/ROME/rome-fact-gpt2.json: 10 × 5 and 10 × 10 tokens, seed 0).
  const templates = process.argv.includes('--averaged') ? await contextTemplates(model, { spec: ROME_DEFAULTS.contextTemplates, seed: 0 }) : null;
  const solvers: [string, CovarianceSolver][] = [['identity', identitySolver(model.config.nInner)]];
  for (const f of statsFiles) solvers.push([f, loadLayerStatsFile(model, layer, f, '--stats').solver()]);

  const corpus = JSON.parse(await fsp.readFile(factsFile, 'utf8')) as {
    facts: { subject: string; relation: string; object: string; role?: string; neighbourOfCaseIds?: number[] }[];
    counterfactCases?: { caseId: number; relation: string }[];
  };
  const caseRelation = new Map((corpus.counterfactCases ?? []).map((c) => [c.caseId, c.relation]));
  const facts = corpus.facts;
  const neighbourFact = new Map<number, (typeof facts)[number]>();
  for (const f of facts) for (const c of f.neighbourOfCaseIds ?? []) neighbourFact.set(c, f);
  const byRelation = new Map<string, (typeof facts)[number][]>();
  for (const f of facts) byRelation.set(f.relation, [...(byRelation.get(f.relation) ?? []), f]);
  /** A subject of the same relation with another object, chosen by case id (null when the relation has none). */
  const controlSubject = (caseId: number, nb: (typeof facts)[number]): string | null => {
    const pool = (byRelation.get(nb.relation) ?? []).filter((f) => f.object !== nb.object && !f.subject.includes('{'));
    return pool.length ? pool[(caseId * 2654435761) % pool.length]!.subject : null;
  };
  const cases = JSON.parse(await fsp.readFile(casesFile, 'utf8')) as { case_id: number; locality_prompt: string }[];
  const locality = new Map(cases.map((c) => [c.case_id, c.locality_prompt]));

  interface Row { caseId: number; flip: boolean; r: number[]; rControl: number[] | null; cos: number; preserved: number; rPreserve: number[] | null; rPreserveControl: number[] | null; rAveraged: number[] | null }
  const rows: Row[] = [];
  let skipped = 0;
  const files = (await fsp.readdir(recordsDir)).filter((f) => /^case_\d+\.json$/.test(f));
  for (const f of files) {
    const rec = JSON.parse(await fsp.readFile(path.join(recordsDir, f), 'utf8')) as CaseRecord;
    const pre = rec.pre.neighborhood[0];
    const post = rec.post.neighborhood[0];
    const nbFact = neighbourFact.get(rec.caseId);
    const nb = nbFact?.subject;
    const text = locality.get(rec.caseId);
    const edited = rec.post.rewrite.nllNew < rec.post.rewrite.nllTrue;
    // Only cases whose neighbour was right before and whose edit took: there a flip is the edit's bleed.
    if (!pre || !post || !nb || !text || !text.includes(nb) || !edited || !(pre.nllTrue < pre.nllNew)) {
      skipped++;
      continue;
    }
    const ctl = controlSubject(rec.caseId, nbFact!);
    const relation = caseRelation.get(rec.caseId) ?? nbFact!.relation;
    const pool = preserve
      ? facts
          .filter(
            (x) =>
              x.relation === relation && x.object === nbFact!.object && x.role !== 'counterfact-neighbour' && !x.neighbourOfCaseIds?.length &&
              x.subject !== rec.request.subject && x.subject !== nb && !x.subject.includes('{'),
          )
          .slice(0, preserve)
      : [];
    const queries = [
      { text: fillPrompt(rec.request.prompt, rec.request.subject), subject: rec.request.subject },
      { text, subject: nb },
    ];
    if (ctl) queries.push({ text: text.replace(nb, () => ctl), subject: ctl });
    const nq = queries.length;
    for (const x of pool) queries.push({ text: fillPrompt(rec.request.prompt, x.subject), subject: x.subject });
    const keys = keysAtSubject(model, layer, queries);
    const [kStar, kNb, kCtl] = [keys[0]!, keys[1]!, ctl ? keys[2] : undefined];
    const kPool = keys.slice(nq);
    const us = solvers.map(([, s]) => s.solve(kStar));
    const ratio = (k: Float32Array) => us.map((u) => dot(u, k) / dot(u, kStar));
    const ws = kPool.length ? solvers.map(([, s]) => preservedDirection(s, kStar, kPool).x) : null;
    const ratioP = (k: Float32Array) => (ws ? ws.map((w) => dot(w, k) / dot(w, kStar)) : null);
    // The edit's own left vector uses k* averaged over the context-prefixed prompts (the paper, computeKey), while
    // the right vector's key is the bare prompt's: r = uᵀk / uᵀk_bare with u = C⁻¹k*_averaged.
    let rAveraged: number[] | null = null;
    if (templates) {
      const req = { prompt: rec.request.prompt, subject: rec.request.subject, target: ' x' };
      const kAvg = computeKey(model, layer, req, fittingTemplates(model, templates, req)).kStar;
      const ua = solvers.map(([, s]) => s.solve(kAvg));
      rAveraged = ua.map((u) => dot(u, kNb) / dot(u, kStar));
    }
    rows.push({
      caseId: rec.caseId,
      flip: !(post.nllTrue < post.nllNew),
      r: ratio(kNb),
      rControl: kCtl ? ratio(kCtl) : null,
      cos: dot(kStar, kNb) / Math.sqrt(dot(kStar, kStar) * dot(kNb, kNb)),
      preserved: kPool.length,
      rPreserve: ratioP(kNb),
      rPreserveControl: kCtl ? ratioP(kCtl) : null,
      rAveraged,
    });
  }
  const flips = rows.filter((r) => r.flip).length;
  if (templates) {
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
    solvers.forEach(([name], i) => {
      const g = (flip: boolean) => rows.filter((r) => r.flip === flip);
      const line = (flip: boolean) =>
        `${flip ? 'flipped' : 'kept'} (${g(flip).length}): median r ${med(g(flip).map((r) => r.r[i]!)).toFixed(3)} with u = C⁻¹k_bare, ${med(g(flip).map((r) => r.rAveraged![i]!)).toFixed(3)} with u = C⁻¹k*_averaged`;
      console.log(`${name}: ${line(true)}; ${line(false)}; AUC ${auc(rows.map((r) => r.rAveraged![i]!), rows.map((r) => r.flip)).toFixed(3)} (averaged)`);
    });
  }
  if (preserve) {
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
    const withPool = rows.filter((r) => r.rPreserve);
    console.log(`--preserve ${preserve}: ${withPool.length} of ${rows.length} cases have preserved keys (median ${med(withPool.map((r) => r.preserved))})`);
    solvers.forEach(([name], i) => {
      const line = (label: string, g: Row[]) =>
        `  ${label} (${g.length}): median r ${med(g.map((r) => r.r[i]!)).toFixed(3)} -> constrained ${med(g.map((r) => r.rPreserve![i]!)).toFixed(3)}`;
      console.log(`${name}:`);
      console.log(line('flipped', withPool.filter((r) => r.flip)));
      console.log(line('kept', withPool.filter((r) => !r.flip)));
      const ctlRows = withPool.filter((r) => r.rPreserveControl);
      console.log(`  control subjects (${ctlRows.length}): median r ${med(ctlRows.map((r) => r.rControl![i]!)).toFixed(3)} -> constrained ${med(ctlRows.map((r) => r.rPreserveControl![i]!)).toFixed(3)}`);
      const big = (xs: number[]) => xs.filter((x) => Math.abs(x) >= 0.2).length;
      console.log(`  |r| >= 0.2: ${big(withPool.map((r) => r.r[i]!))} -> ${big(withPool.map((r) => r.rPreserve![i]!))} of ${withPool.length}`);
    });
  }
  console.log(`${rows.length} cases (neighbour right before, edit took), ${flips} flipped; ${skipped} skipped`);
  const summary = solvers.map(([name], i) => {
    const score = rows.map((r) => r.r[i]!);
    const buckets = [-Infinity, 0.05, 0.1, 0.2, 0.4, Infinity];
    const byBucket = buckets.slice(0, -1).map((lo, b) => {
      const g = rows.filter((r) => r.r[i]! >= lo && r.r[i]! < buckets[b + 1]!);
      return { lo, hi: buckets[b + 1]!, n: g.length, flipRate: g.length ? g.filter((x) => x.flip).length / g.length : NaN };
    });
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
    const controls = rows.filter((r) => r.rControl).map((r) => r.rControl![i]!);
    return {
      covariance: name,
      medianRControl: med(controls),
      controls: controls.length,
      auc: auc(score, rows.map((r) => r.flip)),
      medianRFlipped: med(rows.filter((r) => r.flip).map((r) => r.r[i]!)),
      medianRKept: med(rows.filter((r) => !r.flip).map((r) => r.r[i]!)),
      byBucket,
    };
  });
  summary.push({
    covariance: 'cosine(k*, k_neighbour)',
    medianRControl: NaN,
    controls: 0,
    auc: auc(rows.map((r) => r.cos), rows.map((r) => r.flip)),
    medianRFlipped: NaN,
    medianRKept: NaN,
    byBucket: [],
  });
  for (const s of summary) {
    console.log(
      `\n${s.covariance}: AUC ${s.auc.toFixed(3)}, median r flipped ${s.medianRFlipped.toFixed(3)} / kept ${s.medianRKept.toFixed(3)}` +
        ` / control subjects with another object ${s.medianRControl.toFixed(3)} (${s.controls})`,
    );
    for (const b of s.byBucket) console.log(`  r in [${b.lo}, ${b.hi}): n ${b.n}, flip rate ${Number.isNaN(b.flipRate) ? '-' : (100 * b.flipRate).toFixed(1)}%`);
  }
  if (jsonOut) await fsp.writeFile(jsonOut, JSON.stringify({ records: recordsDir, layer, summary, rows }, null, 1) + '\n', { flag: 'wx' });
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
