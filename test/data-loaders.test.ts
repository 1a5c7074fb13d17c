import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  easyEditFile,
  easyEditRelationInference,
  isParaphrasePrompt,
  loadCounterFact,
  normaliseCounterFactRecord,
} from '../lib/data/counterfact.js';
import { DatasetFormatError } from '../lib/data/json.js';
import { KNOWN_FACTS_FILE, loadKnownFacts } from '../lib/data/knownFacts.js';
import { findDataFile } from '../lib/data/paths.js';
import { fillTemplate, inferRelations, TemplateMatcher, templateOf } from '../lib/data/relations.js';
import { loadZsre, ZSRE_EVAL_FILE } from '../lib/data/zsre.js';

// Record counts are those documented for ../shared/data (shared/README.md), not derived from the loaders.
const HAVE_DATA = findDataFile(KNOWN_FACTS_FILE) !== null && findDataFile(easyEditFile('edit')) !== null;
const dataTest = HAVE_DATA ? test : test.skip;
if (!HAVE_DATA) console.warn('data-loaders: dataset files not found (set ROME_TS_DATA); dataset tests are skipped');

type Raw = Record<string, unknown>;
const readRaw = (rel: string): Raw[] => JSON.parse(readFileSync(findDataFile(rel) as string, 'utf8')) as Raw[];

dataTest('known_1000: 1,209 validated facts, fields mapped from the file', async (t) => {
  const facts = await loadKnownFacts();
  t.is(facts.length, 1209);
  const raw = readRaw(KNOWN_FACTS_FILE);
  t.deepEqual(
    facts.map((f) => [f.knownId, f.subject, f.attribute, f.template, f.prompt, f.relationId]),
    raw.map((r) => [r['known_id'], r['subject'], r['attribute'], r['template'], r['prompt'], r['relation_id']]),
  );
  t.is(new Set(facts.map((f) => f.relationId)).size, 33);
  for (const f of facts) t.true(f.prompt.includes(f.subject));
});

test('known facts: malformed records are rejected with the file, record and field', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rome-ts-bad-'));
  const file = path.join(dir, 'known.json');
  const good = { known_id: 0, subject: 'A', attribute: 'B', template: '{} is', prediction: '', prompt: 'A is', relation_id: 'P1' };
  writeFileSync(file, JSON.stringify([good, { ...good, known_id: 1, template: 'no placeholder' }]));
  const err = await t.throwsAsync(() => loadKnownFacts({ file }), { instanceOf: DatasetFormatError });
  t.regex((err as Error).message, /record 1/);
  writeFileSync(file, JSON.stringify([{ ...good, attribute: 3 }]));
  const err2 = await t.throwsAsync(() => loadKnownFacts({ file }), { instanceOf: DatasetFormatError });
  t.regex((err2 as Error).message, /"attribute" is not a string/);
  writeFileSync(file, JSON.stringify([good, good]));
  await t.throwsAsync(() => loadKnownFacts({ file }), { message: /duplicate known_id/ });
  rmSync(dir, { recursive: true, force: true });
});

dataTest('CounterFact EasyEdit splits: 10,000 / 10,000 / 1,919 cases, 21,919 in all', async (t) => {
  const [train, edit, val, all] = await Promise.all([
    loadCounterFact({ split: 'train' }),
    loadCounterFact({ split: 'edit' }),
    loadCounterFact({ split: 'val' }),
    loadCounterFact({ split: 'all' }),
  ]);
  t.is(train.length, 10000);
  t.is(edit.length, 10000);
  t.is(val.length, 1919);
  t.is(all.length, 21919);
  t.is(new Set(all.map((r) => r.caseId)).size, 21919);
  for (let i = 1; i < all.length; i++) t.true((all[i] as { caseId: number }).caseId > (all[i - 1] as { caseId: number }).caseId);
  t.deepEqual((await loadCounterFact({ split: 'edit', limit: 3 })).map((r) => r.caseId), edit.slice(0, 3).map((r) => r.caseId));
  t.true(edit.every((r) => r.split === 'edit' && r.format === 'easyedit'));
});

dataTest('CounterFact EasyEdit records normalise: template with {}, targets, prompts', async (t) => {
  const raw = readRaw(easyEditFile('edit'));
  const recs = await loadCounterFact({ split: 'edit' });
  for (let i = 0; i < recs.length; i++) {
    const r = recs[i]!;
    const o = raw[i]!;
    t.is(r.caseId, o['case_id'] as number);
    t.is(fillTemplate(r.prompt, r.subject), o['prompt'] as string);
    t.is(r.prompt.split('{}').length, 2);
    t.is(r.targetTrue, o['ground_truth'] as string);
    t.is(r.targetNew, o['target_new'] as string);
    t.deepEqual(r.neighborhoodPrompts, [o['locality_prompt']]);
    t.deepEqual([...r.paraphrasePrompts, ...r.generationPrompts], [o['rephrase_prompt']]);
  }
  const first = recs[0]!;
  t.is(first.prompt, 'The mother tongue of {} is');
  t.is(first.relationId, 'P103');
  t.true(first.relationInferred);
});

dataTest('EasyEdit rephrase prompts split into ROME paraphrase prompts (prefix + template) and generation prompts', async (t) => {
  const all = await loadCounterFact();
  const para = all.filter((r) => r.paraphrasePrompts.length === 1);
  const gen = all.filter((r) => r.generationPrompts.length === 1);
  t.is(para.length + gen.length, all.length);
  // Paraphrase prompts end with "<subject><rest of a template>" after some prefix text.
  for (const r of para) {
    const p = r.paraphrasePrompts[0]!;
    t.true(p.includes(r.subject));
    t.true(p.indexOf(r.subject) > 0);
  }
  t.true(para.length > 3000 && para.length < 5000, `paraphrase count ${para.length}`);
  t.true(isParaphrasePrompt('Some text. Foo Bar is a citizen of', 'Foo Bar', ['{} is a citizen of']));
  t.false(isParaphrasePrompt('Foo Bar is a citizen of', 'Foo Bar', ['{} is a citizen of']));
  t.false(isParaphrasePrompt('The passport that Foo Bar carries is', 'Foo Bar', ['{} is a citizen of']));
});

dataTest('ROME-format samples normalise as given, and relation inference agrees with their relation ids', async (t) => {
  const inf = await easyEditRelationInference();
  t.truthy(inf);
  let checked = 0;
  for (const name of ['rome-format-sample-least_orthogonal.json', 'rome-format-sample-most_orthogonal.json']) {
    const rel = `counterfact/${name}`;
    const file = findDataFile(rel);
    if (!file) continue;
    const raw = readRaw(rel);
    const recs = await loadCounterFact({ file });
    t.is(recs.length, raw.length);
    recs.forEach((r, i) => {
      const o = raw[i] as { case_id: number; requested_rewrite: Raw; paraphrase_prompts: string[]; neighborhood_prompts: string[]; attribute_prompts: string[]; generation_prompts: string[] };
      const rw = o.requested_rewrite as { prompt: string; subject: string; relation_id: string; target_true: { str: string }; target_new: { str: string } };
      t.is(r.format, 'rome');
      t.is(r.caseId, o.case_id);
      t.is(r.prompt, rw.prompt);
      t.is(r.subject, rw.subject);
      t.is(r.targetTrue, rw.target_true.str);
      t.is(r.targetNew, rw.target_new.str);
      t.is(r.relationId, rw.relation_id);
      t.false(r.relationInferred);
      t.deepEqual(r.paraphrasePrompts, o.paraphrase_prompts);
      t.deepEqual(r.neighborhoodPrompts, o.neighborhood_prompts);
      t.deepEqual(r.attributePrompts, o.attribute_prompts);
      t.deepEqual(r.generationPrompts, o.generation_prompts);
      // The same case in the EasyEdit files gets the same relation by inference.
      t.is(inf!.caseRelation.get(r.caseId), rw.relation_id, `case ${r.caseId}`);
      checked++;
    });
  }
  t.is(checked, 20);
});

test('EasyEdit and ROME records normalise from inline objects; bad records are rejected', (t) => {
  const ee = normaliseCounterFactRecord('x.json', 0, {
    case_id: 7,
    prompt: 'The mother tongue of A $& B is',
    subject: 'A $& B',
    target_new: 'English',
    ground_truth: 'French',
    rephrase_prompt: 'Where A $& B is from, people speak the language of',
    locality_prompt: 'C is a native speaker of',
    locality_ground_truth: 'French',
  });
  t.is(ee.prompt, 'The mother tongue of {} is');
  t.is(fillTemplate(ee.prompt, ee.subject), 'The mother tongue of A $& B is');
  t.is(ee.relationId, null);
  t.throws(
    () =>
      normaliseCounterFactRecord('x.json', 3, {
        case_id: 1,
        prompt: 'no subject here',
        subject: 'Z',
        target_new: 'a',
        ground_truth: 'b',
        rephrase_prompt: 'r',
        locality_prompt: 'l',
        locality_ground_truth: 'b',
      }),
    { instanceOf: DatasetFormatError, message: /record 3.*subject/ },
  );
  t.throws(
    () => normaliseCounterFactRecord('x.json', 0, { case_id: 1, requested_rewrite: { prompt: 'no placeholder', subject: 's' } }),
    { instanceOf: DatasetFormatError },
  );
});

test('template helpers: templateOf / fillTemplate round-trip, matcher prefers the longest literal', (t) => {
  t.is(templateOf('Paris is the capital of France', 'Paris'), '{} is the capital of France');
  t.is(templateOf('no', 'Paris'), null);
  const m = new TemplateMatcher(['{} is', '{} is a citizen of', 'The capital of {} is']);
  t.deepEqual(m.match('Ada Lovelace is a citizen of'), { template: '{} is a citizen of', subject: 'Ada Lovelace' });
  t.deepEqual(m.match('The capital of France is'), { template: 'The capital of {} is', subject: 'France' });
  t.is(m.match('is a citizen of'), null);
});

test('relation inference: template evidence, neighbour templates and objects decide; unconnected cases are null', (t) => {
  const known = [
    { knownId: 0, subject: 'A', attribute: 'Asia', template: '{} is located in the continent', prediction: '', prompt: 'A is located in the continent', relationId: 'P30' },
    { knownId: 1, subject: 'B', attribute: 'France', template: '{} is located in the country of', prediction: '', prompt: 'B is located in the country of', relationId: 'P17' },
    { knownId: 2, subject: 'C', attribute: 'Europe', template: '{} is in', prediction: '', prompt: 'C is in', relationId: 'P30' },
    { knownId: 3, subject: 'D', attribute: 'Italy', template: '{} is in', prediction: '', prompt: 'D is in', relationId: 'P17' },
  ];
  const inf = inferRelations(known, [
    // Ambiguous own template; the neighbour template is P30-only.
    { caseId: 1, template: '{} is in', neighbourPrompt: 'Mount X is located in the continent', object: 'Africa' },
    // Ambiguous template and no neighbour evidence: the object decides.
    { caseId: 2, template: '{} is in', neighbourPrompt: null, object: 'Italy' },
    // A template no labelled template connects to.
    { caseId: 3, template: '{} is signed to', neighbourPrompt: 'Y is signed to', object: 'Label' },
  ]);
  t.is(inf.caseRelation.get(1), 'P30');
  t.deepEqual(inf.neighbour.get(1), { template: '{} is located in the continent', subject: 'Mount X' });
  t.is(inf.caseRelation.get(2), 'P17');
  t.is(inf.caseRelation.get(3), null);
});

dataTest('zsRE: 1,037 records with subject, question, rephrase, target and locality', async (t) => {
  const recs = await loadZsre();
  t.is(recs.length, 1037);
  const raw = readRaw(ZSRE_EVAL_FILE);
  recs.forEach((r, i) => {
    const o = raw[i]!;
    t.is(r.subject, o['subject'] as string);
    t.is(r.prompt, o['src'] as string);
    t.is(fillTemplate(r.template, r.subject), r.prompt);
    t.is(r.rephrase, o['rephrase'] as string);
    t.is(r.target, o['alt'] as string);
    t.deepEqual(r.answers, o['answers']);
    t.is(r.locPrompt, o['loc'] as string);
    t.is(r.locAnswer, o['loc_ans'] as string);
  });
  t.is((await loadZsre({ limit: 5 })).length, 5);
});
