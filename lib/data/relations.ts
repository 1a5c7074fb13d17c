/**
 * Relation ids for CounterFact records that lack them (the EasyEdit reduced format).
 *
 * Why this is not a plain lookup: CounterFact's prompts are ParaRel templates, and several templates are shared
 * between relations ("{} is located in" is used for P17, P30, P131 and P276; "{} plays" for P136, P1303, P641).
 * known_1000.json labels only 148 templates. So relations are inferred per case, by hard EM over three pieces of
 * evidence: the case's own template, the template of its neighbourhood (locality) prompt — neighbourhood prompts
 * always use the same relation as the case — and its true object. Template evidence starts from known_1000's
 * labels and grows with the assignments; object evidence is known_1000's objects only (letting assignments feed
 * it back makes frequent objects snowball: "soccer" drifting into P1303). Cases whose templates never connect to
 * a labelled template (CounterFact's P264 record-label cases, absent from known_1000) get `null`.
 * On the 20 ROME-format sample records, whose relation ids are known, the inference agrees on all 20.
 */
import type { KnownFact } from './knownFacts.js';

/** Replaces the "{}" placeholder of a template with the subject (safe for subjects containing "$"). */
export function fillTemplate(template: string, subject: string): string {
  const i = template.indexOf('{}');
  if (i < 0) throw new Error(`template has no "{}": ${JSON.stringify(template)}`);
  return template.slice(0, i) + subject + template.slice(i + 2);
}

/** The template of a prompt: its first occurrence of `subject` replaced by "{}"; null when absent. */
export function templateOf(prompt: string, subject: string): string | null {
  const i = prompt.indexOf(subject);
  if (i < 0 || subject.length === 0) return null;
  return prompt.slice(0, i) + '{}' + prompt.slice(i + subject.length);
}

/** Result of matching a prompt against a set of templates. */
export interface TemplateMatch {
  template: string;
  subject: string;
}

/** A set of templates indexed for matching prompts whose subject is unknown. */
export class TemplateMatcher {
  private readonly parts: { template: string; prefix: string; suffix: string }[];
  constructor(templates: Iterable<string>) {
    this.parts = [...new Set(templates)]
      .filter((t) => t.includes('{}'))
      .sort()
      .map((template) => {
        const i = template.indexOf('{}');
        return { template, prefix: template.slice(0, i), suffix: template.slice(i + 2) };
      });
  }

  /**
   * The template that explains `prompt` with the most literal characters (and a non-empty subject), or null.
   * Ties go to the lexicographically smallest template so results are stable.
   */
  match(prompt: string): TemplateMatch | null {
    let best: { template: string; prefix: string; suffix: string } | null = null;
    for (const p of this.parts) {
      if (prompt.length <= p.prefix.length + p.suffix.length) continue;
      if (!prompt.startsWith(p.prefix) || !prompt.endsWith(p.suffix)) continue;
      if (!best || p.prefix.length + p.suffix.length > best.prefix.length + best.suffix.length) best = p;
    }
    if (!best) return null;
    const subject = prompt.slice(best.prefix.length, prompt.length - best.suffix.length);
    if (subject.trim().length === 0) return null;
    return { template: best.template, subject };
  }
}

/** A CounterFact case as seen by the relation inference. */
export interface RelationCase {
  caseId: number;
  /** The case's template (prompt with "{}"). */
  template: string;
  /** One neighbourhood prompt (another subject, same relation and true object), or null. */
  neighbourPrompt: string | null;
  /** The true object. */
  object: string;
}

/** Output of {@link inferRelations}. */
export interface RelationInference {
  /** Inferred relation per case id (null when no labelled evidence reaches the case). */
  caseRelation: Map<number, string | null>;
  /** Template of each case's neighbourhood prompt (null if none matched) and the subject it implies. */
  neighbour: Map<number, TemplateMatch | null>;
  /** Per template, per relation: known_1000 uses plus inferred case uses (case template and neighbour template). */
  templateCounts: Map<string, Map<string, number>>;
  /** EM iterations run until no assignment changed. */
  iterations: number;
  /** Every template seen (known_1000 templates and case templates), sorted. */
  templates: string[];
}

const ALPHA = 0.5; // add-α smoothing of P(relation | template)
const BETA = 0.5; // add-β smoothing of P(object | relation)
const MAX_ITERS = 30;

function bump(m: Map<string, Map<string, number>>, t: string, r: string, by = 1): void {
  let inner = m.get(t);
  if (!inner) m.set(t, (inner = new Map()));
  inner.set(r, (inner.get(r) ?? 0) + by);
}

function total(m: Map<string, number> | undefined): number {
  let s = 0;
  if (m) for (const v of m.values()) s += v;
  return s;
}

/** Infers a relation id for each case from known_1000's labelled templates and objects (see module comment). */
export function inferRelations(known: readonly KnownFact[], cases: readonly RelationCase[]): RelationInference {
  const relations = [...new Set(known.map((k) => k.relationId))].sort();
  const prior = new Map<string, Map<string, number>>();
  const objects = new Map<string, Map<string, number>>();
  const objectVocab = new Set<string>();
  for (const k of known) {
    bump(prior, k.template, k.relationId);
    bump(objects, k.relationId, k.attribute);
    objectVocab.add(k.attribute);
  }
  const templates = [...new Set([...known.map((k) => k.template), ...cases.map((c) => c.template)])].sort();
  const matcher = new TemplateMatcher(templates);
  const neighbour = new Map<number, TemplateMatch | null>();
  for (const c of cases) neighbour.set(c.caseId, c.neighbourPrompt ? matcher.match(c.neighbourPrompt) : null);

  const R = relations.length;
  const V = objectVocab.size;
  const objTotals = new Map(relations.map((r) => [r, total(objects.get(r))]));
  let assign = new Map<number, string | null>();
  let counts = prior;
  let iterations = 0;
  for (; iterations < MAX_ITERS; iterations++) {
    counts = new Map([...prior].map(([t, m]) => [t, new Map(m)]));
    for (const c of cases) {
      const r = assign.get(c.caseId);
      if (!r) continue;
      bump(counts, c.template, r);
      const n = neighbour.get(c.caseId);
      if (n) bump(counts, n.template, r);
    }
    const next = new Map<number, string | null>();
    let changed = 0;
    for (const c of cases) {
      const evidence: Map<string, number>[] = [];
      const own = counts.get(c.template);
      if (own && own.size) evidence.push(own);
      const nt = neighbour.get(c.caseId)?.template;
      const nb = nt === undefined ? undefined : counts.get(nt);
      if (nb && nb.size) evidence.push(nb);
      let best: string | null = null;
      if (evidence.length) {
        const cands = [...new Set(evidence.flatMap((m) => [...m.keys()]))].sort();
        let bestScore = -Infinity;
        for (const r of cands) {
          let s = 0;
          for (const m of evidence) s += Math.log(((m.get(r) ?? 0) + ALPHA) / (total(m) + ALPHA * R));
          s += Math.log(((objects.get(r)?.get(c.object) ?? 0) + BETA) / ((objTotals.get(r) ?? 0) + BETA * V));
          if (s > bestScore) {
            bestScore = s;
            best = r;
          }
        }
      }
      next.set(c.caseId, best);
      if (best !== (assign.get(c.caseId) ?? null) || !assign.has(c.caseId)) changed++;
    }
    assign = next;
    if (changed === 0) break;
  }
  return { caseRelation: assign, neighbour, templateCounts: counts, iterations, templates };
}

/** Options for {@link relationTemplates}. */
export interface RelationTemplateOptions {
  /** Minimum uses of a template under a relation (known + inferred) for it to count as the relation's (default 10). */
  minCount?: number;
  /** Minimum share of the template's uses that fall under the relation (default 0.2). */
  minShare?: number;
}

/**
 * Templates per relation: every known_1000 template of the relation, plus inferred templates used at least
 * `minCount` times and in at least `minShare` of their uses for that relation. Sorted, per relation.
 */
export function relationTemplates(
  known: readonly KnownFact[],
  templateCounts: Map<string, Map<string, number>>,
  opts: RelationTemplateOptions = {},
): Map<string, string[]> {
  const minCount = opts.minCount ?? 10;
  const minShare = opts.minShare ?? 0.2;
  const out = new Map<string, Set<string>>();
  const add = (r: string, t: string): void => {
    let s = out.get(r);
    if (!s) out.set(r, (s = new Set()));
    s.add(t);
  };
  for (const k of known) add(k.relationId, k.template);
  for (const [t, m] of templateCounts) {
    const tot = total(m);
    for (const [r, c] of m) if (c >= minCount && c / tot >= minShare) add(r, t);
  }
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([r, s]) => [r, [...s].sort()]));
}
