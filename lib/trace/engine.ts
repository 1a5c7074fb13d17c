/**
 * The causal-tracing engine: one prompt's clean and corrupted runs, cached, and the scoring of any set of
 * restorations (states forced to their clean or corrupted values in the corrupted run) by two methods:
 *
 * - naive: every restoration is a full forward of `samples` noisy rows through `model.run` with patches; several
 *   restorations share one call by stacking their rows.
 * - incremental: a restoration whose first clean state is at token t and enters the network at layer j changes
 *   nothing at positions < t nor below layer j (causal attention). So only positions ≥ t are recomputed, from the
 *   cached corrupted residual entering layer j, with the corrupted keys/values of positions < t as the KV cache.
 *   Restorations with the same t run together layer by layer; each joins the batch at its own layer, so no
 *   restoration recomputes a layer it cannot change. Two more exact savings: a restoration that has made the
 *   same edits as another below some layer starts from a copy of that one's rows there (MLP/attention windows
 *   [0,4], [0,5], … share their first layers), and states before the subject are never touched by the noise,
 *   so restoring them is a no-op scored as p_low without computing.
 *
 * Both methods read the same clean states and the same noise draw, so their scores agree to float rounding.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { HookFn } from '../hooks.js';
import { forward, logitLens, type KVCache } from '../model/forward.js';
import type { GPT2Model } from '../model/model.js';
import type { Patch } from '../model/patch.js';
import { createRng } from '../rng.js';
import { resolveNoiseLevel } from './noise.js';
import type { TracePool } from './parallel.js';

/** Which state a restoration touches: block output (residual stream), MLP output or attention output. */
export type StateKind = 'hidden' | 'mlp' | 'attn';

/** One state of one token at one layer, forced to its clean value (default) or to its corrupted value. */
export interface RestoredState {
  kind: StateKind;
  layer: number;
  /** Token position (0-based). */
  position: number;
  /** 'clean' (default) restores the clean run's value; 'corrupt' forces the corrupted run's value (severing). */
  source?: 'clean' | 'corrupt';
}

/** A restoration: states changed together in one corrupted run; scored by mean p(answer) over the noise rows. */
export type Restoration = readonly RestoredState[];

/** The prompt of a trace: text with a subject, or token ids with the subject's token range. */
export type TraceInput =
  | { prompt: string; subject: string; ids?: undefined; subjectRange?: undefined }
  | { ids: readonly number[]; subjectRange: { start: number; end: number }; prompt?: undefined; subject?: undefined };

/** Options of a trace session (the clean and corrupted runs). */
export interface TraceSetupOptions {
  /** Corrupted rows (noise draws) per restoration; default 10. */
  samples?: number;
  /** Noise standard deviation ν, or 'auto' = 3σ over the known-facts subjects (default 'auto'). */
  noise?: number | 'auto';
  /** Subjects for 'auto' noise instead of the known-facts subjects. */
  noiseSubjects?: readonly string[];
  /** Seed of the noise draw (default 0). The same draw serves every restoration of the prompt. */
  seed?: number;
  /** Answer token: an id, or a string whose first token is used (include GPT-2's leading space). Default: clean top-1. */
  answer?: number | string;
}

/** How restorations are scored. */
export interface ScoreOptions {
  method?: 'incremental' | 'naive';
  /**
   * Batch size: naive, most rows per full forward (default 120); incremental, most rows × recomputed positions per
   * call, divided by 10 (default 256, i.e. 2,560 row-positions). Restorations are never split across calls.
   */
  maxRows?: number;
  /** Called after each forward call with restorations scored so far and the total. */
  onProgress?: (done: number, total: number) => void;
  /**
   * Incremental method only: worker threads that score a share of the restorations (parallel.ts), the caller's
   * thread scoring the rest. Scores equal the one-thread result to float rounding.
   */
  pool?: TracePool;
}

/** Work counters of a session (matmul FLOPs counted analytically: 2 per multiply-add). */
export interface TraceStats {
  forwardCalls: number;
  rows: number;
  flops: number;
}

const HOOK_SUFFIX: Record<StateKind, string> = { hidden: '', mlp: '.mlp', attn: '.attn' };

/** The hook name of a state kind at a layer: blocks.L, blocks.L.mlp or blocks.L.attn. */
export function stateHook(kind: StateKind, layer: number): string {
  return `blocks.${layer}${HOOK_SUFFIX[kind]}`;
}

/** Layers [lo, hi] of a window of `window` layers around `layer`, clipped to the model: the official code's
 *  [l − ⌊w/2⌋, l + ⌈w/2⌉ − 1], i.e. [l−5, l+4] for w = 10 (the paper's text says [l−4, l+5]). */
export function windowLayers(layer: number, window: number, nLayer: number): number[] {
  if (!Number.isInteger(window) || window < 1) throw new Error(`window must be a positive integer, got ${window}`);
  const lo = Math.max(0, layer - Math.floor(window / 2));
  const hi = Math.min(nLayer - 1, layer + Math.ceil(window / 2) - 1);
  const out: number[] = [];
  for (let j = lo; j <= hi; j++) out.push(j);
  return out;
}

/** FLOPs of one forward over `rows` rows of `tq` query positions with `past` cached keys, `layers` blocks. */
export function forwardFlops(model: GPT2Model, rows: number, tq: number, past: number, layers: number, logitRows: number): number {
  const { nEmbd: d, nInner: m, vocabSize: V } = model.config;
  const s = past + tq;
  const perLayer = tq * (8 * d * d + 4 * d * m) + 4 * tq * s * d;
  return rows * layers * perLayer + logitRows * 2 * d * V;
}

/**
 * The noise added to the token embeddings of a trace, [samples, T, d] row-major, zero outside the subject: samples ×
 * subject tokens × d normals times `noise`, in that order, from one stream seeded with `seed`.
 */
export function noiseDraw(samples: number, T: number, d: number, range: { start: number; end: number }, noise: number, seed: number): Float32Array {
  const rng = createRng(seed);
  const nz = new Float32Array(samples * T * d);
  for (let n = 0; n < samples; n++) {
    for (let p = range.start; p < range.end; p++) {
      const base = (n * T + p) * d;
      for (let k = 0; k < d; k++) nz[base + k] = noise * rng.normal();
    }
  }
  return nz;
}

interface Prepared {
  t: number;
  join: number;
  states: RestoredState[];
}

/**
 * One prompt's trace session: clean and corrupted states cached on the device. Create with `TraceSession.create`,
 * score restorations with `score`, then `dispose()`.
 */
export class TraceSession {
  readonly model: GPT2Model;
  readonly ids: number[];
  readonly tokens: string[];
  readonly subjectRange: { start: number; end: number };
  readonly samples: number;
  readonly noise: number;
  readonly seed: number;
  readonly answer: { id: number; token: string };
  /** p(answer) in the clean run. */
  readonly pStar: number;
  /** Mean p(answer) over the corrupted rows. */
  readonly pLow: number;
  readonly stats: TraceStats = { forwardCalls: 0, rows: 0, flops: 0 };

  /** Noise added to the token embeddings, [N, T, d] (zero outside the subject). */
  private readonly noiseT: tf.Tensor3D;
  /** Clean states by hook name, [1, T, d]. */
  private readonly clean = new Map<string, tf.Tensor3D>();
  /** Corrupted states by hook name, [N, T, d]; `input.L` is the residual entering block L (`input.nLayer` = final). */
  private readonly corrupt = new Map<string, tf.Tensor3D>();
  private readonly kv: KVCache;
  private disposed = false;

  private constructor(
    model: GPT2Model,
    init: {
      ids: number[];
      tokens: string[];
      subjectRange: { start: number; end: number };
      samples: number;
      noise: number;
      seed: number;
      noiseT: tf.Tensor3D;
      kv: KVCache;
      answer: { id: number; token: string };
      pStar: number;
      pLow: number;
    },
  ) {
    this.model = model;
    this.ids = init.ids;
    this.tokens = init.tokens;
    this.subjectRange = init.subjectRange;
    this.samples = init.samples;
    this.noise = init.noise;
    this.seed = init.seed;
    this.noiseT = init.noiseT;
    this.kv = init.kv;
    this.answer = init.answer;
    this.pStar = init.pStar;
    this.pLow = init.pLow;
  }

  /** Runs the clean and the corrupted pass (2 forwards) and keeps every state restorations need. */
  static async create(model: GPT2Model, input: TraceInput, opts: TraceSetupOptions = {}): Promise<TraceSession> {
    const cfg = model.config;
    const L = cfg.nLayer;
    const d = cfg.nEmbd;
    let ids: number[];
    let range: { start: number; end: number };
    if (input.prompt !== undefined) {
      ids = model.encode(input.prompt);
      range = model.subjectRange(input.prompt, input.subject);
    } else {
      ids = [...input.ids];
      range = { start: input.subjectRange.start, end: input.subjectRange.end };
    }
    const T = ids.length;
    if (T === 0) throw new Error('causal trace: the prompt has no tokens');
    if (T > cfg.nPositions) throw new Error(`causal trace: ${T} tokens exceed the model's context of ${cfg.nPositions}`);
    if (!(Number.isInteger(range.start) && Number.isInteger(range.end) && 0 <= range.start && range.start < range.end && range.end <= T)) {
      throw new Error(`causal trace: subject range [${range.start}, ${range.end}) is not inside the ${T} prompt tokens`);
    }
    const tok = model.tokenizer;
    const tokens = ids.map((id) => (tok ? tok.decode([id]) : String(id)));
    const samples = opts.samples ?? 10;
    if (!Number.isInteger(samples) || samples < 1) throw new Error(`causal trace: samples must be a positive integer, got ${samples}`);
    const seed = opts.seed ?? 0;
    const noise = await resolveNoiseLevel(model, opts.noise ?? 'auto', opts.noiseSubjects);
    if (!(noise >= 0) || !Number.isFinite(noise)) throw new Error(`causal trace: noise must be a finite number >= 0, got ${noise}`);

    const noiseT = tf.tensor3d(noiseDraw(samples, T, d, range, noise, seed), [samples, T, d]);

    const names: string[] = [];
    for (let l = 0; l < L; l++) names.push(stateHook('hidden', l), stateHook('mlp', l), stateHook('attn', l));
    const grab = (into: Map<string, tf.Tensor3D>, name: string): HookFn => (x) => {
      into.get(name)?.dispose();
      into.set(name, tf.keep(tf.clone(x)) as tf.Tensor3D);
    };

    const cleanStates = new Map<string, tf.Tensor3D>();
    const corruptStates = new Map<string, tf.Tensor3D>();
    let kv: KVCache | null = null;
    const release = () => {
      for (const t of cleanStates.values()) t.dispose();
      for (const t of corruptStates.values()) t.dispose();
      if (kv) for (const t of [...kv.k, ...kv.v]) t.dispose();
      noiseT.dispose();
    };
    try {
      // Clean run (batch 1).
      const cleanHooks: Record<string, HookFn> = {};
      for (const n of names) cleanHooks[n] = grab(cleanStates, n);
      const idsClean = tf.tensor2d([ids], [1, T], 'int32');
      const outClean = forward(model.params, idsClean, { hooks: cleanHooks, logits: [T - 1] });
      idsClean.dispose();
      outClean.hidden.dispose();
      const cleanProbs = tf.tidy(() => tf.softmax(outClean.logits!));
      outClean.logits!.dispose();
      const cp = (await cleanProbs.data()) as Float32Array;
      cleanProbs.dispose();
      let answerId: number;
      if (opts.answer === undefined) {
        answerId = 0;
        for (let i = 1; i < cp.length; i++) if (cp[i] > cp[answerId]) answerId = i;
      } else if (typeof opts.answer === 'number') {
        answerId = opts.answer;
        if (!Number.isInteger(answerId) || answerId < 0 || answerId >= cfg.vocabSize) {
          throw new Error(`causal trace: answer id ${answerId} out of range [0, ${cfg.vocabSize})`);
        }
      } else {
        const a = model.encodeContinuation(opts.answer);
        if (a.length === 0) throw new Error(`causal trace: answer ${JSON.stringify(opts.answer)} has no tokens`);
        // The trace scores one next token; silently scoring the first of several would trace another answer.
        if (a.length > 1) {
          const parts = a.map((id) => JSON.stringify(tok ? tok.decode([id]) : String(id))).join(' + ');
          throw new Error(`causal trace: answer ${JSON.stringify(opts.answer)} is ${a.length} tokens (${parts}); give a single-token answer, e.g. ${parts.split(' + ')[0]}`);
        }
        answerId = a[0];
      }
      const pStar = cp[answerId];

      // Corrupted run (batch N): noise on the subject's token embeddings, every state and K/V kept.
      const corruptHooks: Record<string, HookFn | HookFn[]> = {};
      for (const n of names) corruptHooks[n] = grab(corruptStates, n);
      let tokEmb: tf.Tensor | null = null;
      let posEmb: tf.Tensor | null = null;
      corruptHooks.embed = (x) => {
        const y = tf.add(x, noiseT);
        tokEmb = tf.keep(y);
        return y;
      };
      corruptHooks.pos_embed = (x) => {
        posEmb = tf.keep(tf.clone(x));
      };
      const idsCorrupt = tf.tensor2d(Array.from({ length: samples }, () => ids), [samples, T], 'int32');
      const outCorrupt = forward(model.params, idsCorrupt, {
        hooks: corruptHooks,
        logits: Array.from({ length: samples }, () => T - 1),
        returnPresent: true,
      });
      idsCorrupt.dispose();
      outCorrupt.hidden.dispose();
      kv = outCorrupt.present;
      // Rotary families have no position embedding: their block-0 input is the (noised) token embedding.
      corruptStates.set('input.0', (posEmb ? tf.add(tokEmb!, posEmb) : tf.clone(tokEmb!)) as tf.Tensor3D);
      (tokEmb as tf.Tensor | null)?.dispose();
      (posEmb as tf.Tensor | null)?.dispose();
      for (let l = 1; l <= L; l++) corruptStates.set(`input.${l}`, corruptStates.get(stateHook('hidden', l - 1))!);
      const lowT = tf.tidy(() => tf.mean(tf.gather(tf.softmax(outCorrupt.logits!), [answerId], 1)));
      outCorrupt.logits!.dispose();
      const pLow = (await lowT.data())[0];
      lowT.dispose();
      if (!Number.isFinite(pLow)) {
        throw new Error(`causal trace: the corrupted runs give non-finite probabilities with noise ${noise} (it overflows float32 inside the model); use a smaller --noise`);
      }

      const s = new TraceSession(model, {
        ids,
        tokens,
        subjectRange: range,
        samples,
        noise,
        seed,
        noiseT,
        kv: kv!,
        answer: { id: answerId, token: tok ? tok.decode([answerId]) : String(answerId) },
        pStar,
        pLow,
      });
      for (const [k, v] of cleanStates) s.clean.set(k, v);
      for (const [k, v] of corruptStates) s.corrupt.set(k, v);
      s.stats.forwardCalls += 2;
      s.stats.rows += 1 + samples;
      s.stats.flops += forwardFlops(model, 1 + samples, T, 0, L, 1 + samples);
      return s;
    } catch (e) {
      release();
      throw e;
    }
  }

  /** Number of prompt tokens. */
  get length(): number {
    return this.ids.length;
  }

  /** Scores restorations: mean p(answer) over the noise rows for each, in order. */
  async score(restorations: readonly Restoration[], opts: ScoreOptions = {}): Promise<number[]> {
    if (this.disposed) throw new Error('TraceSession was disposed');
    const L = this.model.config.nLayer;
    const T = this.length;
    for (const r of restorations) {
      for (const s of r) {
        if (!Number.isInteger(s.layer) || s.layer < 0 || s.layer >= L) throw new Error(`restored state: layer ${s.layer} out of range [0, ${L})`);
        if (!Number.isInteger(s.position) || s.position < 0 || s.position >= T) {
          throw new Error(`restored state: position ${s.position} out of range [0, ${T})`);
        }
        if (s.kind !== 'hidden' && s.kind !== 'mlp' && s.kind !== 'attn') throw new Error(`restored state: unknown kind "${String(s.kind)}"`);
      }
    }
    const method = opts.method ?? 'incremental';
    // forward() keeps every layer's intermediates until it returns, so a full forward of many rows needs far more
    // memory than the one-layer calls of the incremental method (250 rows of GPT-2 small overflow WASM's 4 GB).
    const maxRows = opts.maxRows ?? (method === 'naive' ? 120 : 256);
    const perCall = Math.max(1, Math.floor(maxRows / this.samples));
    if (method === 'naive') return this.scoreNaive(restorations, perCall, opts.onProgress);
    if (opts.pool && opts.pool.threads > 1) return this.scoreParallel(restorations, maxRows, opts.pool, opts.onProgress);
    return this.scoreIncremental(restorations, maxRows, opts.onProgress);
  }

  /**
   * Splits the restorations between this thread and the pool's workers: groups of the same first token and kind
   * (rows are shared only within such a group) go, largest first, to the thread with the least estimated work
   * (recomputed token-layers per noise row, plus the head).
   */
  private async scoreParallel(
    restorations: readonly Restoration[],
    maxRows: number,
    pool: TracePool,
    onProgress?: (done: number, total: number) => void,
  ): Promise<number[]> {
    if (!pool.holds(this.model)) throw new Error("TraceSession.score: the trace pool holds other weights than this session's model; call pool.load(model) first");
    const L = this.model.config.nLayer;
    const T = this.length;
    const groups = new Map<string, { indices: number[]; cost: number }>();
    restorations.forEach((r, i) => {
      const p = this.prepare(r);
      const key = p ? `${p.t}:${p.states[0].kind}` : 'none';
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { indices: [], cost: 0 }));
      g.indices.push(i);
      // The head costs about as much as 4 token-layers of GPT-2 small (2·d·V vs 24·d² FLOPs).
      if (p) g.cost += (T - p.t) * (L - p.join) + 4;
    });
    const loads = new Array<number>(pool.threads).fill(0);
    const shares: number[][] = Array.from({ length: pool.threads }, () => []);
    for (const g of [...groups.values()].sort((a, b) => b.cost - a.cost)) {
      const k = loads.indexOf(Math.min(...loads));
      loads[k] += g.cost;
      shares[k].push(...g.indices);
    }
    const setup = {
      ids: this.ids,
      subjectRange: this.subjectRange,
      samples: this.samples,
      noise: this.noise,
      seed: this.seed,
      answer: this.answer.id,
    };
    const out = new Array<number>(restorations.length);
    let done = 0;
    const remote = shares.slice(1).map((idx, w) =>
      idx.length === 0
        ? Promise.resolve()
        : pool.score(w, setup, idx.map((i) => restorations[i]), maxRows).then((r) => {
            idx.forEach((i, j) => (out[i] = r.scores[j]));
            this.stats.forwardCalls += r.stats.forwardCalls;
            this.stats.rows += r.stats.rows;
            this.stats.flops += r.stats.flops;
            done += idx.length;
            onProgress?.(done, restorations.length);
          }),
    );
    // Settled handlers first: a worker's failure while this thread computes must not go unhandled.
    const all = Promise.allSettled(remote);
    try {
      const mine = shares[0];
      let mineDone = 0;
      const local = await this.scoreIncremental(
        mine.map((i) => restorations[i]),
        maxRows,
        (d) => {
          done += d - mineDone;
          mineDone = d;
          onProgress?.(done, restorations.length);
        },
      );
      mine.forEach((i, j) => (out[i] = local[j]));
    } finally {
      const settled = await all;
      const bad = settled.find((s) => s.status === 'rejected');
      if (bad) throw (bad as PromiseRejectedResult).reason;
    }
    return out;
  }

  /** Frees every cached tensor. Safe to call twice. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.noiseT.dispose();
    for (const t of this.clean.values()) t.dispose();
    for (const [k, t] of this.corrupt) if (!k.startsWith('input.') || k === 'input.0') t.dispose();
    for (const t of [...this.kv.k, ...this.kv.v]) t.dispose();
    this.clean.clear();
    this.corrupt.clear();
  }

  /** Mean over each restoration's N rows of p(answer) from last-position logits [R·N, V]. */
  private async meanProbs(logits: tf.Tensor, R: number): Promise<number[]> {
    const N = this.samples;
    const m = tf.tidy(() => tf.mean(tf.reshape(tf.gather(tf.softmax(logits), [this.answer.id], 1), [R, N]), 1));
    const v = await m.data();
    m.dispose();
    return Array.from(v);
  }

  private async scoreNaive(
    restorations: readonly Restoration[],
    perCall: number,
    onProgress?: (done: number, total: number) => void,
  ): Promise<number[]> {
    const N = this.samples;
    const T = this.length;
    const L = this.model.config.nLayer;
    const out: number[] = [];
    for (let i0 = 0; i0 < restorations.length; i0 += perCall) {
      const chunk = restorations.slice(i0, i0 + perCall);
      const R = chunk.length;
      const noise = tf.tile(this.noiseT, [R, 1, 1]);
      const owned: tf.Tensor[] = [noise];
      const patches: Patch[] = [];
      // Clean sources before corrupted ones, so that a state listed with both ends corrupted in both methods.
      for (const source of ['clean', 'corrupt'] as const) {
        chunk.forEach((r, ri) => {
          const rows = Array.from({ length: N }, (_, n) => ri * N + n);
          for (const s of r) {
            if ((s.source ?? 'clean') !== source) continue;
            const hook = stateHook(s.kind, s.layer);
            let value: tf.Tensor;
            if (source === 'clean') value = this.clean.get(hook)!;
            else {
              value = tf.tile(this.corrupt.get(hook)!, [R, 1, 1]);
              owned.push(value);
            }
            patches.push({ hook, positions: [s.position], batch: rows, value });
          }
        });
      }
      const res = this.model.run(
        Array.from({ length: R * N }, () => this.ids),
        { hooks: { embed: (x) => tf.add(x, noise) }, patch: patches, logits: 'last' },
      );
      try {
        out.push(...(await this.meanProbs(res.logits!.tensor, R)));
      } finally {
        res.dispose();
        for (const t of owned) t.dispose();
      }
      this.stats.forwardCalls += 1;
      this.stats.rows += R * N;
      this.stats.flops += forwardFlops(this.model, R * N, T, 0, L, R * N);
      onProgress?.(out.length, restorations.length);
      await yieldToEventLoop();
    }
    return out;
  }

  private prepare(r: Restoration): Prepared | null {
    const L = this.model.config.nLayer;
    const T = this.length;
    // Positions before the subject never see the noise (causal attention): their clean and corrupted states are
    // the same, so restoring (or corrupting) them is a no-op.
    const s0 = this.subjectRange.start;
    const live = r.filter((s) => s.position >= s0);
    const clean = live.filter((s) => (s.source ?? 'clean') === 'clean');
    if (clean.length === 0) return null;
    const t = Math.min(...clean.map((s) => s.position));
    const join = Math.min(...clean.map((s) => (s.kind === 'hidden' ? s.layer + 1 : s.layer)));
    // Before the first clean change everything equals the corrupted run, so corrupted sources there are no-ops.
    const states = live.filter(
      (s) =>
        (s.source ?? 'clean') === 'clean' ||
        (s.position >= t && (s.kind === 'hidden' ? s.layer + 1 >= join : s.layer >= join)),
    );
    // A change to the last layer's output at an earlier token cannot reach the last token's logits.
    if (join === L && !states.some((s) => s.position === T - 1)) return null;
    // Clean before corrupt (same order as the naive method's patches).
    states.sort((a, b) => Number((a.source ?? 'clean') === 'corrupt') - Number((b.source ?? 'clean') === 'corrupt'));
    return { t, join, states };
  }

  private async scoreIncremental(
    restorations: readonly Restoration[],
    maxRows: number,
    onProgress?: (done: number, total: number) => void,
  ): Promise<number[]> {
    const out = new Array<number>(restorations.length).fill(this.pLow);
    const byT = new Map<number, { index: number; p: Prepared; family: number }[]>();
    let done = 0;
    const rank: Record<StateKind, number> = { hidden: 0, mlp: 1, attn: 2 };
    restorations.forEach((r, index) => {
      const p = this.prepare(r);
      if (!p) {
        done++;
        return;
      }
      let g = byT.get(p.t);
      if (!g) byT.set(p.t, (g = []));
      g.push({ index, p, family: rank[p.states[0].kind] });
    });
    for (const t of [...byT.keys()].sort((a, b) => a - b)) {
      // Restorations of one kind stay together in a call, so that those sharing a prefix of edits can share rows.
      const group = byT.get(t)!.sort((a, b) => a.family - b.family || a.p.join - b.p.join);
      // Calls at late tokens recompute few positions, so they take more rows: the budget is maxRows × 10 positions.
      const perCall = Math.max(1, Math.floor((maxRows * 10) / (this.samples * (this.length - t))));
      for (let i0 = 0; i0 < group.length; i0 += perCall) {
        const chunk = group.slice(i0, i0 + perCall);
        const scores = await this.runChunk(t, chunk.map((c) => c.p));
        chunk.forEach((c, i) => (out[c.index] = scores[i]));
        done += chunk.length;
        onProgress?.(done, restorations.length);
        await yieldToEventLoop();
      }
    }
    if (byT.size === 0) onProgress?.(done, restorations.length);
    return out;
  }

  /**
   * Entry plan of a call: restoration i enters at layer entry[i], from the corrupted cache (parent −1) or as a
   * copy of restoration parent[i]'s rows, when both have made exactly the same edits below that layer (e.g. MLP
   * windows [0,4] and [0,5] agree up to layer 5). Each restoration takes the latest such fork.
   */
  private planEntries(chunk: readonly Prepared[]): { entry: number[]; parent: number[] } {
    const L = this.model.config.nLayer;
    const key = (s: RestoredState) => `${s.kind}:${s.layer}:${s.position}:${s.source ?? 'clean'}`;
    const below = (p: Prepared, j: number) =>
      p.states
        .filter((s) => s.layer < j)
        .map(key)
        .sort()
        .join('|');
    const entry = chunk.map((p) => p.join);
    const parent = chunk.map(() => -1);
    for (let i = 0; i < chunk.length; i++) {
      for (let j = L; j > chunk[i].join; j--) {
        const sig = below(chunk[i], j);
        const p = chunk.findIndex((q, k) => k !== i && parent[k] !== i && entry[k] < j && k < i && below(q, j) === sig);
        if (p >= 0) {
          entry[i] = j;
          parent[i] = p;
          break;
        }
      }
    }
    return { entry, parent };
  }

  /** Restorations sharing first position t, each recomputed from its entry layer; returns their scores. */
  private async runChunk(t: number, chunk0: readonly Prepared[]): Promise<number[]> {
    const cfg = this.model.config;
    const L = cfg.nLayer;
    const d = cfg.nEmbd;
    const N = this.samples;
    const T = this.length;
    const Ts = T - t;
    const plan = this.planEntries(chunk0);
    // Rows are kept in order of entry; a parent always enters before its children.
    const order = chunk0.map((_, i) => i).sort((a, b) => plan.entry[a] - plan.entry[b] || a - b);
    const slotOf = new Array<number>(chunk0.length);
    order.forEach((ci, slot) => (slotOf[ci] = slot));
    const chunk = order.map((ci) => chunk0[ci]);
    const entry = order.map((ci) => plan.entry[ci]);
    const parentSlot = order.map((ci) => (plan.parent[ci] >= 0 ? slotOf[plan.parent[ci]] : -1));
    let x: tf.Tensor3D | null = null;
    let active = 0;
    try {
      for (let j = entry[0]; j <= L; j++) {
        // Restorations entering at layer j: a parent's rows, or the corrupted residual with entry overrides.
        const entering: tf.Tensor3D[] = [];
        while (active < chunk.length && entry[active] === j) {
          const r = chunk[active];
          const ps = parentSlot[active];
          const cur: tf.Tensor3D | null = x;
          entering.push(
            tf.tidy(() => {
              if (ps >= 0) return tf.slice(cur!, [ps * N, 0, 0], [N, Ts, d]) as tf.Tensor3D;
              const base = tf.slice(this.corrupt.get(`input.${j}`)!, [0, t, 0], [N, Ts, d]) as tf.Tensor3D;
              const over = r.states.filter((s) => s.kind === 'hidden' && s.layer === j - 1);
              return over.length ? this.replaceRows(base, t, over.map((s) => ({ row0: 0, s }))) : base;
            }),
          );
          active++;
        }
        if (entering.length) {
          const prev: tf.Tensor3D | null = x;
          x = tf.concat(prev ? [prev, ...entering] : entering, 0) as tf.Tensor3D;
          prev?.dispose();
          for (const e of entering) e.dispose();
        }
        if (j === L || !x) continue;
        const B = active * N;
        const hooks: Record<string, HookFn> = {};
        for (const kind of ['attn', 'mlp', 'hidden'] as const) {
          const edits: { row0: number; s: RestoredState }[] = [];
          for (let ri = 0; ri < active; ri++) {
            for (const s of chunk[ri].states) if (s.kind === kind && s.layer === j) edits.push({ row0: ri * N, s });
          }
          if (edits.length) hooks[stateHook(kind, j)] = (h) => this.replaceRows(h as tf.Tensor3D, t, edits);
        }
        let past: KVCache | undefined;
        const owned: tf.Tensor[] = [];
        if (t > 0) {
          const k: tf.Tensor4D[] = [];
          const v: tf.Tensor4D[] = [];
          // Copies stacked with concat (block copies) rather than tile (per-element indexing in WASM, ~7% of a trace).
          const rep = (x: tf.Tensor4D) =>
            tf.tidy(() => {
              const one = tf.slice(x, [0, 0, 0, 0], [N, -1, t, -1]);
              return active === 1 ? one : tf.concat(new Array<tf.Tensor>(active).fill(one), 0);
            }) as tf.Tensor4D;
          k[j] = rep(this.kv.k[j]);
          v[j] = rep(this.kv.v[j]);
          owned.push(k[j], v[j]);
          past = { k, v };
        }
        let o;
        if (j === 0) {
          // forward() embeds ids when it starts at block 0, so the residual goes in through the embedding hooks:
          // token embedding := residual, position embedding := 0 (x + 0 is exact).
          const xin = x;
          const dummy = tf.zeros([B, Ts], 'int32') as tf.Tensor2D;
          owned.push(dummy);
          hooks.embed = () => xin;
          hooks.pos_embed = (p) => tf.zerosLike(p);
          o = forward(this.model.params, dummy, { endLayer: 1, past, hooks, logits: 'none' });
        } else {
          o = forward(this.model.params, null, { startLayer: j, endLayer: j + 1, residual: x, past, hooks, logits: 'none' });
        }
        for (const o2 of owned) o2.dispose();
        x.dispose();
        x = o.hidden;
        this.stats.flops += forwardFlops(this.model, B, Ts, t, 1, 0);
      }
      const R = chunk.length;
      const logits = tf.tidy(() => logitLens(this.model.params, tf.reshape(tf.slice(x!, [0, Ts - 1, 0], [R * N, 1, d]), [R * N, d])));
      this.stats.flops += forwardFlops(this.model, 0, 0, 0, 0, R * N);
      this.stats.forwardCalls += 1;
      this.stats.rows += R * N;
      try {
        const bySlot = await this.meanProbs(logits, R);
        return chunk0.map((_, ci) => bySlot[slotOf[ci]]);
      } finally {
        logits.dispose();
      }
    } finally {
      (x as tf.Tensor3D | null)?.dispose();
    }
  }

  /**
   * x [B, Ts, d] (positions t..T-1) with the listed states' rows replaced: clean values go to all N rows of their
   * restoration, corrupted values row by row. Later edits of the same row win. One gather, no masks.
   */
  private replaceRows(x: tf.Tensor3D, t: number, edits: readonly { row0: number; s: RestoredState }[]): tf.Tensor3D {
    return tf.tidy(() => {
      const [B, Ts, d] = x.shape;
      const N = this.samples;
      const idx = new Int32Array(B * Ts);
      for (let i = 0; i < idx.length; i++) idx[i] = i;
      const pool: tf.Tensor[] = [tf.reshape(x, [B * Ts, d])];
      let next = B * Ts;
      for (const { row0, s } of edits) {
        const q = s.position - t;
        if (q < 0 || q >= Ts) continue;
        const hook = stateHook(s.kind, s.layer);
        if ((s.source ?? 'clean') === 'clean') {
          pool.push(tf.reshape(tf.slice(this.clean.get(hook)!, [0, s.position, 0], [1, 1, d]), [1, d]));
          for (let n = 0; n < N; n++) idx[(row0 + n) * Ts + q] = next;
          next += 1;
        } else {
          pool.push(tf.reshape(tf.slice(this.corrupt.get(hook)!, [0, s.position, 0], [N, 1, d]), [N, d]));
          for (let n = 0; n < N; n++) idx[(row0 + n) * Ts + q] = next + n;
          next += N;
        }
      }
      if (pool.length === 1) return x;
      return tf.reshape(tf.gather(tf.concat(pool, 0), tf.tensor1d(idx, 'int32')), [B, Ts, d]) as tf.Tensor3D;
    });
  }
}

/** Lets timers, interrupts and progress output run between device calls. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
