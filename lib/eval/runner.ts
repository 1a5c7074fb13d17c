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
  writeJsonAtomic(path.join(opts.outDir, 'run.json'), {
    dataset,
    method: opts.method,
    model: model.name,
    hparams: opts.hparams ?? {},
    generation: opts.generation ? { maxNewTokens: opts.generation.maxNewTokens ?? 100, topK: opts.generation.topK ?? 5 } : null,
    ...opts.runInfo,
  });
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
      opts.onCase?.(i + 1, mine.length, id, true);
      continue;
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

/** Reads a case file. */
export function readCaseResult<E = unknown>(file: string): CaseResult<E> {
  return JSON.parse(readFileSync(file, 'utf8')) as CaseResult<E>;
}
