/**
 * Causal tracing of one prompt (paper §2, Figure 1): the [tokens × layers] table of p(answer) when one state of
 * the corrupted run (hidden, or a window of MLP / attention outputs) is restored to its clean value.
 */
import type { GPT2Model } from '../model/model.js';
import {
  TraceSession,
  windowLayers,
  type Restoration,
  type ScoreOptions,
  type StateKind,
  type TraceInput,
  type TraceSetupOptions,
  type TraceStats,
} from './engine.js';
import { sharedTracePool, type TracePool } from './parallel.js';
import { availableParallelism } from 'node:os';

/** Options of causalTrace (plus the prompt: text + subject, or ids + subjectRange). */
export type CausalTraceOptions = TraceInput &
  TraceSetupOptions & {
    kind?: StateKind;
    /** Layers restored together around each layer: default 10 for mlp/attn, 1 for hidden. */
    window?: number;
    method?: ScoreOptions['method'];
    maxRows?: number;
    onProgress?: ScoreOptions['onProgress'];
  } & ThreadOptions;

/** How many cores a trace uses (incremental method only). */
export interface ThreadOptions {
  /**
   * Threads scoring restorations (the caller's + worker threads, each with its own copy of the weights), or 'auto'
   * (default): 2 or more on a multi-core machine when the trace is large enough to repay starting the workers.
   */
  threads?: number | 'auto';
  /**
   * Workers to use instead of the process-wide ones `threads` starts (and keeps, for later traces): from
   * startTracePool; they are loaded with this model's weights when they hold others. Overrides `threads`.
   */
  pool?: TracePool;
}

/**
 * Estimated matmul work (GFLOP per noise row, autoTraceThreads' upper bound) below which 'auto' stays on one thread.
 * Measured with bench/vs-pytorch.ts: the bundled model's full trace (estimate 6.6) took 9.4 s on one thread and
 * 17.7 s on two, 5.7 s of which starting the worker (machine busy); GPT-2 small's full trace (estimate 215) gains
 * from the second core. Starting a worker happens once per process, so repeated small traces could use two threads
 * with `threads: 2`.
 */
export const AUTO_THREADS_MIN_GFLOP = 20;

/** Threads 'auto' picks for scoring `restorations` on `model`: min(cores, 2) for a large trace, else 1. */
export function autoTraceThreads(session: TraceSession, restorations: number): number {
  const cores = availableParallelism();
  if (cores < 2) return 1;
  const cfg = session.model.config;
  // Upper bound of the work: every restoration recomputing half the prompt through half the layers.
  const perRow = restorations * (session.length / 2) * (cfg.nLayer / 2) * (8 * cfg.nEmbd * cfg.nEmbd + 4 * cfg.nEmbd * cfg.nInner) + restorations * 2 * cfg.nEmbd * cfg.vocabSize;
  return perRow / 1e9 >= AUTO_THREADS_MIN_GFLOP ? Math.min(cores, 2) : 1;
}

/** Scores restorations on a session with the threads the options ask for (the shared workers when more than one). */
export async function scoreWithThreads(s: TraceSession, rs: readonly Restoration[], opts: ThreadOptions & { method?: ScoreOptions['method']; maxRows?: number; onProgress?: ScoreOptions['onProgress'] }): Promise<number[]> {
  const base = { method: opts.method, maxRows: opts.maxRows, onProgress: opts.onProgress };
  if (opts.pool) await opts.pool.load(s.model);
  if (opts.pool || (opts.method ?? 'incremental') !== 'incremental') return s.score(rs, { ...base, pool: opts.pool });
  const threads = opts.threads === undefined || opts.threads === 'auto' ? autoTraceThreads(s, rs.length) : opts.threads;
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`causal trace: threads must be a positive integer or 'auto', got ${String(opts.threads)}`);
  if (threads === 1) return s.score(rs, base);
  return s.score(rs, { ...base, pool: await sharedTracePool(s.model, threads) });
}

/** One kind's trace of one prompt. */
export interface CausalTraceResult {
  /** scores[t][l]: mean p(answer) with the state at token t, layer l (window around l) restored. */
  scores: number[][];
  /** p(answer) in the clean run. */
  pStar: number;
  /** Mean p(answer) in the corrupted runs. */
  pLow: number;
  answer: { id: number; token: string };
  tokens: string[];
  /** Subject tokens [start, end). */
  subjectRange: { start: number; end: number };
  kind: StateKind;
  window: number;
  noise: number;
  samples: number;
  seed: number;
  /** The prompt text when traced from text. */
  prompt?: string;
  subject?: string;
}

/** Default window of a kind: 1 for hidden states, 10 for MLP and attention (the paper's choice). */
export function defaultWindow(kind: StateKind): number {
  return kind === 'hidden' ? 1 : 10;
}

/** The restorations of a whole table for one kind, row-major over (token, layer). */
export function tableRestorations(nTokens: number, nLayer: number, kind: StateKind, window: number): Restoration[] {
  const out: Restoration[] = [];
  for (let t = 0; t < nTokens; t++) {
    for (let l = 0; l < nLayer; l++) out.push(windowLayers(l, window, nLayer).map((j) => ({ kind, layer: j, position: t })));
  }
  return out;
}

function toTable(flat: readonly number[], nTokens: number, nLayer: number): number[][] {
  return Array.from({ length: nTokens }, (_, t) => flat.slice(t * nLayer, (t + 1) * nLayer));
}

function resultOf(s: TraceSession, kind: StateKind, window: number, flat: readonly number[], input: TraceInput): CausalTraceResult {
  const r: CausalTraceResult = {
    scores: toTable(flat, s.length, s.model.config.nLayer),
    pStar: s.pStar,
    pLow: s.pLow,
    answer: { ...s.answer },
    tokens: [...s.tokens],
    subjectRange: { ...s.subjectRange },
    kind,
    window,
    noise: s.noise,
    samples: s.samples,
    seed: s.seed,
  };
  if (input.prompt !== undefined) {
    r.prompt = input.prompt;
    r.subject = input.subject;
  }
  return r;
}

function inputOf(opts: TraceInput): TraceInput {
  return opts.prompt !== undefined
    ? { prompt: opts.prompt, subject: opts.subject }
    : { ids: opts.ids, subjectRange: opts.subjectRange };
}

/** Traces one prompt for one kind of state: 2 + (tokens × layers) restorations, each averaged over `samples` rows. */
export async function causalTrace(model: GPT2Model, opts: CausalTraceOptions): Promise<CausalTraceResult> {
  const kind = opts.kind ?? 'hidden';
  const window = opts.window ?? defaultWindow(kind);
  const input = inputOf(opts);
  const s = await TraceSession.create(model, input, opts);
  try {
    const rs = tableRestorations(s.length, model.config.nLayer, kind, window);
    const flat = await scoreWithThreads(s, rs, opts);
    return resultOf(s, kind, window, flat, input);
  } finally {
    s.dispose();
  }
}

/** Options of tracePrompt: causalTrace's, with several kinds and one window per kind. */
export type TracePromptOptions = TraceInput &
  TraceSetupOptions & {
    method?: ScoreOptions['method'];
    maxRows?: number;
    onProgress?: ScoreOptions['onProgress'];
  } & ThreadOptions & {
  /** Kinds to trace (default all three). */
  kinds?: readonly StateKind[];
  /** Window per kind (defaults as in causalTrace). */
  windows?: Partial<Record<StateKind, number>>;
};

/** Several kinds traced from one clean and one corrupted run (shared caches, one batched scoring pass). */
export interface TracePromptResult {
  results: Partial<Record<StateKind, CausalTraceResult>>;
  pStar: number;
  pLow: number;
  answer: { id: number; token: string };
  tokens: string[];
  subjectRange: { start: number; end: number };
  /** Work done (forward calls, rows, FLOPs). */
  stats: TraceStats;
}

/** Traces a prompt for every kind in `kinds` (default hidden, mlp, attn), sharing the clean and corrupted runs. */
export async function tracePrompt(model: GPT2Model, opts: TracePromptOptions): Promise<TracePromptResult> {
  const kinds = opts.kinds ?? (['hidden', 'mlp', 'attn'] as const);
  const input = inputOf(opts);
  const s = await TraceSession.create(model, input, opts);
  try {
    const L = model.config.nLayer;
    const all: Restoration[] = [];
    const spans: { kind: StateKind; window: number; from: number; to: number }[] = [];
    for (const kind of kinds) {
      const window = opts.windows?.[kind] ?? defaultWindow(kind);
      const rs = tableRestorations(s.length, L, kind, window);
      spans.push({ kind, window, from: all.length, to: all.length + rs.length });
      all.push(...rs);
    }
    const flat = await scoreWithThreads(s, all, opts);
    const results: Partial<Record<StateKind, CausalTraceResult>> = {};
    for (const sp of spans) results[sp.kind] = resultOf(s, sp.kind, sp.window, flat.slice(sp.from, sp.to), input);
    return {
      results,
      pStar: s.pStar,
      pLow: s.pLow,
      answer: { ...s.answer },
      tokens: [...s.tokens],
      subjectRange: { ...s.subjectRange },
      stats: { ...s.stats },
    };
  } finally {
    s.dispose();
  }
}
