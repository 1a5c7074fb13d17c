/**
 * The one forward pass, for every family. Capture, patching, tracing, KV-cached generation, partial recomputation
 * from a middle layer, and training all go through `forward`; they differ only in the options they pass. The
 * families differ only inside a block (gpt2Block, archBlock) and at the ends (embedding, final norm, head); every
 * one fires the same hook points.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { HookContext, HookFn, HookSet } from '../hooks.js';
import type { ArchSpec } from '../io/config.js';
import type { GPT2Params } from './params.js';
import { applyDropout, validateDropoutRate, type DropoutSpec } from './dropout.js';
import { embedParam, finalNormParams, headBiasParam } from './family.js';

/** Per-layer attention keys and values of earlier positions: k[l], v[l] are [B, H_kv, S_past, d_head] (post-rotary). */
export interface KVCache {
  k: tf.Tensor4D[];
  v: tf.Tensor4D[];
}

/** Options of one forward run. Every tensor argument stays owned by the caller. */
export interface ForwardOptions {
  /** Interventions and captures keyed by hook-point name. */
  hooks?: HookSet;
  /** [B, S] with 1 for real tokens and 0 for padding, S = past length + T. Needed for left padding only. */
  attentionMask?: tf.Tensor2D;
  /** [B, T] absolute positions; default pastLength + 0..T-1 for every row. */
  positionIds?: tf.Tensor2D;
  /** Keys/values of earlier positions (generation, or incremental recomputation). */
  past?: KVCache;
  /** First block to run (default 0). When > 0, `residual` is the input of that block and `ids` is ignored. */
  startLayer?: number;
  /** [B, T, d] residual stream entering block `startLayer` (at layer 0 it replaces the embeddings). */
  residual?: tf.Tensor3D;
  /** Run blocks [startLayer, endLayer) only (default all); final norm and logits only when endLayer = nLayer. */
  endLayer?: number;
  /** Which logits to compute: all positions [B,T,V], one position per row [B,V], or none. Default 'all'. */
  logits?: 'all' | 'none' | readonly number[];
  /** Return this run's keys/values concatenated to `past` (for KV-cached generation). */
  returnPresent?: boolean;
  /**
   * Training only: dropout at GPT-2's four places — the embedding sum, the attention probabilities, and the
   * attention and MLP outputs before they join the residual stream — applied after any hook at that point.
   */
  dropout?: DropoutSpec;
  /**
   * Attention knockout: an additive bias [B or 1, 1, T, S] (0 = keep, −1e9 = cut) added to the attention scores of
   * the listed blocks only, before the softmax, so each query's remaining weights renormalise (Geva et al. 2023's
   * knockout). Used to cut chosen query→key edges in some layers (e.g. positions after a subject from the subject
   * in the lower layers, during training).
   */
  knockout?: {
    bias: tf.Tensor4D;
    layers: readonly number[];
    /**
     * When given, each knockout layer appends (kept; the caller disposes) a scalar: the attention mass the cut
     * edges would receive without the cut, summed over batch, heads and queries — the softmax of the scores with
     * the causal mask only. Training penalises it so the plain model learns to leave those edges unused too.
     */
    leak?: tf.Scalar[];
  };
}

/** Result of a forward run; the caller owns (and must dispose) every tensor in it. */
export interface ForwardOutput {
  /** [B,T,V], [B,V] or null, per `logits`. */
  logits: tf.Tensor | null;
  /** Residual stream after the last block that ran, [B, T, d]. */
  hidden: tf.Tensor3D;
  present: KVCache | null;
}

function runHooks(hooks: HookSet | undefined, name: string, x: tf.Tensor, ctx: HookContext): tf.Tensor {
  if (!hooks) return x;
  const h = hooks[name];
  if (!h) return x;
  const list: readonly HookFn[] = typeof h === 'function' ? [h as HookFn] : (h as readonly HookFn[]);
  let y = x;
  for (const fn of list) {
    const r = fn(y, ctx);
    if (r) {
      if (r.shape.length !== y.shape.length || r.shape.some((s, i) => s !== y.shape[i])) {
        throw new Error(`hook on "${name}" returned shape [${r.shape}] but the state has shape [${y.shape}]`);
      }
      y = r;
    }
  }
  return y;
}

/** Layer norm over the last axis: (x - mean) / sqrt(var + eps) * g + b. */
export function layerNorm(x: tf.Tensor, g: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), g), b);
  });
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** The MLP nonlinearity named by the config. */
export function activation(name: string, x: tf.Tensor): tf.Tensor {
  switch (name) {
    case 'gelu_new':
    case 'gelu_fast':
    case 'gelu_pytorch_tanh':
      return tf.tidy(() => {
        // x·x·x rather than pow(x, 3): WASM's Pow is a scalar libm call per element (~5% of a causal trace).
        const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), 0.044715)), SQRT_2_OVER_PI);
        return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
      });
    case 'gelu':
      return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)));
    case 'relu':
      return tf.relu(x);
    case 'silu':
      return tf.tidy(() => tf.mul(x, tf.sigmoid(x)));
    default:
      throw new Error(`unsupported activation_function "${name}"`);
  }
}

/** RMSNorm over the last axis (LLaMA): x / sqrt(mean(x²) + eps) * g. */
export function rmsNorm(x: tf.Tensor, g: tf.Tensor, eps: number): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), g));
}

/** x [B,T,din] @ w [din,dout] + b (b optional), as a 2-D matmul (the fast path on every backend). */
function linear(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor | null): tf.Tensor {
  const [B, T, din] = x.shape as [number, number, number];
  const xw = tf.matMul(tf.reshape(x, [B * T, din]), w as tf.Tensor2D);
  const y = b ? tf.add(xw, b) : xw;
  return tf.reshape(y, [B, T, w.shape[1] as number]);
}

const maskCache = new Map<string, tf.Tensor2D>();

/**
 * Additive causal mask [T, S]: query t (absolute pos offset+t) sees key s iff s <= offset+t and, with a sliding
 * window w, offset+t − s < w. Cached.
 */
function causalMask(T: number, S: number, window: number | null = null): tf.Tensor2D {
  const key = `${T}x${S}x${window ?? ''}`;
  let m = maskCache.get(key);
  if (!m || m.isDisposed) {
    const offset = S - T;
    const data = new Float32Array(T * S);
    for (let t = 0; t < T; t++) {
      for (let s = offset + t + 1; s < S; s++) data[t * S + s] = -1e9;
      if (window !== null) for (let s = 0; s <= offset + t - window; s++) data[t * S + s] = -1e9;
    }
    m = tf.keep(tf.tensor2d(data, [T, S]));
    if (maskCache.size > 64) {
      for (const v of maskCache.values()) v.dispose();
      maskCache.clear();
    }
    maskCache.set(key, m);
  }
  return m;
}

/** What every block of one run shares. */
interface BlockEnv {
  params: GPT2Params;
  opts: ForwardOptions;
  drop: DropoutSpec | undefined;
  mask: tf.Tensor;
  /** The causal mask plus the knockout bias, for the knockout's layers. */
  knockoutMask: tf.Tensor | null;
  /** 1 on the knockout's cut edges, 0 elsewhere (only when the caller collects the leak). */
  cutEdges: tf.Tensor | null;
  B: number;
  T: number;
  pastLen: number;
  /** Rotary cos and sin [B or 1, 1, T, rotaryDim/2] (rotary families only). */
  rope: { cos: tf.Tensor; sin: tf.Tensor } | null;
  presentK: tf.Tensor4D[];
  presentV: tf.Tensor4D[];
}

/** Appends this run's keys/values to the past ones (and keeps them when the caller wants them back). */
function withPast(env: BlockEnv, l: number, k: tf.Tensor4D, v: tf.Tensor4D): [tf.Tensor4D, tf.Tensor4D] {
  let kAll = k;
  let vAll = v;
  if (env.opts.past) {
    kAll = tf.concat([env.opts.past.k[l], kAll], 2);
    vAll = tf.concat([env.opts.past.v[l], vAll], 2);
  }
  if (env.opts.returnPresent) {
    env.presentK.push(tf.keep(kAll));
    env.presentV.push(tf.keep(vAll));
  }
  return [kAll, vAll];
}

/** The additive attention mask of block l. */
function maskOf(env: BlockEnv, l: number): tf.Tensor {
  return env.knockoutMask && env.opts.knockout?.layers.includes(l) ? env.knockoutMask : env.mask;
}

/** Appends the attention mass the cut edges would get without the knockout (see ForwardOptions.knockout.leak). */
function collectLeak(env: BlockEnv, l: number, rawScores: tf.Tensor): void {
  const leak = env.opts.knockout?.leak;
  if (!leak || !env.cutEdges || !env.opts.knockout?.layers.includes(l)) return;
  leak.push(tf.keep(tf.sum(tf.mul(tf.softmax(tf.add(rawScores, env.mask), -1), env.cutEdges)) as tf.Scalar));
}

function hookCtx(env: BlockEnv, name: string, layer: number | null): HookContext {
  return { name, layer, positionOffset: env.pastLen };
}

/** One GPT-2 block on the residual x [B, T, d]. */
function gpt2Block(env: BlockEnv, l: number, x: tf.Tensor): tf.Tensor {
  const { params, opts, drop, B, T } = env;
  const mask = maskOf(env, l);
  const cfg = params.config;
  const H = cfg.nHead;
  const d = cfg.nEmbd;
  const hd = d / H;
  const hooks = opts.hooks;
  const scale = 1 / Math.sqrt(hd);
  const p = (n: string) => params.get(`h.${l}.${n}`);
  const ctx = (name: string): HookContext => hookCtx(env, name, l);
  // Attention.
  const h1 = layerNorm(x, p('ln_1.weight'), p('ln_1.bias'), cfg.layerNormEpsilon);
  const qkv = linear(h1, p('attn.c_attn.weight'), p('attn.c_attn.bias'));
  // One transpose to [3, B, H, T, hd], then slices of contiguous blocks: the WASM SplitV of the last axis (a strided
  // copy) took ~6% of a causal trace, three times more than this.
  const heads = tf.transpose(tf.reshape(qkv, [B, T, 3, H, hd]), [2, 0, 3, 1, 4]);
  const [q, k, v] = [0, 1, 2].map((i) => tf.reshape(tf.slice(heads, [i, 0, 0, 0, 0], [1, B, H, T, hd]), [B, H, T, hd]));
  const [kAll, vAll] = withPast(env, l, k as tf.Tensor4D, v as tf.Tensor4D);
  const raw = tf.mul(tf.matMul(q as tf.Tensor4D, kAll, false, true), scale);
  collectLeak(env, l, raw);
  const scores = tf.add(raw, mask);
  let probs = runHooks(hooks, `blocks.${l}.attn.pattern`, tf.softmax(scores, -1), ctx(`blocks.${l}.attn.pattern`));
  // Sites 1 + 3l … 3 + 3l: one independent mask per place and layer (site 0 is the embeddings).
  if (drop) probs = applyDropout(probs, drop, 1 + 3 * l);
  const ctxv = tf.reshape(tf.transpose(tf.matMul(probs as tf.Tensor4D, vAll), [0, 2, 1, 3]), [B, T, d]);
  const attnOut = linear(ctxv, p('attn.c_proj.weight'), p('attn.c_proj.bias'));
  let attn = runHooks(hooks, `blocks.${l}.attn`, attnOut, ctx(`blocks.${l}.attn`));
  if (drop) attn = applyDropout(attn, drop, 2 + 3 * l);
  x = tf.add(x, attn);
  // MLP.
  const h2 = layerNorm(x, p('ln_2.weight'), p('ln_2.bias'), cfg.layerNormEpsilon);
  const key = runHooks(
    hooks,
    `blocks.${l}.mlp.key`,
    activation(cfg.activationFunction, linear(h2, p('mlp.c_fc.weight'), p('mlp.c_fc.bias'))),
    ctx(`blocks.${l}.mlp.key`),
  );
  let mlp = runHooks(hooks, `blocks.${l}.mlp`, linear(key, p('mlp.c_proj.weight'), p('mlp.c_proj.bias')), ctx(`blocks.${l}.mlp`));
  if (drop) mlp = applyDropout(mlp, drop, 3 + 3 * l);
  return runHooks(hooks, `blocks.${l}`, tf.add(x, mlp), ctx(`blocks.${l}`));
}

/** Rotary cos/sin tables [Bp, 1, T, r/2] for absolute positions [Bp][T], computed in float64 then rounded. */
function rotaryTables(arch: ArchSpec, positions: number[][]): { cos: tf.Tensor; sin: tf.Tensor } {
  const half = arch.rotaryDim / 2;
  const Bp = positions.length;
  const T = positions[0]!.length;
  const c = new Float32Array(Bp * T * half);
  const s = new Float32Array(Bp * T * half);
  for (let b = 0; b < Bp; b++) {
    for (let t = 0; t < T; t++) {
      const pos = positions[b]![t]!;
      for (let i = 0; i < half; i++) {
        const angle = pos * Math.pow(arch.ropeTheta, (-2 * i) / arch.rotaryDim);
        c[(b * T + t) * half + i] = Math.cos(angle);
        s[(b * T + t) * half + i] = Math.sin(angle);
      }
    }
  }
  return { cos: tf.tensor4d(c, [Bp, 1, T, half]), sin: tf.tensor4d(s, [Bp, 1, T, half]) };
}

/** Rotates the first rotaryDim dims of each head of x [B, Hx, T, hd] by position ('half' or 'interleaved' pairs). */
function applyRotary(arch: ArchSpec, x: tf.Tensor, rope: { cos: tf.Tensor; sin: tf.Tensor }): tf.Tensor {
  const [B, Hx, T, hd] = x.shape as [number, number, number, number];
  const r = arch.rotaryDim;
  const [rot, pass] = r < hd ? tf.split(x, [r, hd - r], -1) : [x, null];
  // Each pair (a, b) turns by its angle: (a cos − b sin, b cos + a sin).
  const turn = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, s: tf.Tensor): tf.Tensor[] => [
    tf.sub(tf.mul(a, c), tf.mul(b, s)),
    tf.add(tf.mul(b, c), tf.mul(a, s)),
  ];
  let y: tf.Tensor;
  if (arch.rotaryStyle === 'half') {
    const [x1, x2] = tf.split(rot as tf.Tensor, 2, -1) as [tf.Tensor, tf.Tensor];
    y = tf.concat(turn(x1, x2, rope.cos, rope.sin), -1);
  } else {
    const pairs = tf.reshape(rot as tf.Tensor, [B, Hx, T, r / 2, 2]);
    const [x1, x2] = tf.split(pairs, 2, -1) as [tf.Tensor, tf.Tensor];
    y = tf.reshape(tf.concat(turn(x1, x2, tf.expandDims(rope.cos, -1), tf.expandDims(rope.sin, -1)), -1), [B, Hx, T, r]);
  }
  return pass ? tf.concat([y, pass], -1) : y;
}

/** A NeoX, LLaMA-style or GPT-J block on the residual x [B, T, d]; wiring from cfg.arch (see ArchSpec). */
function archBlock(env: BlockEnv, l: number, x: tf.Tensor): tf.Tensor {
  const { params, opts, drop, B, T } = env;
  const mask = maskOf(env, l);
  const cfg = params.config;
  const a = cfg.arch as ArchSpec;
  const H = cfg.nHead;
  const Hkv = a.nKvHead;
  const rep = H / Hkv;
  const hd = a.headDim;
  const eps = cfg.layerNormEpsilon;
  const hooks = opts.hooks;
  const pre = a.family === 'gptj' ? `h.${l}.` : `layers.${l}.`;
  const p = (n: string) => params.get(pre + n);
  const pb = (n: string, has: boolean) => (has ? params.get(pre + n) : null);
  const ctx = (name: string): HookContext => hookCtx(env, name, l);
  const norm = (h: tf.Tensor, n: string) =>
    a.norm === 'rmsnorm' ? rmsNorm(h, p(`${n}.weight`), eps) : layerNorm(h, p(`${n}.weight`), p(`${n}.bias`), eps);
  const heads = (t: tf.Tensor, n: number) => tf.transpose(tf.reshape(t, [B, T, n, hd]), [0, 2, 1, 3]);

  // Attention input (and, for parallel blocks, the MLP input too).
  const h1 = norm(x, a.family === 'gptj' ? 'ln_1' : 'input_layernorm');
  let q: tf.Tensor;
  let k: tf.Tensor;
  let v: tf.Tensor;
  let outW: string;
  if (a.family === 'gpt_neox') {
    // query_key_value packs per head: [.., H, (q | k | v), hd].
    const packed = linear(h1, p('attention.query_key_value.weight'), pb('attention.query_key_value.bias', a.qkvBias));
    const qkv = tf.reshape(packed, [B, T, H, 3, hd]);
    [q, k, v] = tf.split(qkv, 3, 3).map((t) => tf.transpose(tf.reshape(t, [B, T, H, hd]), [0, 2, 1, 3]));
    outW = 'attention.dense';
  } else {
    const at = a.family === 'gptj' ? 'attn.' : 'self_attn.';
    q = heads(linear(h1, p(`${at}q_proj.weight`), pb(`${at}q_proj.bias`, a.qkvBias)), H);
    k = heads(linear(h1, p(`${at}k_proj.weight`), pb(`${at}k_proj.bias`, a.qkvBias)), Hkv);
    v = heads(linear(h1, p(`${at}v_proj.weight`), pb(`${at}v_proj.bias`, a.qkvBias)), Hkv);
    outW = a.family === 'gptj' ? 'attn.out_proj' : 'self_attn.o_proj';
  }
  const rope = env.rope as { cos: tf.Tensor; sin: tf.Tensor };
  q = applyRotary(a, q, rope);
  k = applyRotary(a, k, rope);
  const [kAll, vAll] = withPast(env, l, k as tf.Tensor4D, v as tf.Tensor4D);
  const S = kAll.shape[2];
  // Grouped-query attention: the `rep` query heads of one kv head are stacked along T, so one batched matmul
  // serves them all (head h reads kv head floor(h / rep), as HF's repeat_kv does).
  const qg = rep > 1 ? tf.reshape(q, [B, Hkv, rep * T, hd]) : q;
  const raw = tf.reshape(tf.matMul(qg as tf.Tensor4D, kAll, false, true), [B, H, T, S]);
  const scaled = tf.mul(raw, 1 / Math.sqrt(hd));
  collectLeak(env, l, scaled);
  const scores = tf.add(scaled, mask);
  let probs = runHooks(hooks, `blocks.${l}.attn.pattern`, tf.softmax(scores, -1), ctx(`blocks.${l}.attn.pattern`));
  if (drop) probs = applyDropout(probs, drop, 1 + 3 * l);
  const pg = rep > 1 ? tf.reshape(probs, [B, Hkv, rep * T, S]) : probs;
  const heads4 = tf.reshape(tf.matMul(pg as tf.Tensor4D, vAll), [B, H, T, hd]);
  const ctxv = tf.reshape(tf.transpose(heads4, [0, 2, 1, 3]), [B, T, H * hd]);
  const attnOut = linear(ctxv, p(`${outW}.weight`), pb(`${outW}.bias`, a.outBias));
  let attn = runHooks(hooks, `blocks.${l}.attn`, attnOut, ctx(`blocks.${l}.attn`));
  if (drop) attn = applyDropout(attn, drop, 2 + 3 * l);

  // MLP: reads the block input (parallel) or the residual after attention (sequential).
  const mid = a.residual === 'sequential' ? tf.add(x, attn) : null;
  const h2 =
    a.residual === 'one_norm' ? h1 : norm(mid ?? x, 'post_attention_layernorm');
  let keyIn: tf.Tensor;
  let outName: string;
  if (a.gatedMlp) {
    const gate = activation(cfg.activationFunction, linear(h2, p('mlp.gate_proj.weight'), pb('mlp.gate_proj.bias', a.mlpBias)));
    keyIn = tf.mul(gate, linear(h2, p('mlp.up_proj.weight'), pb('mlp.up_proj.bias', a.mlpBias)));
    outName = 'mlp.down_proj';
  } else {
    const inName = a.family === 'gptj' ? 'mlp.fc_in' : 'mlp.dense_h_to_4h';
    keyIn = activation(cfg.activationFunction, linear(h2, p(`${inName}.weight`), pb(`${inName}.bias`, a.mlpBias)));
    outName = a.family === 'gptj' ? 'mlp.fc_out' : 'mlp.dense_4h_to_h';
  }
  const key = runHooks(hooks, `blocks.${l}.mlp.key`, keyIn, ctx(`blocks.${l}.mlp.key`));
  const mlpOut = linear(key, p(`${outName}.weight`), pb(`${outName}.bias`, a.mlpBias));
  let mlp = runHooks(hooks, `blocks.${l}.mlp`, mlpOut, ctx(`blocks.${l}.mlp`));
  if (drop) mlp = applyDropout(mlp, drop, 3 + 3 * l);
  const out = mid ? tf.add(mid, mlp) : tf.add(tf.add(mlp, attn), x);
  return runHooks(hooks, `blocks.${l}`, out, ctx(`blocks.${l}`));
}

/** Absolute positions [B][T] of this run's tokens. */
function positionsOf(opts: ForwardOptions, B: number, T: number, pastLen: number): number[][] {
  if (opts.positionIds) return opts.positionIds.arraySync() as number[][];
  return [Array.from({ length: T }, (_, t) => pastLen + t)];
}

/** Runs the model on token ids [B, T] (or from a middle layer); see ForwardOptions. Does not dispose its inputs. */
export function forward(params: GPT2Params, ids: tf.Tensor2D | null, opts: ForwardOptions = {}): ForwardOutput {
  const cfg = params.config;
  const L = cfg.nLayer;
  const d = cfg.nEmbd;
  const startLayer = opts.startLayer ?? 0;
  const endLayer = opts.endLayer ?? L;
  if (startLayer < 0 || startLayer > L || endLayer < startLayer || endLayer > L) {
    throw new Error(`forward: invalid layer range [${startLayer}, ${endLayer}) for a ${L}-layer model`);
  }
  const hooks = opts.hooks;
  if (opts.dropout) validateDropoutRate(opts.dropout.rate);
  const drop = opts.dropout && opts.dropout.rate > 0 ? opts.dropout : undefined;
  const pastLen = opts.past ? (opts.past.k[startLayer] ?? opts.past.k[0]).shape[2] : 0;

  const presentK: tf.Tensor4D[] = [];
  const presentV: tf.Tensor4D[] = [];
  const result = tf.tidy(() => {
    let x: tf.Tensor;
    let B: number;
    let T: number;
    if (!opts.residual) {
      if (startLayer !== 0) throw new Error(`forward: startLayer=${startLayer} needs the residual input of that block`);
      if (!ids) throw new Error('forward: ids are required when starting at layer 0 without a residual');
      [B, T] = ids.shape;
      if (pastLen + T > cfg.nPositions) {
        throw new Error(`forward: ${pastLen + T} positions exceed the model's context of ${cfg.nPositions}`);
      }
      const ctx0: HookContext = { name: 'embed', layer: null, positionOffset: pastLen };
      const tok = runHooks(hooks, 'embed', tf.gather(params.get(embedParam(cfg)), ids), ctx0);
      if (cfg.arch) {
        // Rotary families have no position embedding: positions enter inside attention.
        x = tok;
      } else {
        const pos = opts.positionIds ?? tf.tile(tf.expandDims(tf.range(pastLen, pastLen + T, 1, 'int32'), 0), [B, 1]);
        const pe = runHooks(hooks, 'pos_embed', tf.gather(params.get('wpe.weight'), pos as tf.Tensor2D), {
          ...ctx0,
          name: 'pos_embed',
        });
        x = tf.add(tok, pe);
      }
      if (drop) x = applyDropout(x, drop, 0);
    } else {
      x = opts.residual;
      [B, T] = x.shape as [number, number];
    }
    const S = pastLen + T;
    let mask: tf.Tensor = causalMask(T, S, cfg.arch?.slidingWindow ?? null);
    if (opts.attentionMask) {
      if (opts.attentionMask.shape[0] !== B || opts.attentionMask.shape[1] !== S) {
        throw new Error(`forward: attentionMask has shape [${opts.attentionMask.shape}], expected [${B}, ${S}]`);
      }
      const pad = tf.reshape(tf.mul(tf.sub(1, tf.cast(opts.attentionMask, 'float32')), -1e9), [B, 1, 1, S]);
      mask = tf.add(mask, pad);
    }
    let knockoutMask: tf.Tensor | null = null;
    let cutEdges: tf.Tensor | null = null;
    if (opts.knockout) {
      const kb = opts.knockout.bias;
      if (kb.rank !== 4 || (kb.shape[0] !== B && kb.shape[0] !== 1) || kb.shape[1] !== 1 || kb.shape[2] !== T || kb.shape[3] !== S) {
        throw new Error(`forward: knockout bias has shape [${kb.shape}], expected [${B} or 1, 1, ${T}, ${S}]`);
      }
      for (const l of opts.knockout.layers) {
        if (!Number.isInteger(l) || l < 0 || l >= L) throw new Error(`forward: knockout layer ${l} is not a layer of a ${L}-layer model`);
      }
      knockoutMask = tf.add(mask, kb);
      if (opts.knockout.leak) cutEdges = tf.cast(tf.less(kb, -1), 'float32');
    }
    const env: BlockEnv = {
      params,
      opts,
      drop,
      mask,
      knockoutMask,
      cutEdges,
      B,
      T,
      pastLen,
      rope: cfg.arch && endLayer > startLayer ? rotaryTables(cfg.arch, positionsOf(opts, B, T, pastLen)) : null,
      presentK,
      presentV,
    };
    const block = cfg.arch ? archBlock : gpt2Block;
    for (let l = startLayer; l < endLayer; l++) {
      // One scope per block: a block's intermediates are freed as soon as it is done (a 4 GB WASM heap fills fast).
      const xIn: tf.Tensor = x;
      x = tf.tidy(() => block(env, l, xIn));
    }
    const hidden = x as tf.Tensor3D;
    const which = opts.logits ?? 'all';
    if (endLayer < L || which === 'none') return { hidden };
    const ctxF: HookContext = { name: 'final_norm', layer: null, positionOffset: pastLen };
    let hf = runHooks(hooks, 'final_norm', finalNorm(params, x), ctxF);
    if (which !== 'all') {
      if (which.length !== B) throw new Error(`forward: logits positions has ${which.length} entries for batch ${B}`);
      const flat = which.map((t, b) => {
        if (!Number.isInteger(t) || t < 0 || t >= T) throw new Error(`forward: logits position ${t} out of range [0, ${T})`);
        return b * T + t;
      });
      hf = tf.gather(tf.reshape(hf, [B * T, d]), tf.tensor1d(flat, 'int32'));
    }
    const logits = runHooks(hooks, 'logits', unembed(params, hf), { ...ctxF, name: 'logits' });
    return { hidden, logits };
  });
  return {
    hidden: result.hidden,
    logits: (result as { logits?: tf.Tensor }).logits ?? null,
    present: opts.returnPresent ? { k: presentK, v: presentV } : null,
  };
}

/** The final norm (LayerNorm, or RMSNorm for LLaMA-style) of residual states [..., d]. */
export function finalNorm(params: GPT2Params, h: tf.Tensor): tf.Tensor {
  const cfg = params.config;
  const n = finalNormParams(cfg);
  return n.bias === null
    ? rmsNorm(h, params.get(n.weight), cfg.layerNormEpsilon)
    : layerNorm(h, params.get(n.weight), params.get(n.bias), cfg.layerNormEpsilon);
}

/** Final-norm output h [..., d] → logits [..., V] through the (tied or separate) unembedding (plus GPT-J's bias). */
export function unembed(params: GPT2Params, h: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const d = params.config.nEmbd;
    const shape = h.shape.slice(0, -1);
    const flat = tf.reshape(h, [-1, d]);
    let logits: tf.Tensor = tf.matMul(flat as tf.Tensor2D, params.unembedding());
    const bias = headBiasParam(params.config);
    if (bias) logits = tf.add(logits, params.get(bias));
    return tf.reshape(logits, [...shape, logits.shape[1] as number]);
  });
}

/** Logit lens: residual states [..., d] → logits [..., V] through the final norm and unembedding. */
export function logitLens(params: GPT2Params, h: tf.Tensor): tf.Tensor {
  return tf.tidy(() => unembed(params, finalNorm(params, h)));
}

/** Disposes every tensor of a KV cache. */
export function disposeKV(kv: KVCache | null | undefined): void {
  if (!kv) return;
  for (const t of kv.k) t.dispose();
  for (const t of kv.v) t.dispose();
}
