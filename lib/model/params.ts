/**
 * GPT-2 parameters as named TensorFlow.js variables (HF names without the `transformer.` prefix), with
 * read/replace/restore access for editing.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GPT2Config } from '../io/config.js';
import { archParamSpecs, embedParam, headParam } from './family.js';

/** Names and shapes of every parameter a model of this config has (the output head only when untied). */
export function paramShapes(cfg: GPT2Config): Map<string, number[]> {
  if (cfg.arch) return new Map(archParamSpecs(cfg).map((s) => [s.name, s.shape]));
  const d = cfg.nEmbd;
  const m = new Map<string, number[]>();
  m.set('wte.weight', [cfg.vocabSize, d]);
  m.set('wpe.weight', [cfg.nPositions, d]);
  for (let l = 0; l < cfg.nLayer; l++) {
    m.set(`h.${l}.ln_1.weight`, [d]);
    m.set(`h.${l}.ln_1.bias`, [d]);
    m.set(`h.${l}.attn.c_attn.weight`, [d, 3 * d]);
    m.set(`h.${l}.attn.c_attn.bias`, [3 * d]);
    m.set(`h.${l}.attn.c_proj.weight`, [d, d]);
    m.set(`h.${l}.attn.c_proj.bias`, [d]);
    m.set(`h.${l}.ln_2.weight`, [d]);
    m.set(`h.${l}.ln_2.bias`, [d]);
    m.set(`h.${l}.mlp.c_fc.weight`, [d, cfg.nInner]);
    m.set(`h.${l}.mlp.c_fc.bias`, [cfg.nInner]);
    m.set(`h.${l}.mlp.c_proj.weight`, [cfg.nInner, d]);
    m.set(`h.${l}.mlp.c_proj.bias`, [d]);
  }
  m.set('ln_f.weight', [d]);
  m.set('ln_f.bias', [d]);
  if (!cfg.tieWordEmbeddings) m.set('lm_head.weight', [cfg.vocabSize, d]);
  return m;
}

/** A saved copy of one parameter, for bit-exact restore. */
export interface ParamSnapshot {
  readonly name: string;
  readonly data: Float32Array;
  readonly shape: readonly number[];
}

/** The parameters of one model (any family; see family.ts for names and layouts); owns its variables. */
export class GPT2Params {
  readonly config: GPT2Config;
  private readonly vars = new Map<string, tf.Variable>();
  private unembedCache: tf.Tensor2D | null = null;
  /** When true, the unembedding is computed in-graph so that gradients reach the embedding matrix. */
  training = false;

  constructor(config: GPT2Config, weights: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>) {
    this.config = config;
    for (const [name, shape] of paramShapes(config)) {
      const w = weights.get(name);
      if (!w) throw new Error(`missing parameter "${name}"`);
      if (w.shape.length !== shape.length || w.shape.some((s, i) => s !== shape[i])) {
        throw new Error(`parameter "${name}" has shape [${w.shape}], expected [${shape}]`);
      }
      for (let i = 0; i < w.data.length; i++) {
        if (w.data[i] - w.data[i] !== 0) throw new Error(`parameter "${name}" holds a non-finite value (${w.data[i]} at flat index ${i})`);
      }
      const init = tf.tensor(w.data, shape, 'float32');
      this.vars.set(name, tf.variable(init, true, `rome_ts/${name}/${uid()}`));
      init.dispose();
    }
  }

  /** Parameter names in a stable order. */
  names(): string[] {
    return [...this.vars.keys()];
  }

  /** The live variable of a parameter (do not dispose it). */
  get(name: string): tf.Variable {
    const v = this.vars.get(name);
    if (!v) throw new Error(`unknown parameter "${name}" (have e.g. ${this.names().slice(0, 4).join(', ')}, ...)`);
    return v;
  }

  /** All variables (for optimisers). */
  variables(): tf.Variable[] {
    return [...this.vars.values()];
  }

  /** Replaces a parameter's value (copied); the shape must match. */
  set(name: string, value: tf.Tensor): void {
    const v = this.get(name);
    if (value.shape.length !== v.shape.length || value.shape.some((s, i) => s !== v.shape[i])) {
      throw new Error(`set("${name}"): shape [${value.shape}] does not match [${v.shape}]`);
    }
    v.assign(value.dtype === 'float32' ? value : tf.cast(value, 'float32'));
    if (name === embedParam(this.config) || name === headParam(this.config)) this.invalidate();
  }

  /** Copies a parameter's current value out (for a bit-exact restore later). */
  snapshot(name: string): ParamSnapshot {
    const v = this.get(name);
    return { name, data: (v.dataSync() as Float32Array).slice(), shape: [...v.shape] };
  }

  /** Restores a parameter from a snapshot, bit for bit. */
  restore(s: ParamSnapshot): void {
    const t = tf.tensor(s.data, [...s.shape], 'float32');
    this.set(s.name, t);
    t.dispose();
  }

  /** Marks derived caches stale (call after changing embedding weights in place). */
  invalidate(): void {
    this.unembedCache?.dispose();
    this.unembedCache = null;
  }

  /** The unembedding matrix [d, V] (transposed once and cached, except in training mode). */
  unembedding(): tf.Tensor2D {
    const src = this.get(headParam(this.config));
    if (this.training) return tf.transpose(src) as tf.Tensor2D;
    if (!this.unembedCache || this.unembedCache.isDisposed) {
      this.unembedCache = tf.keep(tf.transpose(src) as tf.Tensor2D);
    }
    return this.unembedCache;
  }

  /** Number of scalar parameters. */
  count(): number {
    let n = 0;
    for (const v of this.vars.values()) n += v.size;
    return n;
  }

  /** Current values of every parameter (copies), for saving. */
  toWeights(): Map<string, { shape: number[]; data: Float32Array }> {
    const m = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, v] of this.vars) m.set(name, { shape: [...v.shape], data: (v.dataSync() as Float32Array).slice() });
    return m;
  }

  /** Frees every variable. */
  dispose(): void {
    this.invalidate();
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}

let counter = 0;
function uid(): string {
  counter += 1;
  return `${Date.now().toString(36)}_${counter}`;
}
