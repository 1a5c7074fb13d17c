/** Small statistics helpers for the result tables. */

/** Mean and 95% confidence half-width 1.96·s/√n (s: sample standard deviation); NaN for no values. */
export function meanCI(xs: readonly number[]): { mean: number; ci: number; n: number } {
  const n = xs.length;
  if (n === 0) return { mean: NaN, ci: NaN, n };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { mean, ci: 0, n };
  const v = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
  return { mean, ci: (1.96 * Math.sqrt(v)) / Math.sqrt(n), n };
}

/** Harmonic mean (0 when any value is 0; NaN when any is NaN). */
export function harmonicMean(xs: readonly number[]): number {
  if (xs.some((x) => Number.isNaN(x))) return NaN;
  if (xs.some((x) => x <= 0)) return 0;
  return xs.length / xs.reduce((a, b) => a + 1 / b, 0);
}

/** Mean of a list (NaN when empty). */
export function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}
