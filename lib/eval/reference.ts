/**
 * Reference texts for the Reference Score (RS) and the IDF it weights words with.
 *
 * The canonical files (attribute_snippets.json: Wikipedia snippets about subjects that truly have a given
 * (relation, object); idf.npy + tfidf_vocab.json) are not available here, so rome-ts builds both from the data
 * at hand:
 * - Reference texts for (relation r, object o): for every CounterFact case (all EasyEdit splits, or the ROME file)
 *   whose true object is o and whose (possibly inferred) relation is r, the sentence "<prompt with its subject>
 *   <o>." and, when present, "<its neighbourhood prompt> <o>." (neighbourhood prompts share the true object);
 *   plus every known_1000 fact with object o and relation r: "<template with subject> <o>.". When r is unknown,
 *   the object alone decides. The edited case's own subject is excluded; at most `maxTexts` texts (case order).
 * - IDF: smooth IDF (text.ts) over the first `idfDocs` paragraphs of the general corpus (lib/data/corpus.ts),
 *   cached on disk per corpus identity.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { openTextCorpus } from '../data/corpus.js';
import type { CounterFactRecord } from '../data/counterfact.js';
import { loadKnownFacts, KNOWN_FACTS_FILE } from '../data/knownFacts.js';
import { cacheDir, findDataFile } from '../data/paths.js';
import { fillPrompt } from '../rome/types.js';
import { buildIdf, type Idf } from './text.js';

/** A fact sentence source: subject's true object and relation. */
interface FactSentence {
  subject: string;
  object: string;
  relationId: string | null;
  text: string;
}

/** Reference texts keyed by object (and relation). */
export class ReferenceTexts {
  private readonly byObject = new Map<string, FactSentence[]>();
  constructor(facts: readonly FactSentence[]) {
    for (const f of facts) {
      const k = f.object.trim().toLowerCase();
      let l = this.byObject.get(k);
      if (!l) this.byObject.set(k, (l = []));
      l.push(f);
    }
  }

  /** Reference texts about subjects (other than `excludeSubject`) whose true object is `object`. */
  textsFor(object: string, relationId: string | null, excludeSubject: string, maxTexts = 20): string[] {
    const all = this.byObject.get(object.trim().toLowerCase()) ?? [];
    const sameRel = relationId ? all.filter((f) => f.relationId === relationId) : all;
    const pool = sameRel.length ? sameRel : all;
    const out: string[] = [];
    for (const f of pool) {
      if (f.subject === excludeSubject) continue;
      if (!out.includes(f.text)) out.push(f.text);
      if (out.length >= maxTexts) break;
    }
    return out;
  }

  /** Number of objects with references. */
  get size(): number {
    return this.byObject.size;
  }
}

/** Builds reference texts from CounterFact records (pass all cases, not just the evaluated ones) and known_1000. */
export async function buildReferenceTexts(records: readonly CounterFactRecord[], opts: { dataDir?: string } = {}): Promise<ReferenceTexts> {
  const facts: FactSentence[] = [];
  for (const r of records) {
    const o = r.targetTrue.trim();
    facts.push({ subject: r.subject, object: o, relationId: r.relationId, text: `${fillPrompt(r.prompt, r.subject)} ${o}.` });
    for (const n of r.neighborhoodPrompts) facts.push({ subject: `#neighbour:${n}`, object: o, relationId: r.relationId, text: `${n} ${o}.` });
  }
  const kf = findDataFile(KNOWN_FACTS_FILE, opts.dataDir);
  if (kf) {
    for (const k of await loadKnownFacts({ file: kf })) {
      facts.push({ subject: k.subject, object: k.attribute.trim(), relationId: k.relationId, text: `${fillPrompt(k.template, k.subject)} ${k.attribute.trim()}.` });
    }
  }
  return new ReferenceTexts(facts);
}

const idfMemory = new Map<string, Promise<Idf>>();

/** IDF over the first `idfDocs` paragraphs of the general corpus (default 20,000), cached in memory and on disk. */
export function corpusIdf(opts: { idfDocs?: number; dataDir?: string } = {}): Promise<Idf> {
  const nDocs = opts.idfDocs ?? 20_000;
  const key = `${opts.dataDir ?? ''}|${nDocs}`;
  let job = idfMemory.get(key);
  if (!job) {
    job = (async () => {
      const corpus = await openTextCorpus({ unit: 'paragraph', dataDir: opts.dataDir });
      const file = path.join(cacheDir(), 'tfidf', `idf-${corpus.identity.slice(0, 16)}-${nDocs}.json`);
      if (existsSync(file)) {
        const j = JSON.parse(readFileSync(file, 'utf8')) as { nDocs: number; idf: [string, number][] };
        return { nDocs: j.nDocs, idf: new Map(j.idf) };
      }
      const docs: string[] = [];
      for await (const it of corpus) {
        docs.push(it.text);
        if (docs.length >= nDocs) break;
      }
      const idf = buildIdf(docs);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, JSON.stringify({ corpus: corpus.name, identity: corpus.identity, nDocs: idf.nDocs, idf: [...idf.idf] }));
      return idf;
    })();
    idfMemory.set(key, job);
  }
  return job;
}
