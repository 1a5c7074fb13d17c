/**
 * Does an edit's success depend on whether the model was ever trained to say the new object for that relation?
 *
 * Why: ROME's failed CounterFact edits on the bundled model are v* optimisations that plateau at a high loss; a
 * small model's upper-block extraction is relation-specific, so an object it never produced for a relation may be
 * out of reach of any value at the subject. This splits an eval run's cases by whether the new object is the object
 * of a trained fact of the same relation (relation of a case = the relation of the corpus's CounterFact case with the
 * same prompt template) and prints efficacy per group.
 *
 * `npx tsx scripts/dev/target-coverage.ts --records out/results/counterfact/rome [--facts build/corpus/facts.json]
 * [--json FILE]`
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

interface CorpusFacts {
  facts: { relation: string; object: string }[];
  counterfactCases: { prompt: string; relation: string }[];
}

interface CaseRecord {
  caseId: number;
  request: { prompt: string; target: string };
  post: { rewrite: { nllNew: number; nllTrue: number } };
  edit?: { losses?: number[] };
}

type Group = 'relation-object-trained' | 'relation-object-untrained' | 'relation-unknown-object-trained' | 'relation-unknown-object-untrained';

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? process.argv[i + 1] : fallback;
  if (v === undefined || v.startsWith('--')) throw new Error(`target-coverage: ${name} needs a value`);
  return v;
}

async function main(): Promise<void> {
  const recordsDir = arg('--records');
  const factsFile = arg('--facts', 'build/corpus/facts.json');
  const jsonOut = process.argv.includes('--json') ? arg('--json') : undefined;
  const corpus = JSON.parse(await fsp.readFile(factsFile, 'utf8')) as CorpusFacts;
  if (!Array.isArray(corpus.facts) || !Array.isArray(corpus.counterfactCases)) throw new Error(`${factsFile}: expected fields facts and counterfactCases`);
  const relationOfTemplate = new Map(corpus.counterfactCases.map((c) => [c.prompt, c.relation]));
  const trained = new Set(corpus.facts.map((f) => `${f.relation}\u0000${f.object}`));
  const anyObject = new Set(corpus.facts.map((f) => f.object));
  const files = (await fsp.readdir(recordsDir)).filter((f) => /^case_\d+\.json$/.test(f));
  if (files.length === 0) throw new Error(`${recordsDir}: no case_*.json records`);
  const groups = new Map<Group, { n: number; ok: number; finalLoss: number[] }>();
  for (const f of files) {
    const r = JSON.parse(await fsp.readFile(path.join(recordsDir, f), 'utf8')) as CaseRecord;
    const target = r.request.target.trim();
    const rel = relationOfTemplate.get(r.request.prompt);
    const g: Group = rel
      ? trained.has(`${rel}\u0000${target}`) ? 'relation-object-trained' : 'relation-object-untrained'
      : anyObject.has(target) ? 'relation-unknown-object-trained' : 'relation-unknown-object-untrained';
    const s = groups.get(g) ?? { n: 0, ok: 0, finalLoss: [] };
    s.n++;
    if (r.post.rewrite.nllNew < r.post.rewrite.nllTrue) s.ok++;
    const losses = r.edit?.losses;
    if (losses && losses.length > 0) s.finalLoss.push(losses[losses.length - 1]!);
    groups.set(g, s);
  }
  const median = (xs: number[]) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]! : NaN);
  const rows = [...groups.entries()].sort().map(([group, s]) => ({ group, n: s.n, es: (100 * s.ok) / s.n, medianFinalVLoss: median(s.finalLoss) }));
  console.log(`| group | n | ES | median final v* loss |\n|---|---|---|---|`);
  for (const r of rows) console.log(`| ${r.group} | ${r.n} | ${r.es.toFixed(1)} | ${r.medianFinalVLoss.toFixed(2)} |`);
  if (jsonOut) await fsp.writeFile(jsonOut, JSON.stringify({ records: recordsDir, facts: factsFile, rows }, null, 2) + '\n', { flag: 'wx' });
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
