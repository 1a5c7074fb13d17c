/**
 * Average indirect effects over many facts (paper Figure 2, and Figure 3 averaged): per fact, one trace session
 * scores every kind's table (and optionally the severed curves) in one batched pass; per-fact records go to disk
 * (one JSON file each), so a sweep resumes after an interruption and `--shard i/N` runs merge afterwards.
 *
 * Facts the model does not know are skipped (and counted): the clean top-1 token must be the first token of the
 * attribute. The comparison is on that first token, with GPT-2's leading space handled (" Paris" vs "Paris");
 * the official code instead compares the decoded top-1 token with the WHOLE attribute, which silently drops every
 * multi-token attribute.
 */
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { GPT2Model } from '../model/model.js';
import { mixSeed } from '../rng.js';
import { defaultWindow, scoreWithThreads, tableRestorations, type ThreadOptions } from './causalTrace.js';
import { TraceSession, type Restoration, type StateKind } from './engine.js';
import { resolveNoiseLevel } from './noise.js';
import { severedRestorations } from './severed.js';

/** A fact to trace: the prompt, its subject, and the expected answer. */
export interface TraceFact {
  prompt: string;
  subject: string;
  attribute: string;
  /** Stable id (file name of its record); default: the fact's index in the list. */
  knownId?: number;
}

/** What is on disk for one fact. */
export interface FactTraceRecord {
  version: 1;
  id: number;
  prompt: string;
  subject: string;
  attribute: string;
  /** Settings fingerprint: records merge only with records of the same settings. */
  settings: string;
  known: boolean;
  answer: { id: number; token: string };
  pStar: number;
  pLow: number;
  tokens: string[];
  subjectRange: { start: number; end: number };
  noise: number;
  samples: number;
  seed: number;
  /** Tables [tokens][layers] of scores per kind (known facts only). */
  scores?: Partial<Record<StateKind, number[][]>>;
  windows?: Partial<Record<StateKind, number>>;
  /** Figure 3 curves at the last subject token (known facts only, when requested). */
  severed?: { token: number; ordinary: number[]; mlpSevered: number[]; attnSevered: number[] };
}

/** The six token buckets of Figure 2, in order. */
export const BUCKETS = [
  { name: 'first_subject', label: 'First subject token' },
  { name: 'middle_subject', label: 'Middle subject tokens' },
  { name: 'last_subject', label: 'Last subject token' },
  { name: 'first_subsequent', label: 'First subsequent token' },
  { name: 'further', label: 'Further tokens' },
  { name: 'last', label: 'Last token' },
] as const;

/** Per-layer statistics of one bucket. */
export interface BucketStats {
  name: (typeof BUCKETS)[number]['name'];
  label: string;
  /** Facts that contributed (a fact adds one row per bucket: the mean over the bucket's tokens). */
  count: number;
  /** Mean indirect effect (score − p_low) per layer. */
  meanIE: number[];
  /** Half-width of the 95% CI of meanIE: 1.96·std/√n (std with n−1; 0 when n < 2). */
  ci: number[];
  /** Mean restored score per layer. */
  meanScore: number[];
}

/** Mean ± 95% CI per layer. */
export interface CurveStats {
  count: number;
  mean: number[];
  ci: number[];
}

/** Figure 2 (and averaged Figure 3) over a set of facts. */
export interface AverageEffects {
  nLayer: number;
  /** Facts seen (known + skipped). */
  nFacts: number;
  nKnown: number;
  /** Facts skipped because the model's top-1 is not the attribute. */
  nSkipped: number;
  meanPStar: number;
  meanPLow: number;
  /** Average total effect: mean(p*) − mean(p_low) over known facts, with its 95% CI. */
  ate: number;
  ateCI: number;
  kinds: Partial<Record<StateKind, { kind: StateKind; window: number; buckets: BucketStats[] }>>;
  /** Indirect effects (score − p_low) of restoring h_l at the last subject token: ordinary / MLP- / attn-severed. */
  severed?: { ordinary: CurveStats; mlpSevered: CurveStats; attnSevered: CurveStats };
  noise: number;
  samples: number;
}

/** Options of averageIndirectEffect. */
export interface AverageEffectsOptions {
  kinds?: readonly StateKind[];
  windows?: Partial<Record<StateKind, number>>;
  samples?: number;
  /** ν, or 'auto' (3σ over the known-facts subjects, or over `noiseSubjects`). */
  noise?: number | 'auto';
  noiseSubjects?: readonly string[];
  /** Base seed; fact i uses mixSeed(seed, id) so results do not depend on sharding or order. */
  seed?: number;
  /** Also compute Figure 3's severed curves per fact (default false). */
  severed?: boolean;
  method?: 'incremental' | 'naive';
  maxRows?: number;
  /** Threads per fact (see ThreadOptions; the workers and their copy of the weights serve every fact). */
  threads?: ThreadOptions['threads'];
  /** One record per fact is written here (`fact-<id>.json`). */
  outDir?: string;
  /** Process only facts with index % count === index. */
  shard?: { index: number; count: number };
  /** Reuse records already in outDir that have the same settings (default false: recompute and overwrite). */
  resume?: boolean;
  /** After each fact: facts done, facts in this shard, and the fact's record. */
  onProgress?: (done: number, total: number, record: FactTraceRecord) => void;
}

/** Whether the model's top-1 answer is the attribute's first token (leading space handled both ways). */
export function isKnownAnswer(model: GPT2Model, answerId: number, attribute: string): boolean {
  const attr = attribute.trim();
  if (!attr) return false;
  const first = model.encodeContinuation(' ' + attr)[0];
  if (answerId === first) return true;
  const top = model.decode([answerId]).trim();
  return top.length > 0 && (top === model.decode([first]).trim() || top === model.decode([model.encodeContinuation(attr)[0]]).trim());
}

function settingsKey(model: GPT2Model, o: { kinds: readonly StateKind[]; windows: Record<string, number>; samples: number; noise: number; seed: number; severed: boolean }): string {
  return JSON.stringify({ model: model.name, kinds: o.kinds, windows: o.windows, samples: o.samples, noise: o.noise, seed: o.seed, severed: o.severed });
}

/** Traces one fact into a record (no disk). */
export async function traceFact(
  model: GPT2Model,
  fact: TraceFact,
  id: number,
  o: {
    kinds: readonly StateKind[];
    windows: Record<string, number>;
    samples: number;
    noise: number;
    seed: number;
    severed: boolean;
    method?: 'incremental' | 'naive';
    maxRows?: number;
    threads?: ThreadOptions['threads'];
  },
): Promise<FactTraceRecord> {
  const seed = mixSeed(o.seed, id);
  const s = await TraceSession.create(model, { prompt: fact.prompt, subject: fact.subject }, { samples: o.samples, noise: o.noise, seed });
  try {
    const rec: FactTraceRecord = {
      version: 1,
      id,
      prompt: fact.prompt,
      subject: fact.subject,
      attribute: fact.attribute,
      settings: settingsKey(model, o),
      known: isKnownAnswer(model, s.answer.id, fact.attribute),
      answer: { ...s.answer },
      pStar: s.pStar,
      pLow: s.pLow,
      tokens: [...s.tokens],
      subjectRange: { ...s.subjectRange },
      noise: s.noise,
      samples: s.samples,
      seed,
    };
    if (!rec.known) return rec;
    const L = model.config.nLayer;
    const all: Restoration[] = [];
    for (const k of o.kinds) all.push(...tableRestorations(s.length, L, k, o.windows[k]));
    const tLast = s.subjectRange.end - 1;
    if (o.severed) {
      const sv = severedRestorations(tLast, L);
      all.push(...sv.ordinary, ...sv.mlp, ...sv.attn);
    }
    const flat = await scoreWithThreads(s, all, { method: o.method, maxRows: o.maxRows, threads: o.threads });
    let at = 0;
    rec.scores = {};
    rec.windows = {};
    for (const k of o.kinds) {
      rec.scores[k] = Array.from({ length: s.length }, (_, t) => flat.slice(at + t * L, at + (t + 1) * L));
      rec.windows[k] = o.windows[k];
      at += s.length * L;
    }
    if (o.severed) {
      rec.severed = {
        token: tLast,
        ordinary: flat.slice(at, at + L),
        mlpSevered: flat.slice(at + L, at + 2 * L),
        attnSevered: flat.slice(at + 2 * L, at + 3 * L),
      };
    }
    return rec;
  } finally {
    s.dispose();
  }
}

function recordPath(dir: string, id: number): string {
  return path.join(dir, `fact-${id}.json`);
}

/** A record file's content, or why it cannot be used (missing files are reported as "missing"). */
async function readRecord(file: string): Promise<{ record: FactTraceRecord } | { problem: string }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return { problem: 'missing' };
  }
  let r: FactTraceRecord;
  try {
    r = JSON.parse(text) as FactTraceRecord;
  } catch (e) {
    return { problem: `unreadable (${(e as Error).message})` };
  }
  if (r === null || typeof r !== 'object' || r.version !== 1) return { problem: 'not a version-1 fact trace record' };
  if (typeof r.id !== 'number' || typeof r.settings !== 'string' || typeof r.known !== 'boolean') return { problem: 'lacks id, settings or known' };
  if (r.known && !r.scores && !r.severed) return { problem: 'a known fact without scores' };
  return { record: r };
}

/**
 * Traces every fact (of this shard) for the given kinds and returns Figure 2's bucket averages over the facts
 * processed here (known ones; unknown ones are counted in nSkipped). With `outDir`, per-fact records are written
 * there and `resume` reuses matching ones; use mergeTraceResults(outDir) to combine shards.
 */
export async function averageIndirectEffect(model: GPT2Model, facts: readonly TraceFact[], opts: AverageEffectsOptions = {}): Promise<AverageEffects> {
  const kinds = opts.kinds ?? (['hidden', 'mlp', 'attn'] as const);
  const windows: Record<string, number> = {};
  for (const k of kinds) windows[k] = opts.windows?.[k] ?? defaultWindow(k);
  const samples = opts.samples ?? 10;
  const noise = await resolveNoiseLevel(model, opts.noise ?? 'auto', opts.noiseSubjects);
  const seed = opts.seed ?? 0;
  const severed = opts.severed ?? false;
  const shard = opts.shard ?? { index: 0, count: 1 };
  if (!(Number.isInteger(shard.count) && shard.count >= 1 && Number.isInteger(shard.index) && shard.index >= 0 && shard.index < shard.count)) {
    throw new Error(`shard ${shard.index}/${shard.count} is invalid: need 0 <= i < N`);
  }
  const settings = { kinds, windows, samples, noise, seed, severed };
  const key = settingsKey(model, settings);
  if (opts.outDir) await mkdir(opts.outDir, { recursive: true });
  const mine = facts.map((f, i) => ({ f, i })).filter(({ i }) => i % shard.count === shard.index);
  const records: FactTraceRecord[] = [];
  let done = 0;
  for (const { f, i } of mine) {
    const id = f.knownId ?? i;
    let rec: FactTraceRecord | null = null;
    if (opts.outDir && opts.resume) {
      const file = recordPath(opts.outDir, id);
      const got = await readRecord(file);
      if ('problem' in got && got.problem !== 'missing') process.stderr.write(`${file}: ${got.problem}; recomputing this fact\n`);
      const old = 'record' in got ? got.record : null;
      if (old && old.settings === key && old.prompt === f.prompt && old.subject === f.subject) rec = old;
    }
    if (!rec) {
      rec = await traceFact(model, f, id, { ...settings, method: opts.method, maxRows: opts.maxRows, threads: opts.threads });
      if (opts.outDir) {
        // Write-then-rename: an interrupted run never leaves a half-written record behind.
        const file = recordPath(opts.outDir, id);
        await writeFile(`${file}.tmp`, JSON.stringify(rec));
        await rename(`${file}.tmp`, file);
      }
    }
    records.push(rec);
    done++;
    opts.onProgress?.(done, mine.length, rec);
  }
  return aggregateTraceRecords(records, model.config.nLayer);
}

/** Reads every `fact-*.json` in `dir` (all shards) and aggregates them; throws if their settings differ. */
export async function mergeTraceResults(dir: string): Promise<AverageEffects> {
  const names = (await readdir(dir)).filter((n) => /^fact-\d+\.json$/.test(n));
  const records: FactTraceRecord[] = [];
  const bad: string[] = [];
  for (const n of names) {
    const r = await readRecord(path.join(dir, n));
    if ('record' in r) records.push(r.record);
    else bad.push(`${path.join(dir, n)}: ${r.problem}`);
  }
  // Dropping a record would silently change the averages; the shard that wrote it can recompute it with --resume.
  if (bad.length > 0) {
    throw new Error(`mergeTraceResults: ${bad.length} record${bad.length > 1 ? 's are' : ' is'} unusable (rerun their shard with --resume to recompute):\n${bad.slice(0, 20).join('\n')}`);
  }
  if (records.length === 0) throw new Error(`mergeTraceResults: no fact-*.json records in ${dir}`);
  const keys = new Set(records.map((r) => r.settings));
  if (keys.size > 1) throw new Error(`mergeTraceResults: ${dir} mixes records of ${keys.size} different settings:\n${[...keys].join('\n')}`);
  records.sort((a, b) => a.id - b.id);
  const known = records.find((r) => r.known && r.scores);
  const firstKind = known?.scores ? Object.values(known.scores)[0] : undefined;
  const nLayer = firstKind?.[0]?.length ?? known?.severed?.ordinary.length ?? 0;
  return aggregateTraceRecords(records, nLayer);
}

function meanRows(rows: readonly (readonly number[])[]): number[] {
  const n = rows.length;
  const out = new Array<number>(rows[0].length).fill(0);
  for (const r of rows) r.forEach((v, j) => (out[j] += v / n));
  return out;
}

function curve(rows: readonly (readonly number[])[], nLayer: number): CurveStats {
  const n = rows.length;
  if (n === 0) return { count: 0, mean: new Array<number>(nLayer).fill(0), ci: new Array<number>(nLayer).fill(0) };
  const mean = meanRows(rows);
  const ci = mean.map((m, j) => {
    if (n < 2) return 0;
    let ss = 0;
    for (const r of rows) ss += (r[j] - m) ** 2;
    return (1.96 * Math.sqrt(ss / (n - 1))) / Math.sqrt(n);
  });
  return { count: n, mean, ci };
}

/** Rows of one fact's table per Figure 2 bucket (a bucket with several tokens contributes their mean). */
export function bucketRows(table: readonly (readonly number[])[], range: { start: number; end: number }): Partial<Record<BucketStats['name'], number[]>> {
  const T = table.length;
  const { start, end } = range;
  const out: Partial<Record<BucketStats['name'], number[]>> = {};
  out.first_subject = [...table[start]];
  if (end - start >= 3) out.middle_subject = meanRows(table.slice(start + 1, end - 1));
  out.last_subject = [...table[end - 1]];
  if (end < T) out.first_subsequent = [...table[end]];
  if (end + 1 < T - 1) out.further = meanRows(table.slice(end + 1, T - 1));
  out.last = [...table[T - 1]];
  return out;
}

/** Figure 2 statistics from per-fact records (skipped facts counted, not averaged). */
export function aggregateTraceRecords(records: readonly FactTraceRecord[], nLayer: number): AverageEffects {
  const known = records.filter((r) => r.known && r.scores);
  const nKnown = known.length;
  const pStars = known.map((r) => r.pStar);
  const pLows = known.map((r) => r.pLow);
  const te = curve(known.map((r) => [r.pStar - r.pLow]), 1);
  const res: AverageEffects = {
    nLayer,
    nFacts: records.length,
    nKnown,
    nSkipped: records.length - nKnown,
    meanPStar: nKnown ? pStars.reduce((a, b) => a + b, 0) / nKnown : 0,
    meanPLow: nKnown ? pLows.reduce((a, b) => a + b, 0) / nKnown : 0,
    ate: 0,
    ateCI: te.ci[0] ?? 0,
    kinds: {},
    noise: records[0]?.noise ?? 0,
    samples: records[0]?.samples ?? 0,
  };
  res.ate = res.meanPStar - res.meanPLow;
  const kinds = new Set<StateKind>();
  for (const r of known) for (const k of Object.keys(r.scores!) as StateKind[]) kinds.add(k);
  for (const kind of (['hidden', 'mlp', 'attn'] as const).filter((k) => kinds.has(k))) {
    const ie: Record<string, number[][]> = {};
    const sc: Record<string, number[][]> = {};
    let window = defaultWindow(kind);
    for (const r of known) {
      const table = r.scores![kind];
      if (!table) continue;
      window = r.windows?.[kind] ?? window;
      for (const [name, row] of Object.entries(bucketRows(table, r.subjectRange))) {
        (sc[name] ??= []).push(row);
        (ie[name] ??= []).push(row.map((v) => v - r.pLow));
      }
    }
    res.kinds[kind] = {
      kind,
      window,
      buckets: BUCKETS.map((b) => {
        const c = curve(ie[b.name] ?? [], nLayer);
        return {
          name: b.name,
          label: b.label,
          count: c.count,
          meanIE: c.mean,
          ci: c.ci,
          meanScore: sc[b.name]?.length ? meanRows(sc[b.name]) : new Array<number>(nLayer).fill(0),
        };
      }),
    };
  }
  const sev = known.filter((r) => r.severed);
  if (sev.length) {
    const rel = (r: FactTraceRecord, xs: readonly number[]) => xs.map((v) => v - r.pLow);
    res.severed = {
      ordinary: curve(sev.map((r) => rel(r, r.severed!.ordinary)), nLayer),
      mlpSevered: curve(sev.map((r) => rel(r, r.severed!.mlpSevered)), nLayer),
      attnSevered: curve(sev.map((r) => rel(r, r.severed!.attnSevered)), nLayer),
    };
  }
  return res;
}
