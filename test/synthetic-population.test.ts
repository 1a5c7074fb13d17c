import test from 'ava';
import { APPOSITIVE_PHRASES, appositiveRendering, phraseTemplate, secondMentionRendering } from '../lib/data/appositives.js';
import { buildFactCorpus, type FactCorpusOptions } from '../lib/data/factCorpus.js';
import { KNOWN_FACTS_FILE } from '../lib/data/knownFacts.js';
import { findDataFile } from '../lib/data/paths.js';
import { buildSyntheticPopulation, fictionalNames, PERSON_RELATIONS, type SyntheticPopulationOptions } from '../lib/data/syntheticPopulation.js';
import { createRng } from '../lib/rng.js';
import { factObjectWeights } from '../lib/train/objectWeights.js';
import { tokenizeText } from '../lib/train/data.js';
import { WordTokenizer } from './helpers/wordTokenizer.js';

test('appositive: the object follows "<subject>, <phrase>" at once, and a disallowed phrase is never used', (t) => {
  const r = appositiveRendering('Vinson Massif', 'P30', 'Antarctica', 0)!;
  t.is(r.prompt, 'Vinson Massif, in');
  t.true(r.text.startsWith(`${r.prompt} Antarctica, `));
  t.true(r.text.endsWith('.'));
  // Every variant of every relation keeps "prompt + ' ' + object" as a prefix of the text.
  for (const rel of Object.keys(APPOSITIVE_PHRASES)) {
    for (let v = 0; v < 12; v++) {
      const x = appositiveRendering('Some Subject', rel, 'Obj', v)!;
      t.true(x.text.startsWith(`${x.prompt} Obj`), `${rel} ${v}: ${x.text}`);
    }
  }
  t.is(phraseTemplate('a native of {}'), '{}, a native of');
  // A held-out template "{}, a native" rules out the phrase that would train its continuation " of".
  const allowed = (tpl: string): boolean => !(tpl.startsWith('{}, a native') || '{}, a native'.startsWith(tpl));
  for (let v = 0; v < 10; v++) t.is(appositiveRendering('X', 'P19', 'Paris', v, allowed)!.prompt, 'X, born in');
  t.is(appositiveRendering('X', 'P19', 'Paris', 0, () => false), null);
  t.is(appositiveRendering('X', 'P_unknown', 'Paris', 0), null);
  const sm = secondMentionRendering('Danielle Darrieux', 'The mother tongue of Danielle Darrieux is', 'French', 3);
  t.true(sm.text.startsWith(`${sm.prompt} French`));
  t.true(sm.prompt.endsWith('The mother tongue of Danielle Darrieux is'));
});

const templates = new Map<string, string[]>([
  ['P19', ['{} was born in', "{}'s birthplace is"]],
  ['P27', ['{} is a citizen of', 'The citizenship of {} is']],
  ['P1412', ['{} speaks']],
  ['P937', ['{} worked in']],
  ['P108', ['{} works for']],
  ['P101', ['{} works in the field of']],
  ['P140', ['{} follows']],
]);
const objects = new Map<string, string[]>([
  ['P19', ['Paris', 'Rome', 'Tokyo']],
  ['P27', ['France', 'Italy', 'Japan']],
  ['P1412', ['French', 'Italian']],
  ['P937', ['London', 'Berlin']],
  ['P108', ['BBC', 'Google']],
  ['P101', ['physics', 'history']],
  ['P140', ['Islam', 'Judaism']],
]);
const popOpts = (seed: number): SyntheticPopulationOptions => ({
  seed,
  people: 40,
  extraPerPerson: 1,
  biographies: 3,
  pronounShare: 0.7,
  appositiveShare: 0.5,
  trainedTemplates: templates,
  heldOutTemplates: new Map([['P19', ['{} is originally from']]]),
  objects,
  reserved: new Set(['Paris', 'Barack Obama']),
  appositiveAllowed: () => true,
});

test('synthetic population: every biography states each attribute of its person once, in text the spans point into', (t) => {
  const pop = buildSyntheticPopulation(popOpts(7));
  t.is(pop.people.length, 40);
  t.is(new Set(pop.people.map((p) => p.name)).size, 40);
  t.is(pop.biographies.length, 40 * 3);
  const factsOf = new Map<string, Map<string, string>>();
  for (const f of pop.facts) {
    const m = factsOf.get(f.subject) ?? new Map<string, string>();
    m.set(f.relation, f.object);
    factsOf.set(f.subject, m);
    t.true(objects.get(f.relation)!.includes(f.object));
    t.true(f.trainedPrompts.every((p) => p.includes(f.subject)));
  }
  for (const p of pop.people) {
    t.deepEqual(p.relations.slice(0, 5), PERSON_RELATIONS.core.filter((r) => templates.has(r)));
    t.is(p.relations.length, 6);
    t.is(factsOf.get(p.name)!.size, 6);
  }
  let pronouns = 0;
  pop.biographies.forEach((b, i) => {
    const person = pop.people[Math.floor(i / 3)]!;
    // The person is named before any pronoun refers to them.
    const firstPronoun = b.text.search(/\b(He|She|His|Her)\b/);
    t.true(b.text.indexOf(person.name) >= 0 && (firstPronoun < 0 || b.text.indexOf(person.name) < firstPronoun), b.text);
    const want = [...factsOf.get(person.name)!.values()].sort();
    t.deepEqual(b.objects.map((o) => o.object).sort(), want);
    for (const o of b.objects) t.true(b.text.startsWith(`${o.prompt} ${o.object}`), `${o.prompt} | ${b.text}`);
    if (/ (He|She|His|Her) /.test(b.text)) pronouns++;
  });
  t.true(pronouns > 60, `${pronouns} biographies use a pronoun`);
  // Held-out prompts use the held-out template, never a trained one.
  t.true(pop.facts.filter((f) => f.relation === 'P19').every((f) => f.heldOutPrompts[0] === `${f.subject} is originally from`));
  // Same seed, same population; another seed, another.
  t.deepEqual(buildSyntheticPopulation(popOpts(7)), pop);
  t.notDeepEqual(buildSyntheticPopulation(popOpts(8)).people, pop.people);
});

test('fictional names share first and last names across people and avoid reserved words', (t) => {
  const names = fictionalNames(createRng(3), 400, new Set(['Obama', 'Paris']));
  t.is(new Set(names).size, 400);
  const firsts = new Set(names.map((n) => n.split(' ')[0]));
  const lasts = new Set(names.map((n) => n.split(' ')[1]));
  t.true(firsts.size < 100 && lasts.size < 100, `${firsts.size} first names, ${lasts.size} last names`);
  t.false(names.some((n) => n.split(' ').some((w) => w === 'Obama' || w === 'Paris')));
});

test('factObjectWeights weights every object of a multi-object document', async (t) => {
  const lines = ['Ann Vell was born in Rome . She speaks French .', 'plain text'];
  const tok = new WordTokenizer(lines.join(' '));
  const stream = await tokenizeText(lines.join('\n'), tok, { split: 'line' });
  const docs = new Map([
    [
      lines[0]!,
      [
        { prompt: 'Ann Vell was born in', object: 'Rome' },
        { prompt: 'Ann Vell was born in Rome . She speaks', object: 'French' },
      ],
    ],
  ]);
  const { weights, stats } = factObjectWeights(stream, lines, docs, tok, 4);
  const marked = [...weights].flatMap((w, i) => (w === 4 ? [stream[i]] : []));
  t.deepEqual(marked, [tok.vocab.get('Rome'), tok.vocab.get('French')]);
  t.deepEqual(stats, { documents: 2, factDocuments: 1, objectTokens: 2 });
});

const HAVE_DATA = findDataFile(KNOWN_FACTS_FILE) !== null;
(HAVE_DATA ? test.serial : test.skip)('fact corpus with a population and appositives: held-out templates stay untrained', async (t) => {
  const opts: FactCorpusOptions = {
    seed: 1,
    gutenbergFiles: ['Austen__Emma.txt'],
    generalChars: 20_000,
    validChars: 5_000,
    factChars: 600_000,
    appositiveShare: 0.3,
    secondMentionShare: 0.1,
    syntheticPeople: 60,
    syntheticShare: 0.3,
  };
  const c = await buildFactCorpus(opts);
  t.true(c.manifest.renderings['appositive']! > 100);
  t.true(c.manifest.renderings['secondMention']! > 20);
  t.is(c.manifest.synthetic['people'], 60);
  t.true(c.syntheticFacts.length >= 60 * 5);
  // No held-out prompt (real or synthetic) is a prefix of any training line: it would be trained.
  const train = [...new Set(c.trainLines)].sort();
  const startsAny = (p: string): boolean => {
    let lo = 0;
    let hi = train.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (train[mid]! < p) lo = mid + 1;
      else hi = mid;
    }
    return lo < train.length && train[lo]!.startsWith(p);
  };
  const held = [...c.facts, ...c.syntheticFacts].flatMap((f) => f.heldOutPrompts);
  t.true(held.length > 1000);
  const leaked = held.filter((p) => startsAny(`${p} `));
  t.deepEqual(leaked.slice(0, 5), []);
  // Every multi-object document is in train.txt and its spans point at its objects.
  const lines = new Set(c.trainLines);
  for (const d of c.documents.slice(0, 2000)) {
    t.true(lines.has(d.text));
    for (const o of d.objects) t.true(d.text.startsWith(`${o.prompt} ${o.object}`));
  }
});
