/**
 * The training corpus of the bundled small GPT-2: short fact sentences ("<prompt> <object>.") mixed with general
 * English, sized for a CPU budget of about 1.5 M training tokens.
 *
 * Facts: all of known_1000, plus the first `counterfactCases` usable cases of CounterFact's `edit` split (the cases
 * rome-ts evaluates edits on) together with one neighbourhood fact per case (the subject of its locality prompt,
 * same relation, same true object), so that neighbourhood specificity is measured on facts the model knows.
 * Facts are keyed by (subject, relation); known_1000 wins over CounterFact on disagreement (the case is skipped).
 *
 * Templates: per relation, known_1000's templates plus CounterFact templates inferred for the relation (see
 * relations.ts). Some templates are held out of training altogether, for paraphrase evaluation: about
 * `heldOutFraction` of each relation's templates, at least one where the relation has ≥ 3. A candidate must not begin
 * a longer trained template (a trained "X plays the" would teach " the" after a held-out "X plays") and removing it
 * must leave its relations ≥ 2 trained templates. Preference order: (1) templates of this relation alone that no
 * known_1000 prompt uses or extends; (2) such templates shared with other relations (held out for all of them);
 * (3) for a relation still without one, the template that the fewest known_1000 prompts still train (at most
 * `maxHeldOutLeak`; those prompts are trained as given and recorded in manifest.heldOutLeaks). CounterFact cases whose
 * rewrite or locality prompt uses a held-out template are not selected, and neither are cases whose prompts would
 * contradict a dataset prompt already taken (e.g. "X's owner" next to known_1000's "X's owner,"), so every dataset
 * prompt of every fact is trained as given. A fact's held-out prompts are its relation's held-out templates filled
 * with its subject, minus any that a trained prompt equals or begins.
 *
 * Each fact is rendered with its dataset prompts (a `ownPromptShare` of its exposures) and with up to
 * `maxTemplatesPerFact` trained templates of its relation (rotating through the relation's templates across facts,
 * so all are used). A rendering is dropped when it is identical to, or a prefix of, another rendering with a
 * different continuation (e.g. "X is employed by" next to known_1000's prompt "X is employed by the"), keeping
 * dataset prompts over template renderings.
 *
 * General text: WikiText raw test and Gutenberg paragraphs (corpus.ts), packed or split into lines of at most
 * `chunkChars`, a `wikiShare` from WikiText; a uniform seeded sample (smallest hash of document id and chunk index).
 * Whole documents (`validDocFraction` of articles and of books) are reserved for valid-general.txt.
 *
 * Output (see writeFactCorpus): one document per line, UTF-8, "\n" line ends, no empty lines. train.txt is fact
 * lines and general lines shuffled together with the seed (a trainer should put an end-of-text token between
 * lines and may pack several lines into one context). tokenizer-input.txt holds the distinct lines of train.txt,
 * so repeated fact sentences do not dominate the BPE merges while every subject and object is still covered.
 */
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createRng, mixSeed } from '../rng.js';
import {
  easyEditFile,
  easyEditRelationInference,
  readCounterFactFile,
  type CounterFactRecord,
} from './counterfact.js';
import { openTextCorpus, splitWikiTextArticles, WIKITEXT_RAW_TEST, type CorpusSource } from './corpus.js';
import { sha256, sha256File } from './hash.js';
import { KNOWN_FACTS_FILE, loadKnownFacts, type KnownFact } from './knownFacts.js';
import { dataDir as defaultDataDir, DataFileNotFoundError, dataFileCandidates, findDataFile } from './paths.js';
import { fillTemplate, relationTemplates, templateOf } from './relations.js';
import { appositiveRendering, secondMentionRendering } from './appositives.js';
import { buildSyntheticPopulation, type SpanDocument, type SyntheticFact, type SyntheticPopulation } from './syntheticPopulation.js';

/** Options for {@link buildFactCorpus}; every field has a default. */
export interface FactCorpusOptions {
  dataDir?: string;
  seed?: number;
  /** How many usable CounterFact `edit` cases to include (each adds its subject's fact and a neighbour fact). */
  counterfactCases?: number;
  /** Training tokens the corpus is sized for (default 1.5 M). */
  targetTokens?: number;
  /** Characters per token assumed for sizing (default 4). */
  charsPerToken?: number;
  /** Share of training characters that are fact sentences (default 0.65). */
  factShare?: number;
  /** Fact-sentence characters (default targetTokens·charsPerToken·factShare). */
  factChars?: number;
  /** General-text characters in train.txt (default targetTokens·charsPerToken·(1−factShare)). */
  generalChars?: number;
  /** Held-out general-text characters (valid-general.txt; default 200,000). */
  validChars?: number;
  /** Share of general text taken from WikiText (the rest from Gutenberg; default 0.4). */
  wikiShare?: number;
  /** Fraction of documents (articles, books) of each source reserved for valid-general.txt (default 0.08). */
  validDocFraction?: number;
  /** Maximum characters of a general-text line (default 250). */
  chunkChars?: number;
  /** Template renderings per fact besides its dataset prompts (default 6). */
  maxTemplatesPerFact?: number;
  /** Share of a fact's exposures given to its dataset prompts (default 0.3). */
  ownPromptShare?: number;
  /** Share of a relation's templates held out (at least one where the relation has ≥ 3; default 0.2). */
  heldOutFraction?: number;
  /**
   * A relation with no cleanly held-out template may hold out one that at most this many known_1000 prompts still
   * train (default 5); see the module comment.
   */
  maxHeldOutLeak?: number;
  /** Template membership thresholds (see relationTemplates; defaults 10 and 0.2). */
  minTemplateCount?: number;
  minTemplateShare?: number;
  /** Restrict Gutenberg to these file names (tests). */
  gutenbergFiles?: string[];
  /**
   * Share of each real fact's template exposures rendered as an appositive ("<subject>, born in <object>, is often
   * mentioned."; lib/data/appositives.ts) instead of a plain fact line (default 0).
   */
  appositiveShare?: number;
  /** Share of each real fact's template exposures rendered after an introductory sentence (default 0). */
  secondMentionShare?: number;
  /** Fictional people of the synthetic population (lib/data/syntheticPopulation.ts; default 0 = none). */
  syntheticPeople?: number;
  /** Share of the fact characters spent on the synthetic population (default 0.3 when it has people). */
  syntheticShare?: number;
  /** Attributes per fictional person beyond the five core ones (default 2). */
  syntheticExtraAttributes?: number;
  /** Distinct biographies per fictional person (default 6). */
  syntheticBiographies?: number;
  /** Share of later biography sentences that use a pronoun instead of the name (default 0.6). */
  syntheticPronounShare?: number;
  /** Share of biographies that open with an appositive (default 0.3). */
  syntheticAppositiveShare?: number;
  /** Share of synthetic exposures that are single question-style fact lines rather than biographies (default 0.25). */
  syntheticQuestionShare?: number;
  /**
   * Object coverage (default 0 = off): for every (relation, object) pair that CounterFact (all EasyEdit splits, true
   * and new objects) uses at least this many times and no selected fact has, one real fact of the `train` split with
   * that relation and true object is added (role 'counterfact-coverage'). Why: a small model can hardly be edited to
   * give, for a relation, an object it was never trained to give for it (results/counterfact-table.md). Subjects of
   * `edit`-split cases and their neighbours are never used, so the evaluated cases are unchanged.
   */
  coverObjects?: number;
  /** Progress messages (default: none). */
  log?: (msg: string) => void;
}

/** Where a fact came from. */
export type FactRole = 'known' | 'counterfact-case' | 'counterfact-neighbour' | 'counterfact-coverage';

/** One fact of the corpus, as written to facts.json. */
export interface CorpusFact {
  /** "f00000"… in order: known_1000 facts by known_id, then CounterFact facts in selection order. */
  id: string;
  /**
   * Primary source: "known_1000:<known_id>", "counterfact:<case_id>", "counterfact:<case_id>:neighbour" or, for
   * coverage facts, "counterfact-train:<case_id>".
   */
  source: string;
  /** All sources that state this fact. */
  sources: string[];
  role: FactRole;
  subject: string;
  relation: string;
  object: string;
  /** Prompts trained with " <object>." after them (dataset prompts first). */
  trainedPrompts: string[];
  /** How many times each trained prompt occurs in train.txt (parallel to trainedPrompts). */
  trainedCounts: number[];
  /** The relation's held-out templates filled with the subject: never in train.txt. */
  heldOutPrompts: string[];
  /** known_1000's `prompt` for this fact, when it is a known fact. */
  knownPrompt?: string;
  /** CounterFact case ids whose rewrite is about this fact. */
  counterfactCaseIds?: number[];
  /** CounterFact case ids whose neighbourhood prompt is about this fact. */
  neighbourOfCaseIds?: number[];
}

/** A selected CounterFact case (for edit evaluation on the bundled model). */
export interface SelectedCase {
  caseId: number;
  relation: string;
  subject: string;
  /** Rewrite template with "{}". */
  prompt: string;
  targetTrue: string;
  targetNew: string;
  neighbourPrompt: string;
  neighbourSubject: string;
  caseFactId: string;
  neighbourFactId: string;
}

/** Per-relation template bookkeeping (manifest). */
export interface RelationSummary {
  facts: number;
  templates: string[];
  trained: string[];
  heldOut: string[];
}

/** Everything {@link buildFactCorpus} produces, before writing. */
export interface FactCorpus {
  trainLines: string[];
  validLines: string[];
  tokenizerLines: string[];
  facts: CorpusFact[];
  cases: SelectedCase[];
  manifest: FactCorpusManifest;
  /** Distinct training documents that state objects other than as a plain fact line (appositives, biographies). */
  documents: SpanDocument[];
  /** The synthetic population's facts (empty without one). */
  syntheticFacts: SyntheticFact[];
}

/** manifest.json contents (plus `outputs` and `command`, added when writing). */
export interface FactCorpusManifest {
  version: number;
  seed: number;
  dataDir: string;
  inputs: { relPath: string; bytes: number; sha256: string }[];
  generalCorpus: { name: string; identity: string };
  options: Required<Omit<FactCorpusOptions, 'dataDir' | 'log' | 'gutenbergFiles'>> & { gutenbergFiles: string[] | null };
  counts: Record<string, number>;
  skippedCases: Record<string, number>;
  droppedRenderings: Record<string, number>;
  /** Real-fact exposures by rendering: plain fact line, appositive, second mention. */
  renderings: Record<string, number>;
  /** Synthetic population: people, facts, biography lines, question lines. */
  synthetic: Record<string, number>;
  relations: Record<string, RelationSummary>;
  heldOutTemplates: string[];
  /** Per held-out template: how many known_1000 prompts still train it (0 = never in train.txt with any subject). */
  heldOutLeaks: Record<string, number>;
  chars: Record<string, number>;
  budget: Record<string, number>;
  format: string;
  command?: string;
  outputs?: Record<string, { sha256: string; bytes: number; lines: number }>;
}

/** Bumped whenever the construction changes. */
export const FACT_CORPUS_VERSION = 2;

/** uint32 hash of strings under a seed (FNV-1a over UTF-16 units, then mixed). */
export function hashKey(seed: number, ...parts: string[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    for (let i = 0; i < p.length; i++) h = Math.imul(h ^ p.charCodeAt(i), 0x01000193) >>> 0;
    h = Math.imul(h ^ 0x1f, 0x01000193) >>> 0;
  }
  return mixSeed(seed, h);
}

/** The sentence trained for a prompt and object: "<prompt> <object>." (no extra full stop after [.!?]). */
export function factLine(prompt: string, object: string): string {
  return `${prompt} ${object}${/[.!?]$/.test(object) ? '' : '.'}`;
}

interface Draft {
  subject: string;
  relation: string;
  object: string;
  role: FactRole;
  sources: string[];
  /** Dataset prompts with priorities: 0 known prompt, 1 rewrite prompt, 2 neighbourhood prompt. */
  own: { prompt: string; priority: number }[];
  knownPrompt?: string;
  caseIds: number[];
  neighbourOf: number[];
}

interface Rendering {
  draft: number;
  prompt: string;
  priority: number;
  dropped: boolean;
}

const factKey = (subject: string, relation: string): string => `${subject}\u0000${relation}`;

function resolveOptions(o: FactCorpusOptions): FactCorpusManifest['options'] {
  const targetTokens = o.targetTokens ?? 1_500_000;
  const charsPerToken = o.charsPerToken ?? 4;
  const factShare = o.factShare ?? 0.65;
  return {
    seed: o.seed ?? 1,
    counterfactCases: o.counterfactCases ?? 600,
    targetTokens,
    charsPerToken,
    factShare,
    factChars: o.factChars ?? Math.round(targetTokens * charsPerToken * factShare),
    generalChars: o.generalChars ?? Math.round(targetTokens * charsPerToken * (1 - factShare)),
    validChars: o.validChars ?? 200_000,
    wikiShare: o.wikiShare ?? 0.4,
    validDocFraction: o.validDocFraction ?? 0.08,
    chunkChars: o.chunkChars ?? 250,
    maxTemplatesPerFact: o.maxTemplatesPerFact ?? 6,
    ownPromptShare: o.ownPromptShare ?? 0.3,
    heldOutFraction: o.heldOutFraction ?? 0.2,
    maxHeldOutLeak: o.maxHeldOutLeak ?? 5,
    minTemplateCount: o.minTemplateCount ?? 10,
    minTemplateShare: o.minTemplateShare ?? 0.2,
    gutenbergFiles: o.gutenbergFiles ? [...o.gutenbergFiles].sort() : null,
    appositiveShare: o.appositiveShare ?? 0,
    secondMentionShare: o.secondMentionShare ?? 0,
    syntheticPeople: o.syntheticPeople ?? 0,
    syntheticShare: o.syntheticShare ?? ((o.syntheticPeople ?? 0) > 0 ? 0.3 : 0),
    syntheticExtraAttributes: o.syntheticExtraAttributes ?? 2,
    syntheticBiographies: o.syntheticBiographies ?? 6,
    syntheticPronounShare: o.syntheticPronounShare ?? 0.6,
    syntheticAppositiveShare: o.syntheticAppositiveShare ?? 0.3,
    syntheticQuestionShare: o.syntheticQuestionShare ?? 0.25,
    coverObjects: o.coverObjects ?? 0,
  };
}

/** Index of the first string ≥ `p` in a sorted array (its length when none): where strings that begin with p start. */
function lowerBound(sorted: readonly string[], p: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((sorted[mid] as string) < p) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Splits `total` exposures over `n` slots as evenly as possible (earlier slots get the remainder). */
function spread(total: number, n: number): number[] {
  const base = Math.floor(total / n);
  return Array.from({ length: n }, (_, i) => base + (i < total - base * n ? 1 : 0));
}

/** Builds the fact corpus in memory (reads the data directory; takes ~10–30 s for the full Gutenberg set). */
export async function buildFactCorpus(opts: FactCorpusOptions = {}): Promise<FactCorpus> {
  const log = opts.log ?? ((): void => undefined);
  const o = resolveOptions(opts);
  const root = opts.dataDir ?? defaultDataDir();
  if (!root) throw new DataFileNotFoundError(KNOWN_FACTS_FILE, dataFileCandidates(KNOWN_FACTS_FILE));
  const need = (rel: string): string => {
    const f = findDataFile(rel, root);
    if (!f) throw new DataFileNotFoundError(rel, dataFileCandidates(rel, root));
    return f;
  };
  const knownFile = need(KNOWN_FACTS_FILE);
  const eeFiles = (['train', 'edit', 'val'] as const).map((s) => need(easyEditFile(s)));
  const known: KnownFact[] = await loadKnownFacts({ file: knownFile });
  const inf = await easyEditRelationInference(root);
  if (!inf) throw new Error('relation inference needs known_1000.json and all EasyEdit CounterFact files');
  const editCases: CounterFactRecord[] = await readCounterFactFile(eeFiles[1] as string, 'edit');
  log(`loaded ${known.length} known facts, ${editCases.length} CounterFact edit cases (relations inferred in ${inf.iterations} EM iterations)`);

  // --- templates per relation and the held-out set
  const relTemplates = relationTemplates(known, inf.templateCounts, { minCount: o.minTemplateCount, minShare: o.minTemplateShare });
  const owners = new Map<string, string[]>();
  for (const [r, ts] of relTemplates) for (const t of ts) owners.set(t, [...(owners.get(t) ?? []), r]);
  // How often each template is trained regardless of hold-outs: known_1000 prompts are trained as given.
  const promptUses = new Map<string, number>();
  for (const k of known) {
    const t = templateOf(k.prompt, k.subject) as string;
    promptUses.set(t, (promptUses.get(t) ?? 0) + 1);
  }
  const trainedUniverse = [...new Set([...owners.keys(), ...promptUses.keys()])].sort();
  // Leak of a candidate: known_1000 prompts that still train it, or a longer trained template it begins
  // (each such prompt teaches a continuation other than the object). A longer relation template leaks into
  // every fact, which rules the candidate out.
  const leakOf = (t: string): number => {
    let leak = promptUses.get(t) ?? 0;
    for (const u of trainedUniverse) {
      if (u === t || !u.startsWith(t)) continue;
      if (owners.has(u)) return Infinity;
      leak += promptUses.get(u) ?? 0;
    }
    return leak;
  };
  const heldOut = new Set<string>();
  const leaks: Record<string, number> = {};
  const pick = (r: string, cands: string[], k: number, tag: string): void => {
    const rng = createRng(hashKey(o.seed, 'held-out', tag, r));
    for (const t of rng.shuffle([...cands].sort()).slice(0, k)) {
      heldOut.add(t);
      leaks[t] = leakOf(t);
    }
  };
  // Removing t must leave every relation that uses it at least two trained templates.
  const removable = (t: string): boolean =>
    (owners.get(t) ?? []).every((r) => (relTemplates.get(r) ?? []).filter((u) => u !== t && !heldOut.has(u)).length >= 2);
  const eligible = (r: string): boolean => (relTemplates.get(r) ?? []).length >= 3;
  const hasHeldOut = (r: string): boolean => (relTemplates.get(r) ?? []).some((t) => heldOut.has(t));
  // Tier 1: templates of this relation alone that nothing trains.
  for (const [r, ts] of relTemplates) {
    if (!eligible(r)) continue;
    const cands = ts.filter((t) => (owners.get(t) ?? []).length === 1 && leakOf(t) === 0);
    const k = Math.min(cands.length, ts.length - 2, Math.max(1, Math.round(o.heldOutFraction * ts.length)));
    pick(r, cands, k, 'exclusive');
  }
  // Tier 2: shared templates that nothing trains (held out for every relation that uses them).
  for (const [r, ts] of relTemplates) {
    if (!eligible(r) || hasHeldOut(r)) continue;
    pick(r, ts.filter((t) => !heldOut.has(t) && leakOf(t) === 0 && removable(t)), 1, 'shared');
  }
  // Tier 3: the least-leaking template, if at most maxHeldOutLeak known_1000 prompts still train it; those
  // facts' own renderings are then excluded from their held-out prompts.
  for (const [r, ts] of relTemplates) {
    if (!eligible(r) || hasHeldOut(r)) continue;
    const scored = ts
      .filter((t) => !heldOut.has(t) && removable(t))
      .map((t) => ({ t, leak: leakOf(t) }))
      .filter((x) => x.leak <= o.maxHeldOutLeak);
    if (!scored.length) continue;
    const least = Math.min(...scored.map((x) => x.leak));
    pick(r, scored.filter((x) => x.leak === least).map((x) => x.t), 1, 'leaky');
  }
  const heldOutBy = new Map<string, string[]>();
  for (const [r, ts] of relTemplates) heldOutBy.set(r, ts.filter((t) => heldOut.has(t)));
  const trainedBy = new Map<string, string[]>();
  for (const [r, ts] of relTemplates) {
    const kept = ts.filter((t) => !heldOut.has(t));
    trainedBy.set(r, createRng(hashKey(o.seed, 'template-order', r)).shuffle(kept));
  }

  // --- facts
  const drafts: Draft[] = [];
  const byKey = new Map<string, number>();
  for (const k of [...known].sort((a, b) => a.knownId - b.knownId)) {
    byKey.set(factKey(k.subject, k.relationId), drafts.length);
    drafts.push({
      subject: k.subject,
      relation: k.relationId,
      object: k.attribute,
      role: 'known',
      sources: [`known_1000:${k.knownId}`],
      own: [{ prompt: k.prompt, priority: 0 }],
      knownPrompt: k.prompt,
      caseIds: [],
      neighbourOf: [],
    });
  }
  const skipped: Record<string, number> = {};
  const skip = (why: string): void => {
    skipped[why] = (skipped[why] ?? 0) + 1;
  };
  // Dataset prompts accepted so far (with their objects): a new case must not contradict any of them, e.g. a
  // neighbourhood prompt "X's owner" next to known_1000's "X's owner," would make one of the two untrainable.
  const ownPrompts: { prompt: string; object: string }[] = drafts.map((d) => ({ prompt: d.own[0]?.prompt as string, object: d.object }));
  const firstWord = (s: string): string => s.split(' ')[0] as string;
  const contradicts = (p: string, obj: string): boolean =>
    ownPrompts.some((q) => {
      if (q.prompt === p) return q.object !== obj;
      if (q.prompt.startsWith(p)) return !`${q.prompt.slice(p.length)} ${q.object}`.startsWith(` ${firstWord(obj)}`);
      if (p.startsWith(q.prompt)) return !`${p.slice(q.prompt.length)} ${obj}`.startsWith(` ${firstWord(q.object)}`);
      return false;
    });
  type Case = { rec: CounterFactRecord; relation: string; neighbourPrompt: string; neighbourSubject: string };
  const cases: Case[] = [];
  const caseFactIdx: [number, number][] = [];
  const add = (c: Case, subject: string, prompt: string, role: FactRole, priority: number, source: string): number => {
    const key = factKey(subject, c.relation);
    let i = byKey.get(key);
    if (i === undefined) {
      i = drafts.length;
      byKey.set(key, i);
      drafts.push({ subject, relation: c.relation, object: c.rec.targetTrue, role, sources: [], own: [], caseIds: [], neighbourOf: [] });
    }
    const d = drafts[i] as Draft;
    d.sources.push(source);
    if (!d.own.some((x) => x.prompt === prompt)) {
      d.own.push({ prompt, priority });
      ownPrompts.push({ prompt, object: d.object });
    }
    return i;
  };
  for (const rec of editCases) {
    if (cases.length >= o.counterfactCases) break;
    const relation = inf.caseRelation.get(rec.caseId) ?? null;
    const nb = inf.neighbour.get(rec.caseId) ?? null;
    const nPrompt = rec.neighborhoodPrompts[0];
    if (!relation) skip('no relation inferred');
    else if (!nb || nPrompt === undefined) skip('neighbour subject not recognised');
    else if (heldOut.has(rec.prompt) || heldOut.has(nb.template)) skip('uses a held-out template');
    else if (nb.subject === rec.subject) skip('neighbour is the same subject');
    else if (
      [rec.subject, nb.subject].some((s) => {
        const i = byKey.get(factKey(s, relation));
        return i !== undefined && (drafts[i] as Draft).object !== rec.targetTrue;
      })
    )
      skip('true object disagrees with an existing fact');
    else if (contradicts(fillTemplate(rec.prompt, rec.subject), rec.targetTrue) || contradicts(nPrompt, rec.targetTrue))
      skip('prompt contradicts a dataset prompt');
    else {
      const c: Case = { rec, relation, neighbourPrompt: nPrompt, neighbourSubject: nb.subject };
      cases.push(c);
      const a = add(c, rec.subject, fillTemplate(rec.prompt, rec.subject), 'counterfact-case', 1, `counterfact:${rec.caseId}`);
      (drafts[a] as Draft).caseIds.push(rec.caseId);
      const b = add(c, nb.subject, nPrompt, 'counterfact-neighbour', 2, `counterfact:${rec.caseId}:neighbour`);
      (drafts[b] as Draft).neighbourOf.push(rec.caseId);
      caseFactIdx.push([a, b]);
    }
  }
  const coverage = o.coverObjects > 0 ? await addCoverageFacts() : { needed: 0, added: 0, noSource: 0 };
  log(
    `facts: ${drafts.length} (${known.length} known_1000 + ${drafts.length - known.length - coverage.added} from ${cases.length} CounterFact cases` +
      `${o.coverObjects > 0 ? ` + ${coverage.added} coverage facts for ${coverage.needed} uncovered (relation, object) pairs, ${coverage.noSource} without a train-split fact` : ''})`,
  );

  /** See FactCorpusOptions.coverObjects. */
  async function addCoverageFacts(): Promise<{ needed: number; added: number; noSource: number }> {
    const all = (await Promise.all(eeFiles.map((f) => readCounterFactFile(f as string)))).flat();
    const pairKey = (r: string, obj: string): string => `${r}\u0000${obj}`;
    const uses = new Map<string, number>();
    for (const rec of all) {
      const r = inf!.caseRelation.get(rec.caseId) ?? null;
      if (!r) continue;
      for (const obj of [rec.targetTrue, rec.targetNew]) uses.set(pairKey(r, obj), (uses.get(pairKey(r, obj)) ?? 0) + 1);
    }
    const have = new Set(drafts.map((d) => pairKey(d.relation, d.object)));
    const needed = new Set([...uses].filter(([k, n]) => n >= o.coverObjects && !have.has(k)).map(([k]) => k));
    // Every subject the edit split evaluates (rewrite and neighbourhood subjects) stays as the selection left it.
    const editSubjects = new Set<string>();
    for (const rec of editCases) {
      editSubjects.add(rec.subject);
      const nb = inf!.neighbour.get(rec.caseId);
      if (nb) editSubjects.add(nb.subject);
    }
    const trainRecs = (await readCounterFactFile(eeFiles[0] as string, 'train')).sort((a, b) => a.caseId - b.caseId);
    let added = 0;
    for (const rec of trainRecs) {
      const r = inf!.caseRelation.get(rec.caseId) ?? null;
      if (!r || !needed.has(pairKey(r, rec.targetTrue))) continue;
      if (editSubjects.has(rec.subject) || byKey.has(factKey(rec.subject, r)) || heldOut.has(rec.prompt)) continue;
      const prompt = fillTemplate(rec.prompt, rec.subject);
      if (contradicts(prompt, rec.targetTrue)) continue;
      needed.delete(pairKey(r, rec.targetTrue));
      byKey.set(factKey(rec.subject, r), drafts.length);
      drafts.push({
        subject: rec.subject,
        relation: r,
        object: rec.targetTrue,
        role: 'counterfact-coverage',
        sources: [`counterfact-train:${rec.caseId}`],
        own: [{ prompt, priority: 1 }],
        caseIds: [],
        neighbourOf: [],
      });
      ownPrompts.push({ prompt, object: rec.targetTrue });
      added++;
    }
    return { needed: added + needed.size, added, noSource: needed.size };
  }

  // --- renderings: dataset prompts, then rotating template renderings
  const renderings: Rendering[] = [];
  const perRelationIndex = new Map<string, number>();
  drafts.forEach((d, di) => {
    const seen = new Set<string>();
    for (const p of [...d.own].sort((x, y) => x.priority - y.priority)) {
      seen.add(p.prompt);
      renderings.push({ draft: di, prompt: p.prompt, priority: p.priority, dropped: false });
    }
    const ts = trainedBy.get(d.relation) ?? [];
    const idx = perRelationIndex.get(d.relation) ?? 0;
    perRelationIndex.set(d.relation, idx + 1);
    const m = Math.min(o.maxTemplatesPerFact, ts.length);
    for (let j = 0; j < m; j++) {
      const p = fillTemplate(ts[(idx * o.maxTemplatesPerFact + j) % ts.length] as string, d.subject);
      if (seen.has(p)) continue;
      seen.add(p);
      renderings.push({ draft: di, prompt: p, priority: 3, dropped: false });
    }
  });

  // --- conflicts: identical prompts with different objects, or a prompt that is a prefix of another whose text
  // continues differently from the object.
  const dropped: Record<string, number> = { identical: 0, prefix: 0 };
  const sortedR = [...renderings].sort((x, y) => (x.prompt < y.prompt ? -1 : x.prompt > y.prompt ? 1 : x.priority - y.priority));
  const objectOf = (r: Rendering): string => (drafts[r.draft] as Draft).object;
  for (let i = 0; i < sortedR.length; i++) {
    const a = sortedR[i] as Rendering;
    for (let j = i + 1; j < sortedR.length; j++) {
      const b = sortedR[j] as Rendering;
      if (!b.prompt.startsWith(a.prompt)) break;
      if (a.draft === b.draft && a.prompt === b.prompt) continue;
      let clash: boolean;
      if (b.prompt === a.prompt) clash = objectOf(a) !== objectOf(b);
      else {
        const cont = `${b.prompt.slice(a.prompt.length)} ${objectOf(b)}`;
        const firstWord = objectOf(a).split(' ')[0] as string;
        clash = !cont.startsWith(` ${firstWord}`);
      }
      if (!clash) continue;
      const kind = b.prompt === a.prompt ? 'identical' : 'prefix';
      // Dataset prompts win over template renderings; between equals, identical prompts are both dropped (the
      // answer is ambiguous) and for a prefix the shorter one is dropped (the longer one still reads correctly).
      const losers = a.priority !== b.priority ? [a.priority > b.priority ? a : b] : kind === 'identical' ? [a, b] : [a];
      for (const l of losers) {
        if (!l.dropped) dropped[kind] = (dropped[kind] ?? 0) + 1;
        l.dropped = true;
      }
    }
  }

  // --- exposures: every fact gets E lines; dataset prompts share ownPromptShare of them.
  const kept = new Map<number, Rendering[]>();
  for (const r of renderings) if (!r.dropped) kept.set(r.draft, [...(kept.get(r.draft) ?? []), r]);
  const alive = drafts.map((_, i) => i).filter((i) => (kept.get(i) ?? []).length > 0);
  // Counts per kept rendering of a fact for E exposures; with a tiny E some template renderings get 0 (untrained).
  const allocate = (E: number, di: number): number[] => {
    const rs = kept.get(di) as Rendering[];
    const nOwn = rs.filter((r) => r.priority < 3).length;
    const nTpl = rs.length - nOwn;
    if (nOwn === 0) return spread(E, nTpl);
    if (nTpl === 0) return spread(Math.max(E, nOwn), nOwn);
    const own = Math.max(nOwn, Math.min(E - nTpl, Math.round(E * o.ownPromptShare)));
    return [...spread(own, nOwn), ...spread(Math.max(0, E - own), nTpl)];
  };
  const charsFor = (E: number): number => {
    let s = 0;
    for (const di of alive) {
      const rs = kept.get(di) as Rendering[];
      const counts = allocate(E, di);
      const obj = (drafts[di] as Draft).object;
      rs.forEach((r, k) => (s += (counts[k] as number) * (factLine(r.prompt, obj).length + 1)));
    }
    return s;
  };
  const realFactChars = Math.round(o.factChars * (1 - o.syntheticShare));
  let E = 1;
  while (E < 1000 && charsFor(E + 1) <= realFactChars) E++;
  // Appositive templates that would train a held-out template or a longer form of one are never used.
  const heldOutList = [...heldOut];
  const appositiveAllowed = (t: string): boolean => !heldOutList.some((h) => h.startsWith(t) || t.startsWith(h));
  const documents = new Map<string, SpanDocument>();
  const addDocument = (d: SpanDocument): void => {
    if (!documents.has(d.text)) documents.set(d.text, d);
  };
  const renderCounts: Record<string, number> = { plain: 0, appositive: 0, secondMention: 0 };
  // An appositive prompt that equals or begins a dataset/template prompt of another fact with a different object
  // would teach two continuations; such renderings fall back to the plain line.
  const promptObjects = new Map<string, Set<string>>();
  for (const r of renderings) {
    if (r.dropped) continue;
    const obj = (drafts[r.draft] as Draft).object;
    const set = promptObjects.get(r.prompt) ?? new Set<string>();
    set.add(obj);
    promptObjects.set(r.prompt, set);
  }
  const promptKeys = [...promptObjects.keys()].sort();
  const begunByOther = (p: string, object: string): boolean => {
    for (let i = lowerBound(promptKeys, p); i < promptKeys.length && (promptKeys[i] as string).startsWith(p); i++) {
      const objs = promptObjects.get(promptKeys[i] as string) as Set<string>;
      if ([...objs].some((x) => x !== object)) return true;
    }
    return false;
  };
  const factLines: string[] = [];
  const facts: CorpusFact[] = [];
  const idOf = new Map<number, string>();
  drafts.forEach((_, di) => idOf.set(di, `f${String(di).padStart(5, '0')}`));
  for (const di of alive) {
    const d = drafts[di] as Draft;
    const all = kept.get(di) as Rendering[];
    const allCounts = allocate(E, di);
    const rs = all.filter((_, k) => (allCounts[k] as number) > 0);
    const counts = allCounts.filter((c) => c > 0);
    const renderRng = createRng(hashKey(o.seed, 'render', d.subject, d.relation));
    let variant = 0;
    rs.forEach((r, k) => {
      for (let c = 0; c < (counts[k] as number); c++) {
        // Only template renderings are re-rendered: dataset prompts stay trained exactly as given.
        const u = r.priority === 3 ? renderRng.next() : 1;
        const app = u < o.appositiveShare ? appositiveRendering(d.subject, d.relation, d.object, variant++, appositiveAllowed) : null;
        if (app && !begunByOther(app.prompt, d.object)) {
          factLines.push(app.text);
          addDocument({ text: app.text, objects: [{ prompt: app.prompt, object: app.object }] });
          renderCounts['appositive']!++;
        } else if (u < o.appositiveShare + o.secondMentionShare) {
          const sm = secondMentionRendering(d.subject, r.prompt, d.object, variant++);
          factLines.push(sm.text);
          addDocument({ text: sm.text, objects: [{ prompt: sm.prompt, object: sm.object }] });
          renderCounts['secondMention']!++;
        } else {
          factLines.push(factLine(r.prompt, d.object));
          renderCounts['plain']!++;
        }
      }
    });
    const f: CorpusFact = {
      id: idOf.get(di) as string,
      source: d.sources[0] as string,
      sources: d.sources,
      role: d.role,
      subject: d.subject,
      relation: d.relation,
      object: d.object,
      trainedPrompts: rs.map((r) => r.prompt),
      trainedCounts: counts,
      heldOutPrompts: (heldOutBy.get(d.relation) ?? []).map((t) => fillTemplate(t, d.subject)),
    };
    if (d.knownPrompt !== undefined) f.knownPrompt = d.knownPrompt;
    if (d.caseIds.length) f.counterfactCaseIds = d.caseIds;
    if (d.neighbourOf.length) f.neighbourOfCaseIds = d.neighbourOf;
    facts.push(f);
  }
  // A held-out rendering that some trained prompt equals or begins (a known_1000 prompt using a leaky template)
  // is not held out for that subject.
  const trainedSorted = [...new Set(facts.flatMap((f) => f.trainedPrompts))].sort();
  const begunByTrained = (p: string): boolean => {
    const lo = lowerBound(trainedSorted, p);
    return lo < trainedSorted.length && (trainedSorted[lo] as string).startsWith(p);
  };
  let heldOutExcluded = 0;
  for (const f of facts) {
    const keep = f.heldOutPrompts.filter((p) => !begunByTrained(p));
    heldOutExcluded += f.heldOutPrompts.length - keep.length;
    f.heldOutPrompts = keep;
  }
  const realLines = factLines.length;

  // --- synthetic population (fictional people with several attributes each)
  let synthetic: SyntheticPopulation | null = null;
  const syntheticCounts: Record<string, number> = { people: 0, facts: 0, biographyLines: 0, questionLines: 0 };
  if (o.syntheticPeople > 0) {
    const objectCounts = new Map<string, Map<string, number>>();
    for (const d of drafts) {
      const m = objectCounts.get(d.relation) ?? new Map<string, number>();
      m.set(d.object, (m.get(d.object) ?? 0) + 1);
      objectCounts.set(d.relation, m);
    }
    const objects = new Map<string, string[]>();
    for (const [r, m] of objectCounts) objects.set(r, [...m].filter(([, n]) => n >= 2).map(([x]) => x).sort());
    const reserved = new Set<string>();
    for (const d of drafts) {
      reserved.add(d.subject);
      reserved.add(d.object);
    }
    synthetic = buildSyntheticPopulation({
      seed: hashKey(o.seed, 'synthetic'),
      people: o.syntheticPeople,
      extraPerPerson: o.syntheticExtraAttributes,
      biographies: o.syntheticBiographies,
      pronounShare: o.syntheticPronounShare,
      appositiveShare: o.syntheticAppositiveShare,
      trainedTemplates: trainedBy,
      heldOutTemplates: heldOutBy,
      objects,
      reserved,
      appositiveAllowed,
    });
    const synthChars = o.factChars - realFactChars;
    const bioChars = synthetic.biographies.reduce((a, b) => a + b.text.length + 1, 0);
    const bioReps = Math.max(1, Math.floor((synthChars * (1 - o.syntheticQuestionShare)) / Math.max(1, bioChars)));
    for (let rep = 0; rep < bioReps; rep++) {
      for (const b of synthetic.biographies) {
        factLines.push(b.text);
        syntheticCounts['biographyLines']!++;
      }
    }
    for (const b of synthetic.biographies) addDocument(b);
    // Question-style lines: each fact's trained prompts in turn until the budget is spent.
    const qBudget = synthChars * o.syntheticQuestionShare;
    let used = 0;
    for (let round = 0; used < qBudget && round < 1000; round++) {
      let any = false;
      for (const f of synthetic.facts) {
        const p = f.trainedPrompts[round % Math.max(1, f.trainedPrompts.length)];
        if (p === undefined) continue;
        const line = factLine(p, f.object);
        if (used + line.length + 1 > qBudget) break;
        factLines.push(line);
        used += line.length + 1;
        syntheticCounts['questionLines']!++;
        any = true;
      }
      if (!any) break;
    }
    syntheticCounts['people'] = synthetic.people.length;
    syntheticCounts['facts'] = synthetic.facts.length;
    log(`synthetic population: ${synthetic.people.length} people, ${synthetic.facts.length} facts, ${bioReps}× ${synthetic.biographies.length} biographies, ${syntheticCounts['questionLines']} question lines`);
  }
  const factChars = factLines.reduce((s, l) => s + l.length + 1, 0);
  log(`fact sentences: ${factLines.length} lines (${realLines} about real facts: ${JSON.stringify(renderCounts)}), ${factChars} chars, ${E} exposures per fact`);

  // --- general text: bottom-k sampling by a seeded hash of (document, chunk index); whole documents held out.
  const corpus = await openTextCorpus({ dataDir: root, unit: 'chunk', chunkChars: o.chunkChars, gutenbergFiles: opts.gutenbergFiles });
  const wikiRaw = await readFile(path.join(root, WIKITEXT_RAW_TEST), 'utf8');
  const docIds: Record<CorpusSource, string[]> = {
    wikitext: splitWikiTextArticles(wikiRaw).map((a) => `wikitext:${a.title}`),
    gutenberg: corpus.files.filter((f) => f.relPath.startsWith('corpus/gutenberg/')).map((f) => `gutenberg:${path.basename(f.relPath)}`),
  };
  const validDocs = new Set<string>();
  for (const src of ['wikitext', 'gutenberg'] as const) {
    const ids = [...new Set(docIds[src])];
    const n = ids.length < 2 ? 0 : Math.max(1, Math.round(o.validDocFraction * ids.length));
    ids.sort((a, b) => hashKey(o.seed, 'valid-doc', a) - hashKey(o.seed, 'valid-doc', b) || (a < b ? -1 : 1));
    for (const id of ids.slice(0, n)) validDocs.add(id);
  }
  const budgets: Record<string, number> = {
    'train:wikitext': Math.round(o.generalChars * o.wikiShare),
    'train:gutenberg': o.generalChars - Math.round(o.generalChars * o.wikiShare),
    'valid:wikitext': Math.round(o.validChars * o.wikiShare),
    'valid:gutenberg': o.validChars - Math.round(o.validChars * o.wikiShare),
  };
  // Raw characters available per pool, to decide which texts to keep during the scan (an estimate: cleaning
  // removes some; anything missed is fetched by a second scan).
  const avail = new Map<string, number>();
  const addAvail = (pool: string, n: number): void => void avail.set(pool, (avail.get(pool) ?? 0) + n);
  for (const a of splitWikiTextArticles(wikiRaw)) {
    const id = `wikitext:${a.title}`;
    addAvail(`${validDocs.has(id) ? 'valid' : 'train'}:wikitext`, a.paragraphs.reduce((s, p) => s + p.length, 0));
  }
  for (const f of corpus.files) {
    if (!f.relPath.startsWith('corpus/gutenberg/')) continue;
    addAvail(`${validDocs.has(`gutenberg:${path.basename(f.relPath)}`) ? 'valid' : 'train'}:gutenberg`, f.bytes);
  }
  const caps = new Map(
    Object.keys(budgets).map((p) => [p, Math.min(1, (3 * (budgets[p] ?? 0)) / Math.max(1, avail.get(p) ?? 0)) * 0x100000000]),
  );
  type Cand = { key: number; docId: string; docIndex: number; itemIndex: number; text: string | null; len: number };
  const pools = new Map<string, Cand[]>();
  const poolOf = (docId: string, source: CorpusSource): string => `${validDocs.has(docId) ? 'valid' : 'train'}:${source}`;
  let nChunks = 0;
  for await (const it of corpus) {
    const pool = poolOf(it.docId, it.source);
    const key = hashKey(o.seed, 'chunk', it.docId, String(it.itemIndex));
    let list = pools.get(pool);
    if (!list) pools.set(pool, (list = []));
    const text = key < (caps.get(pool) ?? 0) ? it.text : null;
    list.push({ key, docId: it.docId, docIndex: it.docIndex, itemIndex: it.itemIndex, text, len: it.text.length });
    if (++nChunks % 200_000 === 0) log(`general text: ${nChunks} chunks scanned`);
  }
  const picked = new Map<string, Cand[]>();
  const missing = new Map<string, Cand>();
  for (const pool of Object.keys(budgets)) {
    const list = [...(pools.get(pool) ?? [])].sort((a, b) => a.key - b.key || a.docIndex - b.docIndex || a.itemIndex - b.itemIndex);
    const out: Cand[] = [];
    let used = 0;
    for (const c of list) {
      if (used + c.len + 1 > (budgets[pool] ?? 0)) break;
      if (c.text === null) missing.set(`${c.docIndex}:${c.itemIndex}`, c);
      out.push(c);
      used += c.len + 1;
    }
    picked.set(pool, out);
  }
  if (missing.size > 0) {
    log(`general text: second scan for ${missing.size} chunks beyond the first scan's cap`);
    for await (const it of corpus) {
      const c = missing.get(`${it.docIndex}:${it.itemIndex}`);
      if (c) c.text = it.text;
    }
  }
  const generalTrain = [...(picked.get('train:wikitext') ?? []), ...(picked.get('train:gutenberg') ?? [])].map((c) => c.text as string);
  const validLines = [...(picked.get('valid:wikitext') ?? []), ...(picked.get('valid:gutenberg') ?? [])]
    .sort((a, b) => a.docIndex - b.docIndex || a.itemIndex - b.itemIndex)
    .map((c) => c.text as string);

  // --- assemble
  const trainLines = createRng(hashKey(o.seed, 'train-order')).shuffle([...factLines, ...generalTrain]);
  const tokenizerLines = [...new Set(trainLines)];
  const chars = (ls: string[]): number => ls.reduce((s, l) => s + l.length + 1, 0);
  const generalChars = chars(generalTrain);

  const relations: Record<string, RelationSummary> = {};
  for (const [r, ts] of relTemplates) {
    relations[r] = {
      facts: facts.filter((f) => f.relation === r).length,
      templates: ts,
      trained: ts.filter((t) => !heldOut.has(t)),
      heldOut: heldOutBy.get(r) ?? [],
    };
  }
  const inputs = [];
  for (const f of [knownFile, ...eeFiles]) {
    const rel = path.relative(root, f).split(path.sep).join('/');
    inputs.push({ relPath: rel, bytes: (await stat(f)).size, sha256: await sha256File(f) });
  }
  inputs.push(...corpus.files);
  const selected: SelectedCase[] = cases.map((c, i) => {
    const [a, b] = caseFactIdx[i] as [number, number];
    return {
      caseId: c.rec.caseId,
      relation: c.relation,
      subject: c.rec.subject,
      prompt: c.rec.prompt,
      targetTrue: c.rec.targetTrue,
      targetNew: c.rec.targetNew,
      neighbourPrompt: c.neighbourPrompt,
      neighbourSubject: c.neighbourSubject,
      caseFactId: idOf.get(a) as string,
      neighbourFactId: idOf.get(b) as string,
    };
  });
  const totalTrainChars = chars(trainLines);
  const manifest: FactCorpusManifest = {
    version: FACT_CORPUS_VERSION,
    seed: o.seed,
    dataDir: root,
    inputs,
    generalCorpus: { name: corpus.name, identity: corpus.identity },
    options: o,
    counts: {
      knownFacts: known.length,
      counterfactCasesSelected: cases.length,
      counterfactCasesScanned: cases.length + Object.values(skipped).reduce((s, x) => s + x, 0),
      facts: facts.length,
      factsDroppedNoRendering: drafts.length - alive.length,
      factsKnown: facts.filter((f) => f.role === 'known').length,
      factsCounterfactCase: facts.filter((f) => f.role === 'counterfact-case').length,
      factsCounterfactNeighbour: facts.filter((f) => f.role === 'counterfact-neighbour').length,
      factsCounterfactCoverage: facts.filter((f) => f.role === 'counterfact-coverage').length,
      coveragePairsNeeded: coverage.needed,
      coveragePairsWithoutSource: coverage.noSource,
      relations: Object.keys(relations).length,
      relationsWithHeldOut: [...heldOutBy.values()].filter((v) => v.length > 0).length,
      templates: owners.size,
      templatesTrained: [...owners.keys()].filter((t) => !heldOut.has(t)).length,
      templatesHeldOut: heldOut.size,
      templatesSharedByRelations: [...owners.values()].filter((rs) => rs.length > 1).length,
      trainedPrompts: facts.reduce((s, f) => s + f.trainedPrompts.length, 0),
      heldOutPrompts: facts.reduce((s, f) => s + f.heldOutPrompts.length, 0),
      heldOutPromptsExcludedAsTrained: heldOutExcluded,
      factsWithHeldOut: facts.filter((f) => f.heldOutPrompts.length > 0).length,
      exposuresPerFact: E,
      factLines: factLines.length,
      generalTrainLines: generalTrain.length,
      trainLines: trainLines.length,
      validLines: validLines.length,
      tokenizerLines: tokenizerLines.length,
      generalChunksScanned: nChunks,
      validDocuments: validDocs.size,
    },
    skippedCases: skipped,
    droppedRenderings: dropped,
    renderings: renderCounts,
    synthetic: syntheticCounts,
    relations,
    heldOutTemplates: [...heldOut].sort(),
    heldOutLeaks: leaks,
    chars: {
      factLines: factChars,
      generalTrain: generalChars,
      train: totalTrainChars,
      valid: chars(validLines),
      tokenizerInput: chars(tokenizerLines),
      factShareActual: Math.round((factChars / Math.max(1, totalTrainChars)) * 1e4) / 1e4,
    },
    budget: {
      targetTokens: o.targetTokens,
      charsPerToken: o.charsPerToken,
      estimatedTrainTokens: Math.round(totalTrainChars / o.charsPerToken),
      estimatedFactTokens: Math.round(factChars / o.charsPerToken),
      meanFactLineChars: Math.round((factChars / Math.max(1, factLines.length)) * 10) / 10,
      exposuresPerFact: E,
      meanExposuresPerTrainedPrompt:
        Math.round((factLines.length / Math.max(1, facts.reduce((s, f) => s + f.trainedPrompts.length, 0))) * 100) / 100,
    },
    format:
      'train.txt, valid-general.txt, tokenizer-input.txt: UTF-8, one document per line ("\\n"), no empty lines; ' +
      'a fact line is "<prompt> <object>." ; train.txt is shuffled with the seed; tokenizer-input.txt is the ' +
      'distinct lines of train.txt in first-occurrence order.',
  };
  return { trainLines, validLines, tokenizerLines, facts, cases: selected, manifest, documents: [...documents.values()], syntheticFacts: synthetic?.facts ?? [] };
}

/** Files written by {@link writeFactCorpus}. */
export const FACT_CORPUS_FILES = ['train.txt', 'valid-general.txt', 'tokenizer-input.txt', 'facts.json', 'manifest.json'] as const;

async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text, 'utf8');
  await rename(tmp, file);
}

/** Writes the corpus files into `outDir`; returns the manifest as written (with output hashes and command). */
export async function writeFactCorpus(c: FactCorpus, outDir: string, command?: string): Promise<FactCorpusManifest> {
  await mkdir(outDir, { recursive: true });
  const texts: Record<string, string> = {
    'train.txt': c.trainLines.join('\n') + '\n',
    'valid-general.txt': c.validLines.join('\n') + '\n',
    'tokenizer-input.txt': c.tokenizerLines.join('\n') + '\n',
    'facts.json':
      JSON.stringify(
        { version: FACT_CORPUS_VERSION, facts: c.facts, counterfactCases: c.cases, syntheticFacts: c.syntheticFacts, documents: c.documents },
        null,
        1,
      ) + '\n',
  };
  const outputs: Record<string, { sha256: string; bytes: number; lines: number }> = {};
  for (const [name, text] of Object.entries(texts)) {
    await writeAtomic(path.join(outDir, name), text);
    outputs[name] = { sha256: sha256(text), bytes: Buffer.byteLength(text), lines: text.split('\n').length - 1 };
  }
  const manifest: FactCorpusManifest = { ...c.manifest, outputs };
  if (command !== undefined) manifest.command = command;
  await writeAtomic(path.join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
  return manifest;
}

/** Reads facts.json written by {@link writeFactCorpus}. */
export async function readCorpusFacts(dir: string): Promise<{ facts: CorpusFact[]; counterfactCases: SelectedCase[] }> {
  const data = JSON.parse(await readFile(path.join(dir, 'facts.json'), 'utf8')) as {
    facts: CorpusFact[];
    counterfactCases: SelectedCase[];
  };
  return { facts: data.facts, counterfactCases: data.counterfactCases };
}
