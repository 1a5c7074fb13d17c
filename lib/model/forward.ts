/**
 * The one GPT-2 forward pass. Capture, patching, tracing, KV-cached generation, partial recomputation from a
 * middle layer, and training all go through `forward`; they differ only in the options they pass.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { HookContext, HookFn, HookSet } from '../hooks.js';
import type { GPT2Params } from './params.js';
import { applyDropout, validateDropoutRate, type DropoutSpec } from './dropout.js';

/** Per-layer attention keys and values of earlier positions: k[l], v[l] are [B, H, S_past, d_head]. */
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
        const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), SQRT_2_OVER_PI);
        return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
      });
    case 'gelu':
      return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)));
    case 'relu':
      return tf.relu(x);
    default:
      throw new Error(`unsupported activation_function "${name}"`);
  }
}

/** x [B,T,din] @ w [din,dout] + b, as a 2-D matmul (the fast path on every backend). */
function linear(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const [B, T, din] = x.shape as [number, number, number];
  const y = tf.add(tf.matMul(tf.reshape(x, [B * T, din]), w as tf.Tensor2D), b);
  return tf.reshape(y, [B, T, w.shape[1] as number]);
}

const maskCache = new Map<string, tf.Tensor2D>();

/** Additive causal mask [T, S]: query t (absolute pos offset+t) sees key s iff s <= offset+t. Cached. */
function causalMask(T: number, S: number): tf.Tensor2D {
  const key = `${T}x${S}`;
  let m = maskCache.get(key);
  if (!m || m.isDisposed) {
    const offset = S - T;
    const data = new Float32Array(T * S);
    for (let t = 0; t < T; t++) for (let s = offset + t + 1; s < S; s++) data[t * S + s] = -1e9;
    m = tf.keep(tf.tensor2d(data, [T, S]));
    if (maskCache.size > 64) {
      for (const v of maskCache.values()) v.dispose();
      maskCache.clear();
    }
    maskCache.set(key, m);
  }
  return m;
}

/** Runs GPT-2 on token ids [B, T] (or from a middle layer); see ForwardOptions. Does not dispose its inputs. */
export function forward(params: GPT2Params, ids: tf.Tensor2D | null, opts: ForwardOptions = {}): ForwardOutput {
  const cfg = params.config;
  const L = cfg.nLayer;
  const H = cfg.nHead;
  const d = cfg.nEmbd;
  const hd = d / H;
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
      const tok = runHooks(hooks, 'embed', tf.gather(params.get('wte.weight'), ids), ctx0);
      const pos = opts.positionIds ?? tf.tile(tf.expandDims(tf.range(pastLen, pastLen + T, 1, 'int32'), 0), [B, 1]);
      const pe = runHooks(hooks, 'pos_embed', tf.gather(params.get('wpe.weight'), pos as tf.Tensor2D), {
        ...ctx0,
        name: 'pos_embed',
      });
      x = tf.add(tok, pe);
      if (drop) x = applyDropout(x, drop, 0);
    } else {
      x = opts.residual;
      [B, T] = x.shape as [number, number];
    }
    const S = pastLen + T;
    let mask: tf.Tensor = causalMask(T, S);
    if (opts.attentionMask) {
      if (opts.attentionMask.shape[0] !== B || opts.attentionMask.shape[1] !== S) {
        throw new Error(`forward: attentionMask has shape [${opts.attentionMask.shape}], expected [${B}, ${S}]`);
      }
      const pad = tf.reshape(tf.mul(tf.sub(1, tf.cast(opts.attentionMask, 'float32')), -1e9), [B, 1, 1, S]);
      mask = tf.add(mask, pad);
    }
    const scale = 1 / Math.sqrt(hd);
    for (let l = startLayer; l < endLayer; l++) {
      // One scope per block: a block's intermediates are freed as soon as it is done (a 4 GB WASM heap fills fast).
      const xIn: tf.Tensor = x;
      x = tf.tidy(() => {
        let x = xIn;
        const p = (n: string) => params.get(`h.${l}.${n}`);
        const ctx = (name: string): HookContext => ({ name, layer: l, positionOffset: pastLen });
        // Attention.
        const h1 = layerNorm(x, p('ln_1.weight'), p('ln_1.bias'), cfg.layerNormEpsilon);
        const qkv = linear(h1, p('attn.c_attn.weight'), p('attn.c_attn.bias'));
        const [q, k, v] = tf.split(qkv, 3, -1).map((t) => tf.transpose(tf.reshape(t, [B, T, H, hd]), [0, 2, 1, 3]));
        let kAll = k as tf.Tensor4D;
        let vAll = v as tf.Tensor4D;
        if (opts.past) {
          kAll = tf.concat([opts.past.k[l], kAll], 2);
          vAll = tf.concat([opts.past.v[l], vAll], 2);
        }
        if (opts.returnPresent) {
          presentK.push(tf.keep(kAll));
          presentV.push(tf.keep(vAll));
        }
        const scores = tf.add(tf.mul(tf.matMul(q as tf.Tensor4D, kAll, false, true), scale), mask);
        let probs = runHooks(hooks, `blocks.${l}.attn.pattern`, tf.softmax(scores, -1), ctx(`blocks.${l}.attn.pattern`));
        // Sites 1 + 3l … 3 + 3l: one independent mask per place and layer (site 0 is the embeddings).
        if (drop) probs = applyDropout(probs, drop, 1 + 3 * l);
        const ctxv = tf.reshape(tf.transpose(tf.matMul(probs as tf.Tensor4D, vAll), [0, 2, 1, 3]), [B, T, d]);
        let attn = runHooks(
          hooks,
          `blocks.${l}.attn`,
          linear(ctxv, p('attn.c_proj.weight'), p('attn.c_proj.bias')),
          ctx(`blocks.${l}.attn`),
        );
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
        let mlp = runHooks(
          hooks,
          `blocks.${l}.mlp`,
          linear(key, p('mlp.c_proj.weight'), p('mlp.c_proj.bias')),
          ctx(`blocks.${l}.mlp`),
        );
        if (drop) mlp = applyDropout(mlp, drop, 3 + 3 * l);
        return runHooks(hooks, `blocks.${l}`, tf.add(x, mlp), ctx(`blocks.${l}`));
      });
    }
    const hidden = x as tf.Tensor3D;
    const which = opts.logits ?? 'all';
    if (endLayer < L || which === 'none') return { hidden };
    const ctxF: HookContext = { name: 'final_norm', layer: null, positionOffset: pastLen };
    let hf = runHooks(hooks, 'final_norm', layerNorm(x, params.get('ln_f.weight'), params.get('ln_f.bias'), cfg.layerNormEpsilon), ctxF);
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

/** Final-norm output h [..., d] → logits [..., V] through the (tied or separate) unembedding. */
export function unembed(params: GPT2Params, h: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const d = params.config.nEmbd;
    const shape = h.shape.slice(0, -1);
    const flat = tf.reshape(h, [-1, d]);
    const logits = tf.matMul(flat as tf.Tensor2D, params.unembedding());
    return tf.reshape(logits, [...shape, logits.shape[1] as number]);
  });
}

/** Logit lens: residual states [..., d] → logits [..., V] through the final norm and unembedding. */
export function logitLens(params: GPT2Params, h: tf.Tensor): tf.Tensor {
  return tf.tidy(() =>
    unembed(params, layerNorm(h, params.get('ln_f.weight'), params.get('ln_f.bias'), params.config.layerNormEpsilon)),
  );
}

/** Disposes every tensor of a KV cache. */
export function disposeKV(kv: KVCache | null | undefined): void {
  if (!kv) return;
  for (const t of kv.k) t.dispose();
  for (const t of kv.v) t.dispose();
}
