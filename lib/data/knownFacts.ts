import { DatasetFormatError, RecordReader, expectRecords, readJson } from './json.js';
import { requireDataFile, type FetchLike } from './paths.js';

/** One record of ROME's known-facts set (`known_1000.json`): a fact GPT-2 XL predicts correctly. */
export interface KnownFact {
  /** `known_id`: the record's index in the file. */
  knownId: number;
  subject: string;
  /** The object (answer), e.g. "Antarctica". */
  attribute: string;
  /** Relation template with "{}" for the subject, e.g. "{} is located in the continent". */
  template: string;
  /** GPT-2 XL's continuation of `prompt` when the set was built. */
  prediction: string;
  /** The prompt actually used for tracing; often the template plus a few extra words. */
  prompt: string;
  /** Wikidata property id, e.g. "P30". */
  relationId: string;
}

/** Options for {@link loadKnownFacts}. */
export interface LoadKnownFactsOptions {
  /** Data directory to use instead of the standard lookup (plus the download cache). */
  dataDir?: string;
  /** Explicit file path (skips the lookup). */
  file?: string;
  /** Download from rome.baulab.info when absent (default true). */
  download?: boolean;
  /** Fetch used for downloading (tests). */
  fetch?: FetchLike;
}

/** Relative path of the known-facts file inside a data directory. */
export const KNOWN_FACTS_FILE = 'known_1000.json';

/** Parses and validates known-facts records from an already-parsed JSON array. */
export function parseKnownFacts(file: string, data: Parameters<typeof expectRecords>[1]): KnownFact[] {
  const seen = new Set<number>();
  return expectRecords(file, data).map((obj, i) => {
    const r = new RecordReader(file, `record ${i}`, obj);
    const fact: KnownFact = {
      knownId: r.int('known_id'),
      subject: r.str('subject'),
      attribute: r.str('attribute'),
      template: r.str('template'),
      prediction: r.str('prediction', true),
      prompt: r.str('prompt'),
      relationId: r.str('relation_id'),
    };
    const bad = (p: string): never => {
      throw new DatasetFormatError(file, `record ${i} (known_id ${fact.knownId})`, p);
    };
    if (seen.has(fact.knownId)) bad('duplicate known_id');
    seen.add(fact.knownId);
    if (fact.template.split('{}').length !== 2) bad(`template must contain "{}" exactly once: ${JSON.stringify(fact.template)}`);
    if (!fact.prompt.includes(fact.subject)) bad('prompt does not contain the subject');
    if (!/^P\d+$/.test(fact.relationId)) bad(`relation_id is not a Wikidata property id: ${fact.relationId}`);
    return fact;
  });
}

/** Loads ROME's known facts (1,209 records in the published file), validating every field. */
export async function loadKnownFacts(opts: LoadKnownFactsOptions = {}): Promise<KnownFact[]> {
  const file =
    opts.file ??
    (await requireDataFile(KNOWN_FACTS_FILE, {
      dataDir: opts.dataDir,
      downloadUrl: opts.download === false ? null : undefined,
      fetch: opts.fetch,
    }));
  return parseKnownFacts(file, await readJson(file));
}
