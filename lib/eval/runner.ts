/**
 * The evaluation protocol: for each record, edit → evaluate (post) → restore → evaluate (pre), one JSON file per
 * case (`case_<id>.json`) in the output directory, skipped when it already exists (resumable), records split
 * across shards by index (shard i of N takes records with index % N == i). `run.json` records the settings.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { CounterFactRecord } from '../data/counterfact.js';
import type { ZsreRecord } from '../data/zsre.js';
import type { GPT2Model } from '../model/model.js';
import type { EditRequest } from '../rome/types.js';
import { evalCounterFactCase, type CounterFactEval, type GenerationOptions } from './counterfact.js';
import { makeEditor, type MethodHparams, type MethodName } from './methods.js';
import { evalZsreCase, type ZsreEval } from './zsre.js';
import { weightsHash } from '../rome/identity.js';
import { logLine } from '../log.js';

/** One case's result file. */
export interface CaseResult<E> {
  dataset: 'counterfact' | 'zsre';
  caseId: number;
  method: MethodName;
  model: string;
  request: EditRequest;
  pre: E;
  post: E;
  /** Edit diagnostics: wall time, loss trace, method info (vectors dropped). */
  edit: { ms: number; losses: number[]; layer: number | null; info: Record<string, unknown> } | null;
}

/** Options of an evaluation run. */
export interface RunEvalOptions {
  method: MethodName;
  outDir: string;
  hparams?: MethodHparams;
  /** [i, N]: this process takes records with index % N == i. */
  shard?: [number, number];
  /** Generation metrics (CounterFact only); null/undefined = skip GE/RS. */
  generation?: GenerationOptions | null;
  /** Called after each case. */
  onCase?: (done: number, total: number, caseId: number, skipped: boolean) => void;
  /** Extra fields for run.json (e.g. the command line). */
  runInfo?: Record<string, unknown>;
}

function writeJsonAtomic(file: string, data: unknown): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(data));
  renameSync(tmp, file);
}

function slimInfo(info: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(info)) if (!(Array.isArray(v) && v.length > 64)) out[k] = v;
  return out;
}

/** What binds a result directory: case files are only reused by a run with exactly these settings. */
export interface RunSettings {
  dataset: 'counterfact' | 'zsre';
  method: MethodName;
  model: string;
  /** sha256 of every model weight (identity.ts weightsHash). */
  weightsSha256: string;
  hparams: MethodHparams;
  generation: { maxNewTokens: number; topK: number } | null;
}

/** JSON with object keys sorted, so equal settings compare equal whatever the key order. */
function canonical(x: unknown): string {
  return JSON.stringify(x, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1))) : v,
  );
}

/**
 * Writes DIR/run.json for a new directory; for an existing one, checks that its settings are these (else throws
 * naming the first field that differs: resuming would mix results of two configurations). A matching run.json is
 * left as written by the run that created the directory.
 */
export function bindRunDir(dir: string, settings: RunSettings, runInfo: Record<string, unknown>): void {
  const file = path.join(dir, 'run.json');
  if (!existsSync(file)) {
    writeJsonAtomic(file, { ...settings, settings, ...runInfo });
    return;
  }
  let old: Record<string, unknown>;
  try {
    old = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message}); cannot tell which settings the results in ${dir} belong to`);
  }
  // Directories written before run.json carried "settings" have the same fields at the top level, but no weights hash.
  const prev = (old.settings ?? old) as Record<string, unknown>;
  for (const k of Object.keys(settings) as (keyof RunSettings)[]) {
    if (k === 'weightsSha256' && prev[k] === undefined) continue;
    const a = canonical(prev[k] ?? (k === 'hparams' ? {} : k === 'generation' ? null : undefined));
    const b = canonical(settings[k]);
    if (a !== b) {
      throw new Error(
        `${dir} holds results of other settings: ${k} was ${a} and is now ${b} (${file}); ` +
          'use another --out directory, or delete that one to start over',
      );
    }
  }
}

/** Why a case file cannot be reused (unreadable, truncated, another case or method), or null when it is sound. */
export function caseFileProblem(file: string, dataset: string, caseId: number, method: MethodName): string | null {
  let r: Partial<CaseResult<unknown>>;
  try {
    r = JSON.parse(readFileSync(file, 'utf8')) as Partial<CaseResult<unknown>>;
  } catch (e) {
    return `unreadable (${(e as Error).message})`;
  }
  if (r === null || typeof r !== 'object') return 'not a case result';
  if (r.dataset !== dataset || r.caseId !== caseId || r.method !== method) {
    return `holds ${String(r.dataset)} case ${String(r.caseId)} of method ${String(r.method)}, expected ${dataset} case ${caseId} of ${method}`;
  }
  if (r.pre === null || typeof r.pre !== 'object' || r.post === null || typeof r.post !== 'object') return 'lacks its pre/post measurements';
  return null;
}

/** Parses "i/N" into [i, N]. */
export function parseShard(s: string): [number, number] {
  const m = /^(\d+)\/(\d+)$/.exec(s);
  if (!m || Number(m[1]) >= Number(m[2])) throw new Error(`--shard must be i/N with 0 <= i < N, got "${s}"`);
  return [Number(m[1]), Number(m[2])];
}

async function runCases<R, E>(
  model: GPT2Model,
  dataset: 'counterfact' | 'zsre',
  records: readonly R[],
  idOf: (r: R) => number,
  requestOf: (r: R) => EditRequest,
  evaluate: (r: R) => Promise<E>,
  opts: RunEvalOptions,
): Promise<string[]> {
  mkdirSync(opts.outDir, { recursive: true });
  const settings: RunSettings = {
    dataset,
    method: opts.method,
    model: model.name,
    weightsSha256: weightsHash(model),
    hparams: opts.hparams ?? {},
    generation: opts.generation ? { maxNewTokens: opts.generation.maxNewTokens ?? 100, topK: opts.generation.topK ?? 5 } : null,
  };
  bindRunDir(opts.outDir, settings, opts.runInfo ?? {});
  const editor = makeEditor(model, opts.method, opts.hparams);
  const [si, sn] = opts.shard ?? [0, 1];
  const mine = records.filter((_, i) => i % sn === si);
  const files: string[] = [];
  for (let i = 0; i < mine.length; i++) {
    const rec = mine[i];
    const id = idOf(rec);
    const file = path.join(opts.outDir, `case_${id}.json`);
    files.push(file);
    if (existsSync(file)) {
      const problem = caseFileProblem(file, dataset, id, opts.method);
      if (problem === null) {
        opts.onCase?.(i + 1, mine.length, id, true);
        continue;
      }
      process.stderr.write(`${file}: ${problem}; recomputing this case\n`);
    }
    const req = requestOf(rec);
    const t0 = Date.now();
    let handle: Awaited<ReturnType<typeof editor>> = null;
    let post: E;
    let pre: E;
    let ms = 0;
    try {
      handle = await editor(req);
      ms = Date.now() - t0;
      try {
        post = await evaluate(rec);
      } finally {
        handle?.restore();
      }
      pre = await evaluate(rec);
    } catch (e) {
      // One bad case (e.g. a prompt longer than a small model's context) must not stop a long run; it is recorded
      // next to the results, left out of summaries, and retried by the next run.
      writeJsonAtomic(path.join(opts.outDir, `case_${id}.error.json`), { caseId: id, error: (e as Error).message });
      logLine(`case ${id}: ${(e as Error).message}`);
      opts.onCase?.(i + 1, mine.length, id, false);
      continue;
    }
    const result: CaseResult<E> = {
      dataset,
      caseId: id,
      method: opts.method,
      model: model.name,
      request: handle?.request ?? req,
      pre,
      post,
      edit: handle ? { ms, losses: handle.losses.map((l) => l.loss), layer: handle.layer, info: slimInfo(handle.info) } : null,
    };
    writeJsonAtomic(file, result);
    opts.onCase?.(i + 1, mine.length, id, false);
  }
  return files;
}

/** Runs the CounterFact protocol over `records`; returns the case files of this shard. */
export function runCounterFactEval(model: GPT2Model, records: readonly CounterFactRecord[], opts: RunEvalOptions): Promise<string[]> {
  return runCases<CounterFactRecord, CounterFactEval>(
    model,
    'counterfact',
    records,
    (r) => r.caseId,
    (r) => ({ prompt: r.prompt, subject: r.subject, target: r.targetNew, targetTrue: r.targetTrue }),
    (r) => evalCounterFactCase(model, r, opts.generation ?? null),
    opts,
  );
}

/** Runs the zsRE protocol over `records`; returns the case files of this shard. */
export function runZsreEval(model: GPT2Model, records: readonly ZsreRecord[], opts: RunEvalOptions): Promise<string[]> {
  return runCases<ZsreRecord, ZsreEval>(
    model,
    'zsre',
    records,
    (r) => r.index,
    (r) => ({ prompt: r.template, subject: r.subject, target: r.target, targetTrue: r.answers[0] }),
    async (r) => evalZsreCase(model, r),
    opts,
  );
}

/** Reads a case file; a truncated or malformed one throws naming the file. */
export function readCaseResult<E = unknown>(file: string): CaseResult<E> {
  let r: CaseResult<E>;
  try {
    r = JSON.parse(readFileSync(file, 'utf8')) as CaseResult<E>;
  } catch (e) {
    throw new Error(`${file}: unreadable case result (${(e as Error).message}); rerun the eval command on its directory to recompute it`);
  }
  if (r === null || typeof r !== 'object' || typeof r.caseId !== 'number' || !r.pre || !r.post) {
    throw new Error(`${file}: not a complete case result (caseId, pre and post are required); rerun the eval command to recompute it`);
  }
  return r;
}
