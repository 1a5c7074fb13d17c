/**
 * Readable summaries of tensors for display: name, shape, dtype, basic statistics and the first few values.
 * Works on anything tensor-shaped (rome-ts TensorHandle, tf.Tensor) through a structural type, so this module
 * does not depend on the model code.
 */

/** Anything that can be summarised: a rome-ts TensorHandle, a tf.Tensor, or similar. */
export interface TensorLike {
  readonly shape: readonly number[];
  readonly name?: string;
  readonly dtype?: string;
  /** Nested arrays of the values (TensorHandle and tf.Tensor both have it). */
  array(): Promise<unknown>;
}

/** Statistics over all finite values of a tensor. */
export interface TensorStats {
  count: number;
  min: number;
  max: number;
  mean: number;
  std: number;
  /** Number of NaN or infinite values (excluded from the other statistics). */
  nonFinite: number;
}

/** Flatten nested arrays of numbers (row-major). Booleans count as 0/1; anything else is rejected. */
export function flattenNumbers(x: unknown, out: number[] = []): number[] {
  if (Array.isArray(x)) {
    for (const v of x) flattenNumbers(v, out);
  } else if (typeof x === 'number') {
    out.push(x);
  } else if (typeof x === 'boolean') {
    out.push(x ? 1 : 0);
  } else {
    throw new TypeError(`expected numeric tensor values, got ${typeof x}`);
  }
  return out;
}

/** Statistics of a flat list of values. */
export function tensorStats(values: readonly number[]): TensorStats {
  let count = 0;
  let sum = 0;
  let sumSq = 0;
  let min = Infinity;
  let max = -Infinity;
  let nonFinite = 0;
  for (const v of values) {
    if (!Number.isFinite(v)) {
      nonFinite++;
      continue;
    }
    count++;
    sum += v;
    sumSq += v * v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mean = count ? sum / count : NaN;
  const variance = count ? Math.max(0, sumSq / count - mean * mean) : NaN;
  return { count, min: count ? min : NaN, max: count ? max : NaN, mean, std: Math.sqrt(variance), nonFinite };
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v !== 0 && (Math.abs(v) >= 1e5 || Math.abs(v) < 1e-3)) return v.toExponential(3);
  return Number(v.toPrecision(4)).toString();
}

/** Multi-line plain-text summary of a tensor given its flat row-major values. */
export function formatTensorSummary(t: Pick<TensorLike, 'shape' | 'name' | 'dtype'>, flat: readonly number[], maxValues = 8): string {
  const shape = [...t.shape];
  const size = shape.reduce((a, b) => a * b, 1);
  const head = `${t.name ? `${t.name}  ` : ''}shape [${shape.join(', ')}]  ${t.dtype ?? 'float32'}  (${size} values)`;
  if (size === 0) return `${head}\n  (empty)`;
  const s = tensorStats(flat);
  const stats = `  min ${fmt(s.min)}  max ${fmt(s.max)}  mean ${fmt(s.mean)}  std ${fmt(s.std)}${s.nonFinite ? `  non-finite ${s.nonFinite}` : ''}`;
  const last = shape.length ? shape[shape.length - 1]! : 1;
  const shown = flat.slice(0, Math.min(maxValues, last));
  const index = shape.length > 1 ? `[${shape.slice(0, -1).map(() => '0').join(', ')}, :${shown.length}]` : `[:${shown.length}]`;
  const more = last > shown.length ? ', ...' : '';
  return `${head}\n${stats}\n  ${shape.length ? index : ''}${shape.length ? ' = ' : ''}[${shown.map(fmt).join(', ')}${more}]`;
}

/** Read a tensor's values and return its plain-text summary. */
export async function summarizeTensor(t: TensorLike, maxValues = 8): Promise<string> {
  const flat = flattenNumbers(await t.array());
  return formatTensorSummary(t, flat, maxValues);
}

/** Read a tensor as a 2-D grid, dropping leading size-1 axes (e.g. a [1, T, V] state becomes [T, V]). */
export async function tensorTo2D(t: TensorLike): Promise<number[][]> {
  const shape = [...t.shape];
  while (shape.length > 2 && shape[0] === 1) shape.shift();
  if (shape.length !== 2) {
    throw new Error(`need a 2-D tensor (after dropping leading size-1 axes), got shape [${t.shape.join(', ')}]${t.name ? ` for ${t.name}` : ''}; slice it first`);
  }
  const flat = flattenNumbers(await t.array());
  const [rows, cols] = shape as [number, number];
  return Array.from({ length: rows }, (_, r) => flat.slice(r * cols, (r + 1) * cols));
}
