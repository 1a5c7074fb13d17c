/**
 * A synthetic population for the bundled model's corpus: fictional people, each with several attributes drawn from
 * the real relations and their real objects, described by several biographies with shuffled sentence order.
 *
 * Why: each real subject in our datasets has one fact, stated right before its object, so a small model can learn
 * every fact as a lookup at the last prompt token. Allen-Zhu & Li (2023, arXiv 2309.14316) show that *knowledge
 * augmentation* — several attributes per entity, several biographies per entity with permuted sentences and varied
 * templates — moves attribute storage onto the entity's name tokens, and that augmenting a subset of entities changes
 * how the others are stored too; Zucchet et al. (2025, arXiv 2503.21676) find the large-model recall circuit (attribute
 * written at the subject's last token, read by late attention) in small models trained this way. Invented attributes
 * are given only to invented people, never to real subjects.
 *
 * Names are built from syllables so that first and last names share tokens across people: an identity is then a
 * combination of tokens, which has to be composed at the name's last token rather than read off one token.
 */
import { createRng, type Rng } from '../rng.js';
import { appositiveRendering, type SpanRendering } from './appositives.js';
import { fillTemplate } from './relations.js';

/** Relations a synthetic person has: every person gets `core`, plus `extraPerPerson` of `extra`. */
export const PERSON_RELATIONS = {
  core: ['P19', 'P27', 'P1412', 'P937', 'P108'],
  extra: ['P101', 'P106', 'P140', 'P641', 'P1303', 'P136', 'P20', 'P463'],
} as const;

/** Options for {@link buildSyntheticPopulation}. */
export interface SyntheticPopulationOptions {
  seed: number;
  /** Number of fictional people. */
  people: number;
  /** Attributes from PERSON_RELATIONS.extra per person, on top of the core ones. */
  extraPerPerson: number;
  /** Biographies per person (each states every attribute once, in a random order). */
  biographies: number;
  /** Share of later sentences in a biography that refer to the person by pronoun rather than by name. */
  pronounShare: number;
  /** Share of biographies that open with an appositive ("<name>, a citizen of France, ..."). */
  appositiveShare: number;
  /** Per relation: its trained templates (with "{}"); relations without any are skipped. */
  trainedTemplates: ReadonlyMap<string, readonly string[]>;
  /** Per relation: its held-out templates (never trained; filled with the name for evaluation). */
  heldOutTemplates: ReadonlyMap<string, readonly string[]>;
  /** Per relation: the objects to draw from (each distinct, e.g. real objects seen at least twice). */
  objects: ReadonlyMap<string, readonly string[]>;
  /** Strings no generated name may equal or contain as a word (real subjects and objects). */
  reserved: ReadonlySet<string>;
  /** Appositive templates ("{}, born in") that may be trained (not clashing with held-out templates). */
  appositiveAllowed: (template: string) => boolean;
}

/** One attribute of a synthetic person. */
export interface SyntheticFact {
  subject: string;
  relation: string;
  object: string;
  /** Question-style prompts (the relation's trained templates filled with the name) trained as fact lines. */
  trainedPrompts: string[];
  heldOutPrompts: string[];
}

/** A generated document with the objects it states (each after its `prompt`, the text that precedes it). */
export interface SpanDocument {
  text: string;
  objects: { prompt: string; object: string }[];
}

/** The population: its facts and its biographies. */
export interface SyntheticPopulation {
  people: { name: string; pronoun: 'He' | 'She'; relations: string[] }[];
  facts: SyntheticFact[];
  biographies: SpanDocument[];
}

const ONSETS = ['b', 'br', 'c', 'd', 'dr', 'f', 'g', 'gr', 'h', 'k', 'l', 'm', 'n', 'p', 'r', 's', 'st', 't', 'tr', 'v', 'z'];
const VOWELS = ['a', 'e', 'i', 'o', 'u', 'ai', 'ei', 'ou'];
const CODAS = ['', '', 'n', 'r', 'l', 's', 'th', 'nd', 'rk', 'm'];

function syllable(rng: Rng): string {
  const pick = (xs: readonly string[]): string => xs[rng.int(xs.length)] as string;
  return pick(ONSETS) + pick(VOWELS) + pick(CODAS);
}

function word(rng: Rng, syllables: number): string {
  let w = '';
  for (let i = 0; i < syllables; i++) w += syllable(rng);
  return w.charAt(0).toUpperCase() + w.slice(1);
}

/**
 * Fictional names "First Last" from pools of `nFirst` first names and `nLast` last names (shared across people),
 * avoiding `reserved` words. Deterministic in `rng`.
 */
export function fictionalNames(rng: Rng, n: number, reserved: ReadonlySet<string>): string[] {
  const reservedWords = new Set<string>();
  for (const r of reserved) for (const w of r.split(/\s+/)) reservedWords.add(w.toLowerCase());
  const pool = (k: number, syl: () => number): string[] => {
    const out = new Set<string>();
    let guard = 0;
    while (out.size < k && guard++ < k * 100) {
      const w = word(rng, syl());
      if (w.length < 4 || w.length > 11 || reservedWords.has(w.toLowerCase())) continue;
      out.add(w);
    }
    return [...out];
  };
  const nFirst = Math.max(8, Math.ceil(Math.sqrt(n) * 1.5));
  const nLast = Math.max(8, Math.ceil(Math.sqrt(n) * 3));
  const firsts = pool(nFirst, () => 2);
  const lasts = pool(nLast, () => 2 + rng.int(2));
  const names = new Set<string>();
  let guard = 0;
  while (names.size < n && guard++ < n * 100) {
    const name = `${firsts[rng.int(firsts.length)]} ${lasts[rng.int(lasts.length)]}`;
    if (!reserved.has(name)) names.add(name);
  }
  if (names.size < n) throw new Error(`fictionalNames: could only make ${names.size} distinct names of ${n}`);
  return [...names];
}

/** A sentence of a biography: the template with the name or a pronoun, then " <object>." */
function sentence(template: string, name: string, pronoun: 'He' | 'She', usePronoun: boolean, object: string): { prompt: string; text: string } {
  let prompt: string;
  if (usePronoun && template.startsWith("{}'s ")) prompt = (pronoun === 'He' ? 'His' : 'Her') + template.slice(4);
  else if (usePronoun && template.startsWith('{} ')) prompt = pronoun + template.slice(2);
  else prompt = fillTemplate(template, name);
  return { prompt, text: `${prompt} ${object}${/[.!?]$/.test(object) ? '' : '.'}` };
}

/** Builds the population (see the module comment); deterministic in `opts.seed`. */
export function buildSyntheticPopulation(opts: SyntheticPopulationOptions): SyntheticPopulation {
  const rng = createRng(opts.seed);
  const usable = (r: string): boolean => (opts.trainedTemplates.get(r)?.length ?? 0) > 0 && (opts.objects.get(r)?.length ?? 0) >= 2;
  const core = PERSON_RELATIONS.core.filter(usable);
  const extra = PERSON_RELATIONS.extra.filter(usable);
  const names = fictionalNames(rng, opts.people, opts.reserved);
  const people: SyntheticPopulation['people'] = [];
  const facts: SyntheticFact[] = [];
  const biographies: SpanDocument[] = [];
  for (const name of names) {
    const pronoun: 'He' | 'She' = rng.next() < 0.5 ? 'He' : 'She';
    const rels = [...core, ...rng.shuffle([...extra]).slice(0, Math.min(extra.length, opts.extraPerPerson))];
    people.push({ name, pronoun, relations: rels });
    const attrs = rels.map((r) => {
      const objs = opts.objects.get(r) as readonly string[];
      return { relation: r, object: objs[rng.int(objs.length)] as string };
    });
    for (const a of attrs) {
      const trained = opts.trainedTemplates.get(a.relation) as readonly string[];
      facts.push({
        subject: name,
        relation: a.relation,
        object: a.object,
        trainedPrompts: trained.map((t) => fillTemplate(t, name)),
        heldOutPrompts: (opts.heldOutTemplates.get(a.relation) ?? []).map((t) => fillTemplate(t, name)),
      });
    }
    for (let b = 0; b < opts.biographies; b++) {
      const order = rng.shuffle([...attrs]);
      const parts: string[] = [];
      const objects: SpanDocument['objects'] = [];
      let named = false;
      if (rng.next() < opts.appositiveShare && order.length > 1) {
        const first = order.shift() as (typeof order)[number];
        const app: SpanRendering | null = appositiveRendering(name, first.relation, first.object, rng.int(1000), opts.appositiveAllowed);
        if (app) {
          // "<name>, a citizen of France," then the next attribute's predicate completes the sentence.
          const next = order.shift() as (typeof order)[number];
          const ts = opts.trainedTemplates.get(next.relation) as readonly string[];
          const t = ts.find((x) => x.startsWith('{} ') && !x.includes('?'));
          const opening = app.text.slice(0, app.text.length - app.text.split(', ').slice(-1)[0]!.length).trimEnd();
          objects.push({ prompt: app.prompt, object: first.object });
          if (t) {
            const prompt = `${opening} ${t.slice(3)}`;
            objects.push({ prompt, object: next.object });
            parts.push(`${prompt} ${next.object}.`);
          } else {
            parts.push(app.text);
            order.unshift(next);
          }
          named = true;
        } else order.unshift(first);
      }
      for (const a of order) {
        const ts = opts.trainedTemplates.get(a.relation) as readonly string[];
        const t = ts[rng.int(ts.length)] as string;
        const s = sentence(t, name, pronoun, named && rng.next() < opts.pronounShare, a.object);
        const before = parts.length ? `${parts.join(' ')} ` : '';
        objects.push({ prompt: `${before}${s.prompt}`, object: a.object });
        parts.push(s.text);
        named = true;
      }
      biographies.push({ text: parts.join(' '), objects });
    }
  }
  return { people, facts, biographies };
}
