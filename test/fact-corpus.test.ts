import test from 'ava';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { easyEditFile, loadCounterFact } from '../lib/data/counterfact.js';
import { GUTENBERG_DIR, WIKITEXT_RAW_TEST } from '../lib/data/corpus.js';
import {
  buildFactCorpus,
  factLine,
  readCorpusFacts,
  writeFactCorpus,
  type FactCorpusManifest,
  type FactCorpusOptions,
} from '../lib/data/factCorpus.js';
import { KNOWN_FACTS_FILE, loadKnownFacts } from '../lib/data/knownFacts.js';
import { findDataFile } from '../lib/data/paths.js';
import { fillTemplate, templateOf } from '../lib/data/relations.js';

const HAVE_DATA = [KNOWN_FACTS_FILE, easyEditFile('train'), easyEditFile('edit'), easyEditFile('val'), WIKITEXT_RAW_TEST].every(
  (f) => findDataFile(f) !== null,
);
const dataTest = HAVE_DATA ? test.serial : test.skip;
if (!HAVE_DATA) console.warn('fact-corpus: dataset files not found (set ROME_TS_DATA); fact-corpus tests are skipped');

// Full fact part, but only three books of general text so the test stays quick on a slow CPU.
const OPTS: FactCorpusOptions = {
  seed: 1,
  gutenbergFiles: ['Austen__Emma.txt', 'Conrad__A_Set_of_Six.txt', 'Trollope__Barchester_Towers.txt'],
  generalChars: 150_000,
  validChars: 30_000,
};

const made: string[] = [];
const tmpDir = (): string => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'rome-ts-corpus-'));
  made.push(d);
  return d;
};
test.after.always(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

const sha = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');
const OUT_FILES = ['train.txt', 'valid-general.txt', 'tokenizer-input.txt', 'facts.json'];

let built: Promise<{ dir: string; manifest: FactCorpusManifest }> | null = null;
function buildOnce(): Promise<{ dir: string; manifest: FactCorpusManifest }> {
  built ??= (async () => {
    const dir = tmpDir();
    const manifest = await writeFactCorpus(await buildFactCorpus(OPTS), dir, 'test');
    return { dir, manifest };
  })();
  return built;
}

dataTest('same seed gives byte-identical outputs; another seed does not', async (t) => {
  const { dir, manifest } = await buildOnce();
  const dir2 = tmpDir();
  const m2 = await writeFactCorpus(await buildFactCorpus(OPTS), dir2, 'test again');
  for (const f of OUT_FILES) {
    t.is(sha(path.join(dir, f)), sha(path.join(dir2, f)), f);
    t.is(manifest.outputs?.[f]?.sha256, sha(path.join(dir, f)), `manifest hash of ${f}`);
  }
  const strip = (m: FactCorpusManifest): FactCorpusManifest => ({ ...m, command: '' });
  t.deepEqual(strip(m2), strip(manifest));
  const dir3 = tmpDir();
  await writeFactCorpus(await buildFactCorpus({ ...OPTS, seed: 2 }), dir3);
  t.not(sha(path.join(dir3, 'train.txt')), sha(path.join(dir, 'train.txt')));
});

dataTest('every trained prompt is followed by its object exactly as often as facts.json says', async (t) => {
  const { dir, manifest } = await buildOnce();
  const lines = readFileSync(path.join(dir, 'train.txt'), 'utf8').split('\n');
  t.is(lines.pop(), '', 'file ends with a newline');
  t.false(lines.some((l) => l.length === 0), 'no empty lines');
  const counts = new Map<string, number>();
  for (const l of lines) counts.set(l, (counts.get(l) ?? 0) + 1);
  const { facts } = await readCorpusFacts(dir);
  let factLines = 0;
  const expected = new Map<string, number>();
  for (const f of facts) {
    t.is(f.trainedPrompts.length, f.trainedCounts.length);
    t.true(f.trainedPrompts.length > 0, f.id);
    f.trainedPrompts.forEach((p, i) => {
      t.true(p.includes(f.subject), `${f.id}: ${p}`);
      const line = factLine(p, f.object);
      t.true(line.startsWith(`${p} ${f.object}`));
      expected.set(line, (expected.get(line) ?? 0) + (f.trainedCounts[i] as number));
      factLines += f.trainedCounts[i] as number;
    });
  }
  let mismatches = 0;
  for (const [line, n] of expected) if (counts.get(line) !== n) mismatches++;
  t.is(mismatches, 0);
  t.is(factLines, manifest.counts['factLines']);
  t.is(lines.length, manifest.counts['trainLines']);
  t.is(lines.length - factLines, manifest.counts['generalTrainLines']);
  t.is(facts.length, manifest.counts['facts']);
  t.is(lines.reduce((s, l) => s + l.length + 1, 0), manifest.chars['train']);
});

dataTest('held-out prompts and templates never occur in train.txt; no trained prompt has a conflicting continuation', async (t) => {
  const { dir, manifest } = await buildOnce();
  const lines = readFileSync(path.join(dir, 'train.txt'), 'utf8').split('\n').filter(Boolean).sort();
  const startsWithCount = (p: string): string[] => {
    let lo = 0;
    let hi = lines.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((lines[mid] as string) < p) lo = mid + 1;
      else hi = mid;
    }
    const out: string[] = [];
    for (let i = lo; i < lines.length && (lines[i] as string).startsWith(p); i++) out.push(lines[i] as string);
    return out;
  };
  const { facts } = await readCorpusFacts(dir);
  const heldOut = new Set(manifest.heldOutTemplates);
  let heldOutChecked = 0;
  let conflicts = 0;
  for (const f of facts) {
    for (const p of f.heldOutPrompts) {
      t.deepEqual(startsWithCount(p), [], `${f.id} held-out prompt in train: ${p}`);
      t.true(heldOut.has(templateOf(p, f.subject) as string));
      heldOutChecked++;
    }
    for (const p of f.trainedPrompts) {
      const tpl = templateOf(p, f.subject) as string;
      // A held-out template is trained only through a known_1000 prompt that uses it (a counted "leak").
      if (heldOut.has(tpl)) {
        t.is(p, f.knownPrompt as string);
        t.true((manifest.heldOutLeaks[tpl] ?? 0) > 0);
      }
      const first = f.object.split(' ')[0] as string;
      for (const l of startsWithCount(p)) if (!l.startsWith(`${p} ${first}`)) conflicts++;
    }
  }
  t.true(heldOutChecked > 1000, `held-out prompts checked: ${heldOutChecked}`);
  t.is(conflicts, 0);
  // Template level: a held-out template with no leak appears with no subject at all among the fact lines.
  const trainedTemplates = new Set(facts.flatMap((f) => f.trainedPrompts.map((p) => templateOf(p, f.subject))));
  for (const tpl of heldOut) if (manifest.heldOutLeaks[tpl] === 0) t.false(trainedTemplates.has(tpl), tpl);
});

dataTest('facts cover known_1000 as given and the selected CounterFact cases with their neighbours', async (t) => {
  const { dir, manifest } = await buildOnce();
  const { facts, counterfactCases } = await readCorpusFacts(dir);
  const known = await loadKnownFacts();
  const byId = new Map(facts.map((f) => [f.id, f]));
  const knownFacts = facts.filter((f) => f.knownPrompt !== undefined);
  t.is(knownFacts.length, known.length);
  for (const k of known) {
    const f = knownFacts.find((x) => x.source === `known_1000:${k.knownId}`);
    t.truthy(f, `known ${k.knownId}`);
    t.is(f?.knownPrompt, k.prompt);
    t.is(f?.object, k.attribute);
    t.is(f?.relation, k.relationId);
    t.true(f?.trainedPrompts.includes(k.prompt), `known ${k.knownId} prompt trained as given`);
  }
  const keys = new Set(facts.map((f) => `${f.subject}\u0000${f.relation}`));
  t.is(keys.size, facts.length, 'facts are unique per (subject, relation)');

  t.is(counterfactCases.length, manifest.counts['counterfactCasesSelected']);
  t.is(counterfactCases.length, OPTS.counterfactCases ?? 600);
  const edit = new Map((await loadCounterFact({ split: 'edit' })).map((r) => [r.caseId, r]));
  for (const c of counterfactCases) {
    const rec = edit.get(c.caseId);
    t.truthy(rec);
    t.is(rec?.prompt, c.prompt);
    t.is(rec?.targetTrue, c.targetTrue);
    t.is(rec?.targetNew, c.targetNew);
    t.is(rec?.neighborhoodPrompts[0], c.neighbourPrompt);
    const cf = byId.get(c.caseFactId);
    const nf = byId.get(c.neighbourFactId);
    t.is(cf?.object, c.targetTrue);
    t.is(nf?.object, c.targetTrue);
    t.is(cf?.relation, c.relation);
    t.is(nf?.relation, c.relation);
    t.true(cf?.trainedPrompts.includes(fillTemplate(c.prompt, c.subject)), `case ${c.caseId} prompt trained`);
    t.true(nf?.trainedPrompts.includes(c.neighbourPrompt), `case ${c.caseId} neighbour prompt trained`);
    t.false(manifest.heldOutTemplates.includes(c.prompt));
  }
  // Cases were taken in file order: every skipped case before the last selected one has a recorded reason.
  const skipped = Object.values(manifest.skippedCases).reduce((s, x) => s + x, 0);
  t.is(manifest.counts['counterfactCasesScanned'], counterfactCases.length + skipped);
});

dataTest('general text: valid lines come from held-out documents only; sizes respect the budgets', async (t) => {
  const { dir, manifest } = await buildOnce();
  const train = new Set(readFileSync(path.join(dir, 'train.txt'), 'utf8').split('\n').filter(Boolean));
  const valid = readFileSync(path.join(dir, 'valid-general.txt'), 'utf8').split('\n').filter(Boolean);
  t.true(valid.length > 0);
  t.is(valid.filter((l) => train.has(l)).length, 0);
  t.true((manifest.chars['generalTrain'] ?? 0) <= (OPTS.generalChars as number));
  t.true((manifest.chars['generalTrain'] ?? 0) > 0.95 * (OPTS.generalChars as number));
  t.true((manifest.chars['valid'] ?? 0) <= (OPTS.validChars as number));
  const { facts } = await readCorpusFacts(dir);
  const factSet = new Set(facts.flatMap((f) => f.trainedPrompts.map((p) => factLine(p, f.object))));
  const general = [...train].filter((l) => !factSet.has(l));
  t.true(general.length > 0);
  t.true(general.every((l) => l.length <= 250));
  const tok = readFileSync(path.join(dir, 'tokenizer-input.txt'), 'utf8').split('\n').filter(Boolean);
  t.is(new Set(tok).size, tok.length);
  t.deepEqual(new Set(tok), train);
  const inputs = new Set(manifest.inputs.map((i) => i.relPath));
  for (const f of [KNOWN_FACTS_FILE, easyEditFile('edit'), WIKITEXT_RAW_TEST, `${GUTENBERG_DIR}/Austen__Emma.txt`]) t.true(inputs.has(f), f);
  for (const i of manifest.inputs) t.is(i.sha256, sha(path.join(manifest.dataDir, i.relPath)));
});

dataTest('object coverage adds train-split facts for the relation objects CounterFact uses, and leaves the rest alone', async (t) => {
  const N = 5;
  const { dir } = await buildOnce();
  const dir2 = tmpDir();
  const m = await writeFactCorpus(await buildFactCorpus({ ...OPTS, coverObjects: N }), dir2, 'coverage');
  const base = await readCorpusFacts(dir);
  const cov = await readCorpusFacts(dir2);
  const key = (f: { subject: string; relation: string; object: string }) => `${f.subject}|${f.relation}|${f.object}`;
  // The evaluated selection does not move: the same cases and the same non-coverage facts.
  t.deepEqual(cov.counterfactCases, base.counterfactCases);
  t.deepEqual(cov.facts.filter((f) => f.role !== 'counterfact-coverage').map(key), base.facts.map(key));
  const added = cov.facts.filter((f) => f.role === 'counterfact-coverage');
  t.true(added.length > 100, `${added.length} coverage facts`);
  t.is(m.counts['factsCounterfactCoverage'], added.length);
  // Each coverage fact is a true train-split fact whose subject the edit split never evaluates.
  const train = new Map((await loadCounterFact({ split: 'train' })).map((r) => [r.caseId, r]));
  const edit = await loadCounterFact({ split: 'edit' });
  const editSubjects = new Set(edit.map((r) => r.subject));
  for (const f of added) {
    const id = Number(/^counterfact-train:(\d+)$/.exec(f.source)?.[1]);
    const rec = train.get(id);
    t.truthy(rec, f.source);
    t.is(rec?.subject, f.subject);
    t.is(rec?.targetTrue, f.object);
    t.is(rec?.relationId, f.relation);
    t.false(editSubjects.has(f.subject), f.subject);
  }
  // Every pair used ≥ N times is now some fact's (relation, object), except those counted as without a source.
  const uses = new Map<string, number>();
  for (const r of [...train.values(), ...edit, ...(await loadCounterFact({ split: 'val' }))]) {
    if (!r.relationId) continue;
    for (const o of [r.targetTrue, r.targetNew]) uses.set(`${r.relationId}|${o}`, (uses.get(`${r.relationId}|${o}`) ?? 0) + 1);
  }
  const have = (facts: { relation: string; object: string }[]) => new Set(facts.map((f) => `${f.relation}|${f.object}`));
  const frequent = [...uses].filter(([, n]) => n >= N).map(([k]) => k);
  const missingBefore = frequent.filter((k) => !have(base.facts).has(k)).length;
  const missingAfter = frequent.filter((k) => !have(cov.facts).has(k)).length;
  t.is(m.counts['coveragePairsNeeded'], missingBefore);
  t.true(missingAfter <= (m.counts['coveragePairsWithoutSource'] ?? 0) + (m.counts['factsDroppedNoRendering'] ?? 0), `${missingAfter} still missing`);
  t.true(missingAfter < missingBefore / 2, `${missingBefore} → ${missingAfter}`);
});
