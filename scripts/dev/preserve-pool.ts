/**
 * Writes the facts file for ROME's `preserveFacts` (lib/rome/preservedKeys.ts) from a corpus's facts.json: every
 * trained fact's { subject, object }, except the facts the corpus holds as CounterFact neighbours and any fact whose
 * subject is some CounterFact case's neighbour. So the subjects an edit preserves are never the neighbours that
 * CounterFact's neighbourhood score evaluates: NS measures how the edit generalises to subjects it was not told about.
 *
 * `npx tsx scripts/dev/preserve-pool.ts [--facts build/corpus/facts.json] --out FILE [--force]`
 */
import { promises as fsp } from 'node:fs';

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  if (i < 0) return undefined;
  const v = process.argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`preserve-pool: ${name} needs a value`);
  return v;
}

interface CorpusFacts {
  facts: { subject: string; object: string; role?: string; neighbourOfCaseIds?: number[] }[];
  counterfactCases?: { neighbourSubject?: string }[];
}

async function main(): Promise<void> {
  const factsFile = flag('--facts') ?? 'build/corpus/facts.json';
  const out = flag('--out');
  if (!out) throw new Error('preserve-pool: --out FILE is required');
  let corpus: CorpusFacts;
  try {
    corpus = JSON.parse(await fsp.readFile(factsFile, 'utf8')) as CorpusFacts;
  } catch (e) {
    throw new Error(`preserve-pool: cannot read ${factsFile} (${(e as Error).message}); npm run build:corpus writes it`);
  }
  if (!Array.isArray(corpus.facts)) throw new Error(`preserve-pool: ${factsFile} has no "facts" array`);
  const neighbours = new Set((corpus.counterfactCases ?? []).map((c) => c.neighbourSubject).filter((s): s is string => typeof s === 'string'));
  const facts = corpus.facts
    .filter((f) => f.role !== 'counterfact-neighbour' && !f.neighbourOfCaseIds?.length && !neighbours.has(f.subject))
    .map((f) => ({ subject: f.subject, object: f.object }));
  const body = JSON.stringify({ source: factsFile, excluded: 'CounterFact neighbour facts and subjects', facts }, null, 0) + '\n';
  await fsp.writeFile(out, body, { flag: process.argv.includes('--force') ? 'w' : 'wx' }).catch((e: NodeJS.ErrnoException) => {
    throw new Error(e.code === 'EEXIST' ? `preserve-pool: ${out} exists; pass --force to overwrite it` : `preserve-pool: cannot write ${out} (${e.message})`);
  });
  console.log(`${out}: ${facts.length} of ${corpus.facts.length} facts (${neighbours.size} neighbour subjects excluded)`);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
