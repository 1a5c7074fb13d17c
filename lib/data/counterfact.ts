/**
 * CounterFact loader. Two on-disk formats are normalised into one record type:
 *
 * - ROME's full format (`counterfact.json`, as published at rome.baulab.info, and the `rome-format-sample-*.json`
 *   files): taken as is.
 * - EasyEdit's reduced format (`counterfact/easyedit-counterfact-{train,edit,val}.json`): the template is
 *   `prompt` with its first occurrence of `subject` replaced by "{}". `rephrase_prompt` is one of ROME's prompts
 *   about the subject: in 18,079 of 21,919 cases a *generation* prompt (open-ended, e.g. "The passport that X
 *   carries is"), in the other 3,840 a *paraphrase* prompt (a random prefix sentence, then a CounterFact template
 *   filled with the subject). It goes to `paraphrasePrompts` when it is "<prefix> <template with subject>" for a
 *   template known from CounterFact/known_1000, else to `generationPrompts`. `locality_prompt` is one of ROME's
 *   neighbourhood prompts (its answer is the case's true object). The format has no relation id: it is inferred
 *   from known_1000.json when that file is available (see relations.ts), else null.
 */
import { DatasetFormatError, RecordReader, expectRecords, readJson, type JsonObject } from './json.js';
import { loadKnownFacts, KNOWN_FACTS_FILE, type KnownFact } from './knownFacts.js';
import { findDataFile, requireDataFile, type FetchLike } from './paths.js';
import { fillTemplate, inferRelations, templateOf, type RelationInference } from './relations.js';

/** The EasyEdit splits; 'all' is every case. */
export type CounterFactSplit = 'train' | 'edit' | 'val' | 'all';

/** One CounterFact case in rome-ts's normalised form. */
export interface CounterFactRecord {
  caseId: number;
  subject: string;
  /** Rewrite template with "{}" for the subject, e.g. "The mother tongue of {} is". */
  prompt: string;
  /** The true object (`target_true.str` / `ground_truth`). */
  targetTrue: string;
  /** The counterfactual object to insert. */
  targetNew: string;
  /** Wikidata property id; inferred for EasyEdit records (null when it cannot be). */
  relationId: string | null;
  /** Full prompts (subject filled in) that paraphrase the rewrite; empty for EasyEdit records. */
  paraphrasePrompts: string[];
  /** Prompts about other subjects with the same relation and true object. */
  neighborhoodPrompts: string[];
  /** Prompts about subjects that truly have the new object. */
  attributePrompts: string[];
  /** Open-ended prompts about the subject for generation metrics. */
  generationPrompts: string[];
  /** Which on-disk format the record came from. */
  format: 'rome' | 'easyedit';
  /** EasyEdit split the case belongs to (null for ROME-format files). */
  split: 'train' | 'edit' | 'val' | null;
  /** True when `relationId` was inferred rather than read from the file. */
  relationInferred: boolean;
}

/** Options for {@link loadCounterFact}. */
export interface LoadCounterFactOptions {
  /** Which EasyEdit split ('all' = every case; default 'all'). */
  split?: CounterFactSplit;
  /** Keep only the first `limit` records (in file order; 'all' is ordered by case id). */
  limit?: number;
  /** Data directory to use instead of the standard lookup (plus the download cache). */
  dataDir?: string;
  /** Explicit file in either format (ignores `split`). */
  file?: string;
  /** Infer relation ids for EasyEdit records (default true; needs known_1000.json and all three EasyEdit files). */
  inferRelations?: boolean;
  /** For split 'all' without local files, download ROME's counterfact.json (default true). */
  download?: boolean;
  /** Fetch used for downloading (tests). */
  fetch?: FetchLike;
}

/** Relative path of an EasyEdit split file inside a data directory. */
export function easyEditFile(split: 'train' | 'edit' | 'val'): string {
  return `counterfact/easyedit-counterfact-${split}.json`;
}

/** Relative path of ROME's full CounterFact file inside a data directory. */
export const ROME_COUNTERFACT_FILE = 'counterfact.json';

const EASYEDIT_SPLITS = ['train', 'edit', 'val'] as const;

/**
 * Whether an EasyEdit `rephrase_prompt` is a ROME paraphrase prompt: some text, whitespace, then one of `templates`
 * filled with the subject. Generation prompts are open-ended and fail this test.
 */
export function isParaphrasePrompt(rephrase: string, subject: string, templates: Iterable<string>): boolean {
  for (const t of templates) {
    const filled = fillTemplate(t, subject);
    if (rephrase.length > filled.length && rephrase.endsWith(filled)) {
      const before = rephrase[rephrase.length - filled.length - 1] as string;
      if (/\s/.test(before)) return true;
    }
  }
  return false;
}

/** Normalises one raw record (either format, detected by `requested_rewrite`). */
export function normaliseCounterFactRecord(
  file: string,
  index: number,
  obj: JsonObject,
  split: 'train' | 'edit' | 'val' | null = null,
): CounterFactRecord {
  const r = new RecordReader(file, `record ${index}`, obj);
  const bad = (p: string): never => {
    throw new DatasetFormatError(file, `record ${index}`, p);
  };
  if (r.has('requested_rewrite')) {
    const rw = r.object('requested_rewrite');
    const prompt = rw.str('prompt');
    if (!prompt.includes('{}')) bad('requested_rewrite.prompt has no "{}"');
    const rel = rw.obj['relation_id'];
    return {
      caseId: r.int('case_id'),
      subject: rw.str('subject'),
      prompt,
      targetTrue: rw.object('target_true').str('str'),
      targetNew: rw.object('target_new').str('str'),
      relationId: typeof rel === 'string' && rel.length > 0 ? rel : null,
      paraphrasePrompts: r.strings('paraphrase_prompts', true),
      neighborhoodPrompts: r.strings('neighborhood_prompts', true),
      attributePrompts: r.strings('attribute_prompts', true),
      generationPrompts: r.strings('generation_prompts', true),
      format: 'rome',
      split,
      relationInferred: false,
    };
  }
  const subject = r.str('subject');
  const prompt = templateOf(r.str('prompt'), subject);
  if (prompt === null) bad('prompt does not contain the subject');
  const targetTrue = r.str('ground_truth');
  const locAnswer = r.str('locality_ground_truth');
  // ROME's neighbourhood prompts share the case's true object; a mismatch means a different dataset.
  if (locAnswer !== targetTrue) bad('locality_ground_truth differs from ground_truth');
  return {
    caseId: r.int('case_id'),
    subject,
    prompt: prompt as string,
    targetTrue,
    targetNew: r.str('target_new'),
    relationId: null,
    paraphrasePrompts: [],
    neighborhoodPrompts: [r.str('locality_prompt')],
    attributePrompts: [],
    generationPrompts: [r.str('rephrase_prompt')],
    format: 'easyedit',
    split,
    relationInferred: false,
  };
}

/** Parses a CounterFact file in either format. */
export async function readCounterFactFile(
  file: string,
  split: 'train' | 'edit' | 'val' | null = null,
): Promise<CounterFactRecord[]> {
  const recs = expectRecords(file, await readJson(file)).map((o, i) => normaliseCounterFactRecord(file, i, o, split));
  const ids = new Set<number>();
  for (const rec of recs) {
    if (ids.has(rec.caseId)) throw new DatasetFormatError(file, `case_id ${rec.caseId}`, 'duplicate case_id');
    ids.add(rec.caseId);
  }
  return recs;
}

const inferenceCache = new Map<string, Promise<RelationInference | null>>();

/**
 * Relation inference over all EasyEdit cases found in the data dir (all splits give more evidence), memoised per
 * set of input files. Null when known_1000.json or the EasyEdit files are absent.
 */
export async function easyEditRelationInference(dataDir?: string): Promise<RelationInference | null> {
  const knownFile = findDataFile(KNOWN_FACTS_FILE, dataDir);
  const files = EASYEDIT_SPLITS.map((s) => findDataFile(easyEditFile(s), dataDir));
  if (!knownFile || files.some((f) => f === null)) return null;
  const key = JSON.stringify([knownFile, ...files]);
  let job = inferenceCache.get(key);
  if (!job) {
    job = (async () => {
      const known: KnownFact[] = await loadKnownFacts({ file: knownFile });
      const all = (await Promise.all(files.map((f) => readCounterFactFile(f as string)))).flat();
      return inferRelations(
        known,
        all.map((c) => ({
          caseId: c.caseId,
          template: c.prompt,
          neighbourPrompt: c.neighborhoodPrompts[0] ?? null,
          object: c.targetTrue,
        })),
      );
    })();
    inferenceCache.set(key, job);
  }
  return job;
}

async function annotateEasyEdit(recs: CounterFactRecord[], opts: LoadCounterFactOptions): Promise<CounterFactRecord[]> {
  if (!recs.some((r) => r.format === 'easyedit')) return recs;
  const inf = opts.inferRelations === false ? null : await easyEditRelationInference(opts.dataDir);
  // Templates for recognising paraphrase prompts: every template the inference saw, else those at hand.
  const templates = new Set<string>(inf ? inf.templates : []);
  for (const r of recs) templates.add(r.prompt);
  const knownFile = findDataFile(KNOWN_FACTS_FILE, opts.dataDir);
  if (!inf && knownFile) for (const k of await loadKnownFacts({ file: knownFile })) templates.add(k.template);
  const sorted = [...templates].sort();
  return recs.map((r) => {
    if (r.format !== 'easyedit') return r;
    const out = { ...r };
    const rephrase = r.generationPrompts[0];
    if (rephrase !== undefined && isParaphrasePrompt(rephrase, r.subject, sorted)) {
      out.paraphrasePrompts = [rephrase];
      out.generationPrompts = [];
    }
    if (inf) {
      const rel = inf.caseRelation.get(r.caseId) ?? null;
      out.relationId = rel;
      out.relationInferred = rel !== null;
    }
    return out;
  });
}

/**
 * Loads CounterFact cases. A named split reads EasyEdit's file for it; 'all' prefers ROME's full counterfact.json
 * when present, else the three EasyEdit files merged by case id, else downloads counterfact.json.
 */
export async function loadCounterFact(opts: LoadCounterFactOptions = {}): Promise<CounterFactRecord[]> {
  const split = opts.split ?? 'all';
  let recs: CounterFactRecord[];
  if (opts.file) {
    recs = await readCounterFactFile(opts.file);
  } else if (split !== 'all') {
    const file = await requireDataFile(easyEditFile(split), { dataDir: opts.dataDir, downloadUrl: null });
    recs = await readCounterFactFile(file, split);
  } else {
    const full = findDataFile(ROME_COUNTERFACT_FILE, opts.dataDir);
    const ee = EASYEDIT_SPLITS.map((s) => findDataFile(easyEditFile(s), opts.dataDir));
    if (full) recs = await readCounterFactFile(full);
    else if (ee.every((f) => f !== null)) {
      const parts = await Promise.all(EASYEDIT_SPLITS.map((s, i) => readCounterFactFile(ee[i] as string, s)));
      recs = parts.flat().sort((a, b) => a.caseId - b.caseId);
    } else {
      const file = await requireDataFile(ROME_COUNTERFACT_FILE, {
        dataDir: opts.dataDir,
        downloadUrl: opts.download === false ? null : undefined,
        fetch: opts.fetch,
      });
      recs = await readCounterFactFile(file);
    }
  }
  if (opts.limit !== undefined) recs = recs.slice(0, Math.max(0, opts.limit));
  return annotateEasyEdit(recs, opts);
}
