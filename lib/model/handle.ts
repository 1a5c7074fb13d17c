/**
 * Tensor handles: a captured state with its name, shape and token positions, owned by the caller.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Nested number arrays as returned by `array()`. */
export type NestedNumbers = number | NestedNumbers[];

/** A named tensor captured from (or made for) a run; call `dispose()` when done. */
export class TensorHandle {
  readonly name: string;
  readonly tensor: tf.Tensor;
  /** Token strings along the position axis, when known (one list per batch row). */
  readonly tokens: readonly (readonly string[])[] | null;

  constructor(name: string, tensor: tf.Tensor, tokens: readonly (readonly string[])[] | null = null) {
    this.name = name;
    this.tensor = tensor;
    this.tokens = tokens;
  }

  /** Shape, e.g. [B, T, d]. */
  get shape(): number[] {
    return this.tensor.shape;
  }

  /** Element type ('float32' for every state). */
  get dtype(): tf.DataType {
    return this.tensor.dtype;
  }

  /** Whether the underlying tensor was freed. */
  get isDisposed(): boolean {
    return this.tensor.isDisposed;
  }

  /** Values as nested arrays (copy). */
  async array(): Promise<NestedNumbers> {
    this.assertAlive();
    return (await this.tensor.array()) as NestedNumbers;
  }

  /** Values as a flat typed array (copy), row-major. */
  async data(): Promise<Float32Array> {
    this.assertAlive();
    return (await this.tensor.data()) as Float32Array;
  }

  /** Values as a flat typed array, synchronously. */
  dataSync(): Float32Array {
    this.assertAlive();
    return this.tensor.dataSync() as Float32Array;
  }

  /** A new handle holding rows `[batch, positions]` of this one (keeps the tensor's trailing axes). */
  slice(batch: number, positions?: readonly number[]): TensorHandle {
    this.assertAlive();
    const t = tf.tidy(() => {
      const row = tf.gather(this.tensor, [batch]);
      return positions ? tf.gather(row, [...positions], 1) : row;
    });
    const toks = this.tokens?.[batch];
    return new TensorHandle(
      `${this.name}[${batch}]`,
      t,
      toks ? [positions ? positions.map((p) => toks[p] ?? '') : [...toks]] : null,
    );
  }

  /** Frees the tensor; later reads throw. Safe to call twice. */
  dispose(): void {
    if (!this.tensor.isDisposed) this.tensor.dispose();
  }

  /** Short human summary: name, shape, and a few values. */
  summary(maxValues = 6): string {
    if (this.isDisposed) return `TensorHandle(${this.name}, disposed)`;
    const vals = this.tensor.dataSync();
    const shown = Array.from(vals.slice(0, maxValues), (v) => Number(v).toPrecision(4));
    let min = Infinity;
    let max = -Infinity;
    let sum = 0;
    for (const v of vals) {
      if (v < min) min = v;
      if (v > max) max = v;
      sum += v;
    }
    const mean = vals.length ? sum / vals.length : NaN;
    return (
      `TensorHandle(${this.name}, shape=[${this.shape.join(', ')}], ${this.dtype}) ` +
      `[${shown.join(', ')}${vals.length > maxValues ? ', …' : ''}] ` +
      `min=${min.toPrecision(4)} max=${max.toPrecision(4)} mean=${mean.toPrecision(4)}`
    );
  }

  toString(): string {
    return this.summary();
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.summary();
  }

  private assertAlive(): void {
    if (this.tensor.isDisposed) throw new Error(`TensorHandle "${this.name}" was disposed`);
  }
}
