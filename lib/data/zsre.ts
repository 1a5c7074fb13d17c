/**
 * zsRE question-answering edits. Reads the MEND-style evaluation records (`src`, `rephrase`, `alt`, `answers`,
 * `loc`, `loc_ans`), which both the bundled `zsre/zsre_mend_eval_portability_gpt4.json` and ROME's published
 * `zsre_mem_eval.json` use. ROME's own evaluation appends "?" to `loc` when scoring specificity; rome-ts keeps the
 * raw string in `locPrompt` and leaves that choice to the evaluator.
 */
import { RecordReader, expectRecords, readJson, DatasetFormatError } from './json.js';
import { findDataFile, requireDataFile, type FetchLike } from './paths.js';
import { templateOf } from './relations.js';

/** One zsRE edit case. */
export interface ZsreRecord {
  /** Index of the record in its file. */
  index: number;
  subject: string;
  /** The question as given (`src`), e.g. "When was the inception of X?". */
  prompt: string;
  /** `prompt` with its first occurrence of the subject replaced by "{}" (the subject always occurs). */
  template: string;
  /** A paraphrase of the question. */
  rephrase: string;
  /** The answer to insert (`alt`). */
  target: string;
  /** The dataset's reference answers to the original question. */
  answers: string[];
  /** An unrelated Natural Questions prompt (`loc`), e.g. "nq question: who sang …". */
  locPrompt: string;
  /** Its answer (`loc_ans`). */
  locAnswer: string;
}

/** Options for {@link loadZsre}. */
export interface LoadZsreOptions {
  /** Data directory to use instead of the standard lookup (plus the download cache). */
  dataDir?: string;
  /** Explicit file (either variant). */
  file?: string;
  limit?: number;
  /** When the bundled file is absent, download ROME's zsre_mem_eval.json (default true). */
  download?: boolean;
  fetch?: FetchLike;
}

/** Relative path of the portability evaluation subset in the shared data directory. */
export const ZSRE_EVAL_FILE = 'zsre/zsre_mend_eval_portability_gpt4.json';
/** ROME's published zsRE evaluation file name. */
export const ROME_ZSRE_FILE = 'zsre_mem_eval.json';

/** Loads zsRE evaluation records (1,037 in the portability subset, 19,086 in ROME's file). */
export async function loadZsre(opts: LoadZsreOptions = {}): Promise<ZsreRecord[]> {
  const file =
    opts.file ??
    findDataFile(ZSRE_EVAL_FILE, opts.dataDir) ??
    (await requireDataFile(ROME_ZSRE_FILE, {
      dataDir: opts.dataDir,
      downloadUrl: opts.download === false ? null : undefined,
      fetch: opts.fetch,
    }));
  let recs = expectRecords(file, await readJson(file));
  if (opts.limit !== undefined) recs = recs.slice(0, Math.max(0, opts.limit));
  return recs.map((obj, i) => {
    const r = new RecordReader(file, `record ${i}`, obj);
    const subject = r.str('subject');
    const prompt = r.str('src');
    const template = templateOf(prompt, subject);
    if (template === null) throw new DatasetFormatError(file, `record ${i}`, 'src does not contain the subject');
    const answers = r.strings('answers');
    return {
      index: i,
      subject,
      prompt,
      template,
      rephrase: r.str('rephrase'),
      target: r.str('alt'),
      answers,
      locPrompt: r.str('loc'),
      locAnswer: r.str('loc_ans'),
    };
  });
}
