/**
 * The training loop: AdamW on next-token cross-entropy over a packed token stream, with periodic evaluation,
 * atomic resumable checkpoints, a progress line on stderr and a JSON log.
 *
 * Resume contract: a run restarted with the same outDir continues from `outDir/checkpoint.safetensors`
 * (parameters, Adam moments, step, data cursor, log) and ends with the same parameters, bit for bit, as a run
 * that was never interrupted. Nothing in a step is random except the data order, and that is a function of
 * (seed, epoch, index), so the sampler cursor is the whole random state.
 */
import * as tf from '@tensorflow/tfjs-core';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { sha256 } from '../data/hash.js';
import { mixSeed } from '../rng.js';
import { validateDropoutRate } from '../model/dropout.js';
import type { GPT2Config } from '../io/config.js';
import { readSafetensors, writeSafetensors, type SafetensorsWriteTensor } from '../io/safetensors.js';
import { finalNorm, forward, unembed } from '../model/forward.js';
import { embedParam } from '../model/family.js';
import { GPT2Params } from '../model/params.js';
import { countParams, initWeights } from './init.js';
import { AdamW, lrAt, type AdamWState } from './optimizer.js';
import { WindowSampler, writeFileAtomic, type Batch, type SamplerCursor, type StreamKnockout, type SubjectKnockout } from './data.js';
import { startParallelGrads } from './dataParallel.js';
import { logLine } from '../log.js';

/** Metrics returned by an evaluator (e.g. { validLoss: 3.2, factAccTrained: 0.8 }). */
export type Metrics = Record<string, number>;

/** Called every evalEvery steps with the live parameters (read them, do not dispose or change them). */
export type Evaluator = (params: GPT2Params, step: number) => Metrics | Promise<Metrics>;

/** Options of a training run. */
export interface TrainOptions {
  config: GPT2Config;
  /** Training token stream (documents already joined by EOS). */
  tokens: Int32Array;
  /**
   * Loss weight of each stream token as a target (same length as tokens; e.g. factObjectWeights). Default 1
   * everywhere. The logged loss is then the weighted loss.
   */
  tokenWeights?: Float32Array;
  /**
   * Subject knockout during training steps: per stream token, the key range it may not attend to in blocks
   * 0 … layers−1 (lib/train/subjectKnockout.ts). Evaluations run the plain model.
   */
  knockout?: StreamKnockout;
  /**
   * Curriculum warm-up: the first `steps` optimizer steps draw their windows from this stream instead of `tokens`
   * (e.g. the facts of a subset of the subjects plus general text: a model that must memorise many entities learns
   * them sooner after a warm-up on fewer; Zucchet et al. 2025, arXiv 2503.21676). Its weights and knockout arrays
   * are per token of its own stream, as for the main one. Its sampler cursor is checkpointed with the main one.
   */
  curriculum?: { tokens: Int32Array; tokenWeights?: Float32Array; knockout?: StreamKnockout; steps: number };
  /** Total optimizer steps (the upper bound when timeBudgetMinutes is set). */
  steps: number;
  /**
   * Choose the number of steps so that this run (evaluations and checkpoints included) ends within this many
   * minutes of its start: after `calibrationSteps`, steps = min(steps, what the measured pace allows, minus a
   * margin for the final evaluation and save). The plan is then revised every `budgetReplanSteps` steps from the
   * pace of the steps since the last revision, so a machine that gets busier (or freer) mid-run still ends the
   * cosine schedule on time instead of being cut off by maxMinutes before it anneals. The chosen number is stored in
   * checkpoints, so a resumed run keeps it (and revises it no further).
   */
  timeBudgetMinutes?: number;
  /** Steps timed before the budget first fixes the total; default min(20, warmup) but at least 5. */
  calibrationSteps?: number;
  /** Steps between revisions of a time-budget plan (default 100; 0: never revise). */
  budgetReplanSteps?: number;
  /** Wall clock in milliseconds (default Date.now); tests pass a fake one to simulate a machine's pace. */
  clock?: () => number;
  /** Sequences per step. */
  batch: number;
  /** Tokens per sequence (≤ config.nPositions). */
  seqLen: number;
  /** Peak learning rate. */
  lr: number;
  /** Linear warm-up steps. Default min(100, steps/10). */
  warmup?: number;
  /** Learning-rate floor reached at the last step (cosine). Default lr/10. */
  minLr?: number;
  /** Decoupled weight decay for rank ≥ 2 parameters. Default 0.1. */
  weightDecay?: number;
  /** Global gradient-norm clip; 0 disables. Default 1. */
  clip?: number;
  beta1?: number;
  beta2?: number;
  /**
   * Dropout rate at GPT-2's four places during training steps (not evaluations); default 0. Masks are seeded by
   * (seed, step, row), so a resumed or multi-threaded run draws the same ones.
   */
  dropout?: number;
  /** Seed of the initialisation (seed) and of the data order (seed + 1). */
  seed: number;
  /** Evaluate every N steps (and at the start and end); 0 disables periodic evaluation. */
  evalEvery?: number;
  /** Checkpoint every N steps (and always at the end); 0: only at the end. */
  ckptEvery?: number;
  /** Directory for checkpoint.safetensors and training-log.json. */
  outDir: string;
  evaluate?: Evaluator;
  /** Continue from outDir's checkpoint when there is one (default true). */
  resume?: boolean;
  /** Stop (and checkpoint) after this many minutes of this process's run time. */
  maxMinutes?: number;
  /** Polled between steps; returning true stops the run early (and checkpoints), e.g. on SIGINT. */
  shouldStop?: () => boolean;
  /** Seconds between progress lines (default 10; 0 prints every step). */
  progressSeconds?: number;
  /** Where progress lines go (default stderr). */
  log?: (line: string) => void;
  /** Free-form fields copied into the JSON log (e.g. corpus and tokenizer hashes). */
  meta?: Record<string, unknown>;
  /**
   * Threads that share each batch (data-parallel, dataParallel.ts; default 1). WASM is single-threaded: 2 uses both
   * cores of a 2-core machine. `batch` must be a multiple. Equal to one thread to float rounding, not bit for bit.
   */
  threads?: number;
}

/** One logged training step. */
export interface StepRecord {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
  /** Seconds the step took (forward, backward, update). */
  seconds: number;
}

/** The JSON log of a run (written to outDir/training-log.json and kept inside the checkpoint). */
export interface TrainLog {
  config: GPT2Config;
  options: Record<string, unknown>;
  meta: Record<string, unknown>;
  params: { total: number; nonEmbedding: number };
  tokensInCorpus: number;
  tokensPerStep: number;
  steps: StepRecord[];
  evals: Array<{ step: number; seconds: number } & Metrics>;
  /** One entry per process that worked on the run. */
  sessions: Array<{ startStep: number; endStep: number; startedAt: string; seconds: number; stopReason: string }>;
  timing: {
    trainSeconds: number;
    evalSeconds: number;
    checkpointSeconds: number;
    tokensPerSecond: number;
    /** 6 · params · tokens/s / 1e9: the usual dense-transformer training FLOP estimate (attention excluded). */
    effectiveGflops: number;
  };
  completedSteps: number;
  finished: boolean;
  stoppedEarly: boolean;
  stopReason: string;
}

/** Result of train(): the trained parameters (caller disposes) and the log. */
export interface TrainResult {
  params: GPT2Params;
  log: TrainLog;
  /** Step the run resumed from (0 for a fresh run). */
  resumedFrom: number;
}

/** File name of the resumable training state inside outDir. */
export const TRAIN_CHECKPOINT = 'checkpoint.safetensors';
/** File name of the JSON log inside outDir. */
export const TRAIN_LOG = 'training-log.json';
/** Tag that separates the dropout seed stream from the other streams derived from the run seed. */
const DROPOUT_STREAM = 0xd40;

/**
 * Mean next-token cross-entropy (nats) of a batch: logSoftmax(logits) · onehot(targets), averaged over B·T; with
 * batch.weights, Σ w·CE / (B·T) (divided by the token count, not Σ w, so equal-sized shares of a batch average to
 * the whole batch's loss). Returns a scalar the caller disposes. Set params.training so the tied unembedding is
 * differentiable.
 */
export function batchLoss(params: GPT2Params, batch: Batch): tf.Scalar {
  return tf.tidy(() => {
    const ids = tf.tensor2d(batch.inputs, [batch.batch, batch.seqLen], 'int32');
    const knockout = batch.knockout ? knockoutBias(batch) : undefined;
    const leak: tf.Scalar[] = [];
    const penalty = batch.knockout?.leakPenalty ?? 0;
    const read = readoutRows(batch);
    const extract = extractionRows(batch, params.config.nLayer);
    // Computed inside the hooks (the forward disposes intermediate states) and kept until they join the loss.
    const terms: tf.Scalar[] = [];
    const hooks: Record<string, (x: tf.Tensor) => tf.Tensor> = {};
    if (read) hooks[`blocks.${read.layer}`] = (x) => (terms.push(tf.keep(readoutLoss(params, x, read, batch.batch * batch.seqLen))), x);
    if (extract) {
      for (const l of extract.layers) hooks[`blocks.${l}.attn.pattern`] = (p) => (terms.push(tf.keep(extractionLoss(p, extract, batch.batch * batch.seqLen))), p);
    }
    const inner = innerCut(batch);
    if (inner) {
      for (let l = 0; l < inner.layers; l++) {
        const before = hooks[`blocks.${l}.attn.pattern`];
        hooks[`blocks.${l}.attn.pattern`] = (p0) => {
          const p = before ? before(p0) : p0;
          // Renormalising the softmax over the kept keys equals a −∞ bias on the cut ones before it.
          if (penalty > 0) leak.push(tf.keep(tf.sum(tf.mul(p, inner.cut)) as tf.Scalar));
          const kept = tf.mul(p, inner.keep);
          return tf.div(kept, tf.sum(kept, -1, true));
        };
      }
    }
    const logits = forward(params, ids, {
      logits: 'all',
      ...(batch.dropout ? { dropout: batch.dropout } : {}),
      ...(knockout ? { knockout: penalty > 0 ? { ...knockout, leak } : knockout } : {}),
      ...(read || extract || inner ? { hooks } : {}),
    }).logits as tf.Tensor3D;
    const V = logits.shape[2];
    const flat = tf.reshape(logits, [-1, V]);
    const logp = tf.logSoftmax(flat as tf.Tensor2D);
    let onehot: tf.Tensor = tf.oneHot(tf.tensor1d(batch.targets, 'int32'), V);
    if (batch.weights) {
      if (batch.weights.length !== batch.targets.length) {
        throw new Error(`batchLoss: ${batch.weights.length} weights for ${batch.targets.length} targets`);
      }
      onehot = tf.mul(onehot, tf.reshape(tf.tensor1d(batch.weights, 'float32'), [-1, 1]));
    }
    let ce = tf.div(tf.neg(tf.sum(tf.mul(logp, onehot))), batch.batch * batch.seqLen) as tf.Scalar;
    if (terms.length > 0) {
      ce = tf.add(ce, tf.addN(terms)) as tf.Scalar;
      tf.dispose(terms);
    }
    if (knockout && penalty > 0 && (batch.knockout?.noiseLeak ?? 0) > 0) noisyLeak(params, ids, batch, knockout.bias, leak);
    if (leak.length === 0) return ce;
    // Attention mass the cut edges would take in the plain model, per token of the batch, summed over the
    // knockout's layers and heads: penalised so the saved (unrestricted) model leaves those edges unused as well.
    const leakSum = tf.addN(leak);
    // The parts were kept past the forward's scopes, so no tidy frees them (addN's gradient does not need them).
    tf.dispose(leak);
    return tf.add(ce, tf.mul(tf.div(leakSum, batch.batch * batch.seqLen), penalty)) as tf.Scalar;
  });
}

/**
 * The subject-inner cut of a batch (Batch.knockout.innerFrom): keep [B, 1, T, T] (0 on cut edges, 1 elsewhere), cut
 * = 1 − keep, and the number of lower blocks; or null.
 */
function innerCut(batch: Batch): { keep: tf.Tensor4D; cut: tf.Tensor4D; layers: number } | null {
  const k = batch.knockout;
  if (!k?.innerFrom || !k.innerLayers) return null;
  const B = batch.batch;
  const T = batch.seqLen;
  if (k.innerFrom.length !== B * T) throw new Error(`batchLoss: ${k.innerFrom.length} subject-inner ranges for ${B * T} positions`);
  const cut = new Float32Array(B * T * T);
  for (let i = 0; i < B * T; i++) {
    const f = k.innerFrom[i] as number;
    // A query keeps itself, so every row of the pattern keeps some mass.
    for (let s = Math.max(0, f); f >= 0 && s < i % T; s++) cut[i * T + s] = 1;
  }
  const cutT = tf.tensor4d(cut, [B, 1, T, T]);
  return { keep: tf.sub(1, cutT) as tf.Tensor4D, cut: cutT, layers: k.innerLayers };
}

/** The batch's subject-readout rows: flat positions, target ids, weight and the block whose output is read; or null. */
function readoutRows(batch: Batch): { layer: number; at: number[]; ids: number[]; weight: number } | null {
  const k = batch.knockout;
  if (!k?.readTarget || !k.readWeight) return null;
  if (k.readTarget.length !== batch.batch * batch.seqLen) {
    throw new Error(`batchLoss: ${k.readTarget.length} readout targets for ${batch.batch * batch.seqLen} positions`);
  }
  const at: number[] = [];
  const ids: number[] = [];
  k.readTarget.forEach((id, i) => {
    if (id >= 0) {
      at.push(i);
      ids.push(id);
    }
  });
  return { layer: k.layers - 1, at, ids, weight: k.readWeight };
}

/**
 * The subject readout term: weight × Σ CE(unembed(finalNorm(resid[at])), ids) / tokens, where resid [B, T, d] is
 * the residual after the last restricted block (so the lower blocks must store the object at the subject).
 */
function readoutLoss(params: GPT2Params, resid: tf.Tensor, read: { at: number[]; ids: number[]; weight: number }, tokens: number): tf.Scalar {
  if (read.at.length === 0) return tf.scalar(0);
  return tf.tidy(() => {
  const d = resid.shape[2] as number;
    // A one-hot selection matmul, not tf.gather: gather's gradient (a scatter) cost 15% of a training step on WASM.
    const rows = resid.shape[0] * (resid.shape[1] as number);
    const sel = new Float32Array(read.at.length * rows);
    read.at.forEach((p, i) => (sel[i * rows + p] = 1));
    const h = tf.reshape(tf.matMul(tf.tensor2d(sel, [read.at.length, rows]), tf.reshape(resid, [-1, d]) as tf.Tensor2D), [1, read.at.length, d]);
  const logits = tf.reshape(unembed(params, finalNorm(params, h)), [read.at.length, -1]) as tf.Tensor2D;
  const logp = tf.logSoftmax(logits);
  const picked = tf.sum(tf.mul(logp, tf.oneHot(tf.tensor1d(read.ids, 'int32'), logits.shape[1] as number)));
  return tf.mul(tf.div(tf.neg(picked), tokens), read.weight) as tf.Scalar;
  });
}

/** The batch's extraction supervision: a [B, 1, T, S] one-hot of each supervised (query, key), the layers, weight; or null. */
function extractionRows(batch: Batch, nLayer: number): { layers: number[]; pick: Float32Array; queries: Float32Array; weight: number } | null {
  const k = batch.knockout;
  if (!k?.extractFrom || !k.extractWeight) return null;
  const B = batch.batch;
  const T = batch.seqLen;
  if (k.extractFrom.length !== B * T) throw new Error(`batchLoss: ${k.extractFrom.length} extraction sources for ${B * T} positions`);
  const pick = new Float32Array(B * T * T);
  const queries = new Float32Array(B * T);
  for (let i = 0; i < B * T; i++) {
    const s = k.extractFrom[i] as number;
    // Only a key before the query (a causal edge) can be attended to.
    if (s < 0 || s >= i % T) continue;
    pick[i * T + s] = 1;
    queries[i] = 1;
  }
  return { layers: Array.from({ length: nLayer - k.layers }, (_, j) => k.layers + j), pick, queries, weight: k.extractWeight };
}

/**
 * The extraction term of one layer: weight × Σ_queries −log(mean over heads of the attention on the supervised key
 * + 1e-6) / tokens, from the layer's attention pattern [B, H, T, S].
 */
function extractionLoss(pattern: tf.Tensor, ex: { pick: Float32Array; queries: Float32Array; weight: number }, tokens: number): tf.Scalar {
  return tf.tidy(() => {
    const [B, , T, S] = pattern.shape as number[];
    const onKey = tf.sum(tf.mul(pattern, tf.tensor4d(ex.pick, [B as number, 1, T as number, S as number])), -1); // [B, H, T]
    const mean = tf.reshape(tf.mean(onKey, 1), [-1]);
    const nll = tf.neg(tf.log(tf.add(mean, 1e-6)));
    return tf.mul(tf.div(tf.sum(tf.mul(nll, tf.tensor1d(ex.queries))), tokens), ex.weight) as tf.Scalar;
  });
}

/** The forward's knockout option for a batch's cut ranges: bias [B, 1, T, T] (−1e9 on cut edges), lower blocks. */
export function knockoutBias(batch: Batch): { bias: tf.Tensor4D; layers: number[] } | undefined {
  const k = batch.knockout;
  if (!k) return undefined;
  const B = batch.batch;
  const T = batch.seqLen;
  if (k.cutFrom.length !== B * T || k.cutTo.length !== B * T) {
    throw new Error(`knockoutBias: ${k.cutFrom.length} cut ranges for ${B * T} positions`);
  }
  const data = new Float32Array(B * T * T);
  for (let i = 0; i < B * T; i++) {
    const t = i % T;
    // A query never loses itself (or anything at or after it): every row keeps a finite score.
    const to = Math.min(k.cutTo[i] as number, t);
    for (let s = Math.max(0, k.cutFrom[i] as number); s < to; s++) data[i * T + s] = -1e9;
  }
  return { bias: tf.tensor4d(data, [B, 1, T, T]), layers: Array.from({ length: k.layers }, (_, l) => l) };
}

/**
 * The leak of block 0 when the subject's token embeddings carry Gaussian noise of sd noiseLeak × sd(wte) (the
 * causal trace's corruption): appended to `leak`. Block 0 reads the raw embeddings, so a noised subject makes keys
 * the clean penalty never saw; without this the trace's noise reaches later positions through block 0.
 */
function noisyLeak(params: GPT2Params, ids: tf.Tensor2D, batch: Batch, bias: tf.Tensor4D, leak: tf.Scalar[]): void {
  const k = batch.knockout as SubjectKnockout;
  const B = batch.batch;
  const T = batch.seqLen;
  const subject = new Float32Array(B * T);
  for (let i = 0; i < B * T; i++) {
    const row = Math.floor(i / T);
    for (let s = Math.max(0, k.cutFrom[i] as number); s < (k.cutTo[i] as number); s++) subject[row * T + s] = 1;
  }
  const wte = params.get(embedParam(params.config));
  // A number, not a tensor on the tape: the noise scale follows the embedding without a gradient through it.
  const sd = tf.tidy(() => Math.sqrt(tf.moments(wte).variance.dataSync()[0] as number));
  // One draw per row, seeded by the row (its dropout seed, else its tokens), so a data-parallel share draws what
  // the whole batch would.
  const rowSeed = (b: number): number =>
    batch.dropout
      ? (batch.dropout.rowSeeds[b] as number)
      : batch.inputs.subarray(b * T, (b + 1) * T).reduce((a, x) => (a * 31 + x) >>> 0, 7);
  const addNoise = (e: tf.Tensor): tf.Tensor => {
    const d = e.shape[2] as number;
    const rows = Array.from({ length: B }, (_, b) => tf.randomNormal([1, T, d], 0, (k.noiseLeak as number) * sd, 'float32', rowSeed(b) % 2147483647));
    return tf.add(e, tf.mul(tf.concat(rows, 0), tf.tensor3d(subject, [B, T, 1])));
  };
  const out = forward(params, ids, { endLayer: 1, logits: 'none', hooks: { embed: addNoise }, knockout: { bias, layers: [0], leak } });
  out.hidden.dispose();
}

/** Mean cross-entropy (nats per token) over fixed batches, without gradients. */
export function meanLoss(params: GPT2Params, batches: readonly Batch[]): number {
  let sum = 0;
  let n = 0;
  for (const b of batches) {
    const l = batchLoss(params, b);
    sum += (l.dataSync()[0] as number) * b.batch * b.seqLen;
    n += b.batch * b.seqLen;
    l.dispose();
  }
  return n === 0 ? NaN : sum / n;
}

interface SavedState {
  format: 'rome-ts-train/1';
  step: number;
  cursor: SamplerCursor;
  /** The curriculum stream's cursor (runs with TrainOptions.curriculum). */
  curriculumCursor?: SamplerCursor;
  adamStep: number;
  /** Total steps of the schedule (fixed by the time budget when there is one). */
  scheduleSteps: number;
  /** Whether the time budget has fixed scheduleSteps already. */
  stepsFixed: boolean;
  fingerprint: Record<string, unknown>;
  log: TrainLog;
}

function bytesSha(a: Int32Array | Float32Array): string {
  return sha256(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
}

/** What identifies a token stream and its per-token arrays in a checkpoint's fingerprint. */
function streamFingerprint(tokens: Int32Array, tokenWeights?: Float32Array, knockout?: StreamKnockout): Record<string, unknown> {
  return {
    tokens: tokens.length,
    tokensSha256: bytesSha(tokens),
    ...(knockout
      ? {
          knockoutLayers: knockout.layers,
          knockoutLeakPenalty: knockout.leakPenalty ?? 0,
          knockoutNoiseLeak: knockout.noiseLeak ?? 0,
          ...(knockout.extractFrom && knockout.extractWeight
            ? { extractWeight: knockout.extractWeight, extractSha256: bytesSha(knockout.extractFrom) }
            : {}),
          ...(knockout.readTarget && knockout.readWeight ? { readoutWeight: knockout.readWeight, readoutSha256: bytesSha(knockout.readTarget) } : {}),
          knockoutSha256: bytesSha(knockout.from),
          // Only when on, so checkpoints of runs without it keep their fingerprint.
          ...(knockout.innerFrom && knockout.innerLayers ? { innerLayers: knockout.innerLayers, innerSha256: bytesSha(knockout.innerFrom) } : {}),
        }
      : {}),
    ...(tokenWeights ? { tokenWeightsSha256: bytesSha(tokenWeights) } : {}),
  };
}

function fingerprint(o: TrainOptions): Record<string, unknown> {
  const { tokens, tokensSha256, ...arrays } = streamFingerprint(o.tokens, o.tokenWeights, o.knockout);
  const c = o.curriculum;
  // Key order as before the curriculum existed, so older checkpoints still resume.
  return {
    config: o.config,
    batch: o.batch,
    seqLen: o.seqLen,
    seed: o.seed,
    tokens,
    tokensSha256,
    // Only when on, so checkpoints of runs without dropout keep their fingerprint.
    ...(o.dropout ? { dropout: o.dropout } : {}),
    ...arrays,
    ...(c ? { curriculum: { steps: c.steps, ...streamFingerprint(c.tokens, c.tokenWeights, c.knockout) } } : {}),
  };
}

async function saveState(
  file: string,
  params: GPT2Params,
  opt: AdamW,
  state: Omit<SavedState, 'format' | 'adamStep'>,
): Promise<void> {
  const tensors = new Map<string, SafetensorsWriteTensor>();
  for (const [name, w] of params.toWeights()) tensors.set(`param/${name}`, w);
  const s = opt.getState();
  for (const [name, w] of s.m) tensors.set(`adam_m/${name}`, w);
  for (const [name, w] of s.v) tensors.set(`adam_v/${name}`, w);
  const saved: SavedState = { format: 'rome-ts-train/1', adamStep: s.step, ...state };
  await writeSafetensors(file, tensors, { dtype: 'F32', metadata: { rome_ts_train: JSON.stringify(saved) } });
}

async function loadState(
  file: string,
): Promise<{ saved: SavedState; weights: Map<string, { shape: number[]; data: Float32Array }>; adam: AdamWState } | null> {
  try {
    await fsp.access(file);
  } catch {
    return null;
  }
  const f = await readSafetensors(file);
  const raw = f.metadata['rome_ts_train'];
  if (raw === undefined) throw new Error(`${file}: not a rome-ts training checkpoint (no rome_ts_train metadata)`);
  const saved = JSON.parse(raw) as SavedState;
  if (saved.format !== 'rome-ts-train/1') throw new Error(`${file}: unknown training checkpoint format ${String(saved.format)}`);
  const weights = new Map<string, { shape: number[]; data: Float32Array }>();
  const m = new Map<string, { shape: number[]; data: Float32Array }>();
  const v = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of f.tensors) {
    const [kind, rest] = [name.slice(0, name.indexOf('/')), name.slice(name.indexOf('/') + 1)];
    const target = kind === 'param' ? weights : kind === 'adam_m' ? m : kind === 'adam_v' ? v : null;
    if (!target) throw new Error(`${file}: unexpected tensor "${name}"`);
    target.set(rest, { shape: t.shape, data: t.data });
  }
  return { saved, weights, adam: { step: saved.adamStep, m, v } };
}

/** The curriculum stream's sampler; its errors say which stream they are about. */
function curriculumWindows(c: NonNullable<TrainOptions['curriculum']>, seqLen: number, seed: number, cursor?: SamplerCursor): WindowSampler {
  try {
    return new WindowSampler(c.tokens, seqLen, seed, cursor, c.tokenWeights, c.knockout);
  } catch (e) {
    throw new Error(`train: curriculum stream: ${(e as Error).message}`);
  }
}

function fmtDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function fmtMetrics(m: Metrics): string {
  return Object.entries(m)
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`)
    .join(', ');
}

/** Trains (or resumes training of) a GPT-2; see TrainOptions and the module comment. */
export async function train(o: TrainOptions): Promise<TrainResult> {
  const log = o.log ?? logLine;
  for (const k of ['steps', 'batch', 'seqLen'] as const) {
    if (!Number.isInteger(o[k]) || o[k] <= 0) throw new Error(`train: ${k} must be a positive integer, got ${o[k]}`);
  }
  if (o.dropout !== undefined) validateDropoutRate(o.dropout);
  if (o.timeBudgetMinutes !== undefined && !(Number.isFinite(o.timeBudgetMinutes) && o.timeBudgetMinutes > 0)) {
    throw new Error(`train: timeBudgetMinutes must be a positive number, got ${o.timeBudgetMinutes}`);
  }
  for (const k of ['calibrationSteps', 'budgetReplanSteps'] as const) {
    const v = o[k];
    if (v !== undefined && (!Number.isInteger(v) || v < (k === 'calibrationSteps' ? 1 : 0))) {
      throw new Error(`train: ${k} must be an integer ≥ ${k === 'calibrationSteps' ? 1 : 0}, got ${v}`);
    }
  }
  if (o.curriculum !== undefined && !(Number.isInteger(o.curriculum.steps) && o.curriculum.steps >= 1)) {
    throw new Error(`train: curriculum.steps must be an integer ≥ 1, got ${o.curriculum.steps}`);
  }
  if (o.seqLen > o.config.nPositions) throw new Error(`train: seqLen ${o.seqLen} exceeds n_positions ${o.config.nPositions}`);
  const schedule: { lr: number; minLr: number; warmup: number; steps: number } = {
    lr: o.lr,
    minLr: o.minLr ?? o.lr / 10,
    warmup: o.warmup ?? Math.min(100, Math.floor(o.steps / 10)),
    steps: o.steps,
  };
  const evalEvery = o.evalEvery ?? 0;
  const ckptEvery = o.ckptEvery ?? 0;
  const weightDecay = o.weightDecay ?? 0.1;
  const clip = o.clip ?? 1;
  const counts = countParams(o.config);
  const tokensPerStep = o.batch * o.seqLen;
  const ckptFile = path.join(o.outDir, TRAIN_CHECKPOINT);
  const logFile = path.join(o.outDir, TRAIN_LOG);
  await fsp.mkdir(o.outDir, { recursive: true });
  const fp = fingerprint(o);

  const loaded = o.resume === false ? null : await loadState(ckptFile);
  let params: GPT2Params;
  let cursor: SamplerCursor | undefined;
  let curriculumCursor: SamplerCursor | undefined;
  let step = 0;
  let runLog: TrainLog;
  let stepsFixed = o.timeBudgetMinutes === undefined;
  if (loaded) {
    const want = JSON.stringify(fp);
    const have = JSON.stringify(loaded.saved.fingerprint);
    if (want !== have) {
      throw new Error(
        `train: ${ckptFile} belongs to a different run (config, batch, seqLen, seed or corpus differ); ` +
          `use another outDir or delete the checkpoint.\n  checkpoint: ${have}\n  this run:   ${want}`,
      );
    }
    params = new GPT2Params(o.config, loaded.weights);
    step = loaded.saved.step;
    cursor = loaded.saved.cursor;
    curriculumCursor = loaded.saved.curriculumCursor;
    if (o.timeBudgetMinutes !== undefined && loaded.saved.stepsFixed) {
      schedule.steps = Math.min(o.steps, loaded.saved.scheduleSteps);
      stepsFixed = true;
    }
    runLog = loaded.saved.log;
    log(`train: resuming from ${ckptFile} at step ${step}/${schedule.steps}`);
    const prev = loaded.saved.log.options;
    const changed = ([...(o.timeBudgetMinutes === undefined ? (['steps'] as const) : []), 'lr', 'minLr', 'warmup', 'weightDecay', 'clip'] as const).filter((k) => {
      const now = k === 'weightDecay' ? weightDecay : k === 'clip' ? clip : schedule[k];
      return prev[k] !== undefined && prev[k] !== now;
    });
    if (changed.length > 0) {
      log(`train: warning: ${changed.join(', ')} differ from the checkpoint's run; the result will not match an uninterrupted run`);
    }
  } else {
    params = new GPT2Params(o.config, initWeights(o.config, o.seed));
    runLog = {
      config: o.config,
      options: {},
      meta: o.meta ?? {},
      params: counts,
      tokensInCorpus: o.tokens.length,
      tokensPerStep,
      steps: [],
      evals: [],
      sessions: [],
      timing: { trainSeconds: 0, evalSeconds: 0, checkpointSeconds: 0, tokensPerSecond: 0, effectiveGflops: 0 },
      completedSteps: 0,
      finished: false,
      stoppedEarly: false,
      stopReason: '',
    };
  }
  runLog.options = {
    batch: o.batch,
    seqLen: o.seqLen,
    ...schedule,
    weightDecay,
    clip,
    beta1: o.beta1 ?? 0.9,
    beta2: o.beta2 ?? 0.95,
    seed: o.seed,
    evalEvery,
    ckptEvery,
    maxMinutes: o.maxMinutes ?? null,
    threads: o.threads ?? 1,
    dropout: o.dropout ?? 0,
    ...(o.curriculum ? { curriculumSteps: o.curriculum.steps, curriculumTokens: o.curriculum.tokens.length } : {}),
  };
  params.training = true;
  const names = params.names();
  const opt = new AdamW(
    names.map((name) => ({ name, variable: params.get(name) })),
    { weightDecay, clipNorm: clip, beta1: o.beta1, beta2: o.beta2 },
  );
  if (loaded) opt.setState(loaded.adam);
  const byVarName = new Map(names.map((n) => [params.get(n).name, n]));
  const vars = params.variables();
  const sampler = new WindowSampler(o.tokens, o.seqLen, o.seed + 1, cursor, o.tokenWeights, o.knockout);
  const c = o.curriculum;
  // Its own data-order seed, so the main stream's order is the same with or without a curriculum.
  const curriculumSampler = c ? curriculumWindows(c, o.seqLen, o.seed + 2, curriculumCursor) : null;
  const threads = o.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`train: threads must be a positive integer, got ${threads}`);
  if (o.batch % threads !== 0) throw new Error(`train: batch ${o.batch} must be a multiple of threads (${threads})`);
  const parallel = threads > 1 ? await startParallelGrads(params, threads) : null;

  const session = {
    startStep: step,
    endStep: step,
    startedAt: new Date().toISOString(),
    seconds: 0,
    stopReason: '',
  };
  runLog.sessions.push(session);
  const clock = o.clock ?? Date.now;
  const t0 = clock();
  const deadline = o.maxMinutes !== undefined && o.maxMinutes > 0 ? t0 + o.maxMinutes * 60_000 : Infinity;
  let sessionTrainSeconds = 0;
  let sessionSteps = 0;
  let lastProgress = 0;
  let emaLoss: number | null = null;
  const sessionCkpts = { n: 0, seconds: 0 };

  const writeLog = async (): Promise<void> => {
    const tr = runLog.timing.trainSeconds;
    runLog.timing.tokensPerSecond = tr > 0 ? (runLog.steps.length * tokensPerStep) / tr : 0;
    runLog.timing.effectiveGflops = (6 * counts.total * runLog.timing.tokensPerSecond) / 1e9;
    runLog.completedSteps = step;
    session.endStep = step;
    session.seconds = (clock() - t0) / 1000;
    await writeFileAtomic(logFile, `${JSON.stringify(runLog, null, 1)}\n`);
  };
  const checkpoint = async (): Promise<void> => {
    const c0 = clock();
    await writeLog();
    await saveState(ckptFile, params, opt, {
      step,
      cursor: sampler.cursor(),
      ...(curriculumSampler ? { curriculumCursor: curriculumSampler.cursor() } : {}),
      fingerprint: fp,
      log: runLog,
      scheduleSteps: schedule.steps,
      stepsFixed,
    });
    runLog.timing.checkpointSeconds += (clock() - c0) / 1000;
    sessionCkpts.n += 1;
    sessionCkpts.seconds += (clock() - c0) / 1000;
  };
  const evaluate = async (): Promise<void> => {
    if (!o.evaluate) return;
    if (runLog.evals.some((e) => e.step === step)) return;
    const e0 = clock();
    const metrics = await o.evaluate(params, step);
    const seconds = (clock() - e0) / 1000;
    runLog.timing.evalSeconds += seconds;
    runLog.evals.push({ ...metrics, step, seconds });
    log(`eval @ ${step}: ${fmtMetrics(metrics)} (${seconds.toFixed(1)}s)`);
  };

  const evalSecondsAtStart = runLog.timing.evalSeconds;
  if (step === 0 && evalEvery > 0) await evaluate();
  let stopReason = '';
  try {
    const calibration = o.calibrationSteps ?? Math.max(5, Math.min(20, schedule.warmup));
    const replanEvery = o.timeBudgetMinutes === undefined ? 0 : (o.budgetReplanSteps ?? 100);
    // Only the session that made the plan revises it: a resumed run keeps the total it was given.
    let budgetOwned = false;
    let plan = { atSessionStep: 0, atSeconds: 0, evalSeconds: 0, ckptSeconds: 0 };
    while (step < schedule.steps) {
      if (clock() >= deadline) {
        stopReason = `max-minutes (${o.maxMinutes}) reached`;
        break;
      }
      if (o.shouldStop?.()) {
        stopReason = 'stop requested';
        break;
      }
      const s0 = performance.now();
      const batch = (curriculumSampler && step < (c?.steps ?? 0) ? curriculumSampler : sampler).next(o.batch);
      if (o.dropout) {
        const rowSeeds = new Uint32Array(o.batch);
        for (let b = 0; b < o.batch; b++) rowSeeds[b] = mixSeed(o.seed, DROPOUT_STREAM, step, b);
        batch.dropout = { rate: o.dropout, rowSeeds };
      }
      const lr = lrAt(step, schedule);
      let loss: number;
      const named = new Map<string, tf.Tensor>();
      if (parallel) {
        const r = await parallel.step(batch);
        loss = r.loss;
        for (const [k, g] of r.grads) named.set(k, g);
      } else {
        const { value, grads } = tf.variableGrads(() => batchLoss(params, batch), vars);
        for (const [k, g] of Object.entries(grads)) named.set(byVarName.get(k) ?? k, g);
        loss = value.dataSync()[0] as number;
        value.dispose();
      }
      if (!Number.isFinite(loss)) {
        tf.dispose([...named.values()]);
        throw new Error(`train: loss is ${loss} at step ${step}; not saving this state (last checkpoint is kept)`);
      }
      const { gradNorm } = opt.apply(named, lr);
      tf.dispose([...named.values()]);
      const seconds = (performance.now() - s0) / 1000;
      step += 1;
      sessionSteps += 1;
      if (c && step === c.steps) log(`train: curriculum warm-up done after ${step} steps; windows now come from the full stream`);
      sessionTrainSeconds += seconds;
      runLog.timing.trainSeconds += seconds;
      runLog.steps.push({ step, loss, lr, gradNorm, seconds });
      emaLoss = emaLoss === null ? loss : 0.95 * emaLoss + 0.05 * loss;

      const now = clock();
      if ((o.progressSeconds ?? 10) === 0 || now - lastProgress >= (o.progressSeconds ?? 10) * 1000 || step === schedule.steps) {
        lastProgress = now;
        const tps = (sessionSteps * tokensPerStep) / sessionTrainSeconds;
        const secPerStep = (now - t0) / 1000 / sessionSteps;
        log(
          `step ${step}/${schedule.steps} loss ${loss.toFixed(4)} (avg ${emaLoss.toFixed(4)}) lr ${lr.toExponential(2)} ` +
            `gnorm ${gradNorm.toFixed(2)} | ${tps.toFixed(0)} tok/s ${((6 * counts.total * tps) / 1e9).toFixed(2)} GFLOPS | ` +
            `elapsed ${fmtDuration((now - t0) / 1000)} ETA ${fmtDuration(secPerStep * (schedule.steps - step))}`,
        );
      }
      const replanDue = replanEvery > 0 && budgetOwned && sessionSteps - plan.atSessionStep >= replanEvery;
      if ((!stepsFixed && sessionSteps >= calibration) || replanDue) {
        // Pace of the steps since the last plan (since the start for the first one): wall time per step, evaluations
        // and checkpoints taken out and added back amortised over their intervals.
        const nowS = (clock() - t0) / 1000;
        const evalSec = runLog.timing.evalSeconds - evalSecondsAtStart;
        const windowSteps = sessionSteps - plan.atSessionStep;
        const perStep = (nowS - plan.atSeconds - (evalSec - plan.evalSeconds) - (sessionCkpts.seconds - plan.ckptSeconds)) / windowSteps;
        const lastEval = runLog.evals.length > 0 ? runLog.evals[runLog.evals.length - 1]!.seconds : 0;
        // Checkpoint cost: measured when one was written already, else ~1 s per 6M parameters (3 float32 copies).
        const ckptCost = sessionCkpts.n > 0 ? sessionCkpts.seconds / sessionCkpts.n : Math.max(0.2, counts.total / 6e6);
        const overhead = (evalEvery > 0 ? lastEval / evalEvery : 0) + (ckptEvery > 0 ? ckptCost / ckptEvery : 0);
        const budget = o.timeBudgetMinutes! * 60;
        // Margin for the final evaluation and save: a minute, or 5% of short budgets.
        const left = budget - nowS - Math.min(60, 0.05 * budget) - lastEval;
        const more = Math.max(0, Math.floor(left / (perStep + overhead)));
        const planned = Math.max(step, Math.min(o.steps, step + more));
        const first = !stepsFixed;
        // Revisions under 1% are noise; skipping them keeps the learning-rate curve smooth.
        if (first || Math.abs(planned - schedule.steps) > 0.01 * schedule.steps) {
          const was = schedule.steps;
          schedule.steps = planned;
          runLog.options['steps'] = planned;
          const plans = (runLog.options['budgetPlans'] as Array<{ step: number; steps: number; secondsPerStep: number }> | undefined) ?? [];
          plans.push({ step, steps: planned, secondsPerStep: Number(perStep.toFixed(3)) });
          runLog.options['budgetPlans'] = plans;
          log(
            `train: time budget ${o.timeBudgetMinutes} min at ${perStep.toFixed(2)} s/step (+${overhead.toFixed(2)} s/step ` +
              `evals and checkpoints): ${planned} steps in all${first ? '' : ` (was ${was})`}`,
          );
        }
        stepsFixed = true;
        budgetOwned = true;
        plan = { atSessionStep: sessionSteps, atSeconds: nowS, evalSeconds: evalSec, ckptSeconds: sessionCkpts.seconds };
      }
      if (evalEvery > 0 && step % evalEvery === 0 && step < schedule.steps) await evaluate();
      if (ckptEvery > 0 && step % ckptEvery === 0 && step < schedule.steps) await checkpoint();
    }
    if (step >= schedule.steps) {
      await evaluate();
      runLog.finished = true;
      runLog.stoppedEarly = false;
      stopReason = 'finished';
    } else {
      runLog.stoppedEarly = true;
      log(`train: stopping early at step ${step}/${schedule.steps}: ${stopReason}`);
    }
    runLog.stopReason = stopReason;
    session.stopReason = stopReason;
    await checkpoint();
  } catch (e) {
    opt.dispose();
    params.dispose();
    throw e;
  } finally {
    await parallel?.close();
  }
  opt.dispose();
  log(
    `train: ${runLog.finished ? 'done' : 'stopped'} at step ${step}/${schedule.steps}; ` +
      `${runLog.timing.tokensPerSecond.toFixed(0)} tok/s, ${runLog.timing.effectiveGflops.toFixed(2)} GFLOPS (this session ` +
      `${sessionSteps} steps in ${fmtDuration(sessionTrainSeconds)})`,
  );
  return { params, log: runLog, resumedFrom: session.startStep };
}
