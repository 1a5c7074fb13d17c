/**
 * AdamW with global-norm gradient clipping and a warm-up + cosine learning-rate schedule, as plain tf ops on
 * named variables, so that its moments can be read out and written back bit for bit (checkpoints).
 *
 * Weight decay is decoupled (p ← p − lr·wd·p, as in Loshchilov & Hutter / PyTorch AdamW) and applies to every
 * parameter of rank ≥ 2: the weight matrices and both embeddings. Biases and layer-norm gains/biases are not
 * decayed (decaying a gain pulls it towards 0, not towards its initial 1). Decaying the tied embedding keeps the
 * unembedding from growing without bound on a small corpus that the model partly memorises.
 */
import * as tf from '@tensorflow/tfjs-core';

/** AdamW hyperparameters. */
export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay coefficient (multiplied by the current lr). Default 0.1. */
  weightDecay?: number;
  /** Clip the global L2 norm of all gradients to this value before the update; 0 or Infinity disables. */
  clipNorm?: number;
  /** Which parameters get weight decay; default: rank ≥ 2. */
  decay?: (name: string, shape: readonly number[]) => boolean;
}

/** A named trainable parameter. */
export interface NamedVariable {
  name: string;
  variable: tf.Variable;
}

/** Serialisable optimizer state: step count and first/second moments per parameter. */
export interface AdamWState {
  step: number;
  m: Map<string, { shape: number[]; data: Float32Array }>;
  v: Map<string, { shape: number[]; data: Float32Array }>;
}

/** What one optimizer step reports. */
export interface StepInfo {
  /** Global L2 norm of the gradients before clipping. */
  gradNorm: number;
}

/** AdamW over a fixed list of named variables; see the module comment. */
export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly clipNorm: number;
  private readonly params: NamedVariable[];
  private readonly decays: boolean[];
  private readonly m: tf.Variable[];
  private readonly v: tf.Variable[];
  private t = 0;

  constructor(params: NamedVariable[], opts: AdamWOptions = {}) {
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.95;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.1;
    this.clipNorm = opts.clipNorm ?? 1;
    const decay = opts.decay ?? ((_n: string, shape: readonly number[]) => shape.length >= 2);
    const names = new Set<string>();
    for (const p of params) {
      if (names.has(p.name)) throw new Error(`AdamW: duplicate parameter name "${p.name}"`);
      names.add(p.name);
    }
    this.params = params;
    this.decays = params.map((p) => decay(p.name, p.variable.shape));
    this.m = params.map((p) => tf.variable(tf.zerosLike(p.variable), false));
    this.v = params.map((p) => tf.variable(tf.zerosLike(p.variable), false));
  }

  /** Number of updates applied so far. */
  get step(): number {
    return this.t;
  }

  /**
   * Applies one update with learning rate `lr` from gradients keyed by parameter name (every parameter needs
   * one). Gradients stay owned by the caller. Reads back one scalar (the gradient norm).
   */
  apply(grads: ReadonlyMap<string, tf.Tensor> | Record<string, tf.Tensor>, lr: number): StepInfo {
    const get = (n: string): tf.Tensor | undefined =>
      grads instanceof Map ? grads.get(n) : (grads as Record<string, tf.Tensor>)[n];
    const gs = this.params.map((p) => {
      const g = get(p.name);
      if (!g) throw new Error(`AdamW.apply: no gradient for "${p.name}"`);
      return g;
    });
    this.t += 1;
    const t = this.t;
    const bc1 = 1 - Math.pow(this.beta1, t);
    const bc2 = 1 - Math.pow(this.beta2, t);
    const normT = tf.tidy(() => tf.sqrt(tf.addN(gs.map((g) => tf.sum(tf.square(g))))));
    const gradNorm = (normT.dataSync() as Float32Array)[0] as number;
    normT.dispose();
    const clip = this.clipNorm > 0 && Number.isFinite(this.clipNorm) && gradNorm > this.clipNorm ? this.clipNorm / gradNorm : 1;
    tf.tidy(() => {
      for (let i = 0; i < this.params.length; i++) {
        const p = this.params[i]!.variable;
        const m = this.m[i]!;
        const v = this.v[i]!;
        const g = clip === 1 ? gs[i]! : tf.mul(gs[i]!, clip);
        const m1 = tf.add(tf.mul(m, this.beta1), tf.mul(g, 1 - this.beta1));
        const v1 = tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
        // lr/bc1 · m / (sqrt(v/bc2) + eps), the bias-corrected Adam step.
        const upd = tf.div(tf.mul(m1, lr / bc1), tf.add(tf.sqrt(tf.mul(v1, 1 / bc2)), this.eps));
        const decayed = this.decays[i] && this.weightDecay > 0 ? tf.mul(p, 1 - lr * this.weightDecay) : p;
        p.assign(tf.sub(decayed, upd));
        m.assign(m1);
        v.assign(v1);
      }
    });
    return { gradNorm };
  }

  /** Copies of the step count and moments (for checkpoints). */
  getState(): AdamWState {
    const m = new Map<string, { shape: number[]; data: Float32Array }>();
    const v = new Map<string, { shape: number[]; data: Float32Array }>();
    this.params.forEach((p, i) => {
      m.set(p.name, { shape: [...p.variable.shape], data: (this.m[i]!.dataSync() as Float32Array).slice() });
      v.set(p.name, { shape: [...p.variable.shape], data: (this.v[i]!.dataSync() as Float32Array).slice() });
    });
    return { step: this.t, m, v };
  }

  /** Restores a state saved by getState (same parameter names and shapes). */
  setState(s: AdamWState): void {
    this.params.forEach((p, i) => {
      for (const [which, src, dst] of [['m', s.m, this.m[i]!], ['v', s.v, this.v[i]!]] as const) {
        const w = src.get(p.name);
        if (!w) throw new Error(`AdamW.setState: no ${which} for "${p.name}"`);
        if (w.shape.length !== p.variable.shape.length || w.shape.some((d, k) => d !== p.variable.shape[k])) {
          throw new Error(`AdamW.setState: ${which} of "${p.name}" has shape [${w.shape}], expected [${p.variable.shape}]`);
        }
        const tt = tf.tensor(w.data, w.shape, 'float32');
        dst.assign(tt);
        tt.dispose();
      }
    });
    this.t = s.step;
  }

  /** Frees the moment variables (not the parameters). */
  dispose(): void {
    for (const x of [...this.m, ...this.v]) x.dispose();
  }
}

/** Learning-rate schedule: linear warm-up over `warmup` steps, then cosine from `lr` to `minLr` at `steps`. */
export interface LrSchedule {
  lr: number;
  minLr: number;
  warmup: number;
  steps: number;
}

/** Learning rate for 0-based update number `step` (the first update uses lr·1/warmup). */
export function lrAt(step: number, s: LrSchedule): number {
  if (s.warmup > 0 && step < s.warmup) return (s.lr * (step + 1)) / s.warmup;
  const span = Math.max(1, s.steps - s.warmup);
  const progress = Math.min(1, Math.max(0, (step - s.warmup) / span));
  return s.minLr + 0.5 * (s.lr - s.minLr) * (1 + Math.cos(Math.PI * progress));
}
