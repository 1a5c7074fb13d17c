/**
 * Solving C x = k for ROME's left vector, where C = E[k kᵀ] (layerStats) or C = I. Float64 Cholesky, factored
 * once per C and reused for every edit at that layer.
 */

/** Something that solves C x = k for the keys of one layer. */
export interface CovarianceSolver {
  readonly kind: 'identity' | 'mom2';
  /** Dimension (nInner). */
  readonly n: number;
  /** Corpus tokens behind C (0 for the identity). */
  readonly tokens: number;
  /** x = C⁻¹ k. */
  solve(k: ArrayLike<number>): Float64Array;
}

/** C = I: u ∝ k* (the explicit no-statistics option). */
export function identitySolver(n: number): CovarianceSolver {
  return { kind: 'identity', n, tokens: 0, solve: (k) => Float64Array.from(k) };
}

/** In-place Cholesky of a symmetric positive-definite n×n row-major matrix (lower triangle); false if not PD. */
export function choleskyInPlace(a: Float64Array, n: number): boolean {
  for (let j = 0; j < n; j++) {
    const rj = j * n;
    let s = a[rj + j];
    for (let k = 0; k < j; k++) s -= a[rj + k] * a[rj + k];
    if (!(s > 0)) return false;
    const ljj = Math.sqrt(s);
    a[rj + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      const ri = i * n;
      let t = a[ri + j];
      for (let k = 0; k < j; k++) t -= a[ri + k] * a[rj + k];
      a[ri + j] = t / ljj;
    }
  }
  return true;
}

/** Solves L Lᵀ x = b with the lower factor L (row-major n×n). */
export function choleskySolve(l: Float64Array, n: number, b: ArrayLike<number>): Float64Array {
  const y = Float64Array.from(b);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    let s = y[i];
    for (let k = 0; k < i; k++) s -= l[ri + k] * y[k];
    y[i] = s / l[ri + i];
  }
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i];
    for (let k = i + 1; k < n; k++) s -= l[k * n + i] * y[k];
    y[i] = s / l[i * n + i];
  }
  return y;
}

/**
 * Solver for C = sum / count. When C is singular (fewer tokens than dimensions, dead neurons) a ridge
 * λ = 1e-6 · mean(diag C) is added and then increased ×10 until the factorisation succeeds; `ridge` reports it.
 */
export function mom2Solver(sum: Float64Array, count: number, n: number): CovarianceSolver & { ridge: number } {
  if (sum.length !== n * n) throw new Error(`mom2Solver: sum has ${sum.length} entries, expected ${n}²`);
  if (!(count > 0) || !Number.isFinite(count)) throw new Error(`mom2Solver: token count must be a positive number, got ${count}`);
  // A NaN or ±Infinity anywhere (NaN weights, a corrupt cache) makes every ridge fail; name the cause instead.
  for (let i = 0; i < sum.length; i++) {
    if (!Number.isFinite(sum[i])) {
      throw new Error(
        `mom2Solver: the key statistics hold a non-finite value (${sum[i]} at row ${Math.floor(i / n)}, column ${i % n}); ` +
          'the model weights or the statistics cache are corrupt',
      );
    }
  }
  let meanDiag = 0;
  for (let i = 0; i < n; i++) meanDiag += sum[i * n + i] / count;
  meanDiag /= n;
  // With a zero diagonal no ridge scale exists (1e-6 · 0 = 0) and the ridge search never ends.
  if (!(meanDiag > 0)) {
    throw new Error(`mom2Solver: the key statistics have no positive diagonal (mean diag C = ${meanDiag}): all keys were zero or the statistics are corrupt`);
  }
  let factor: Float64Array | null = null;
  let ridge = 0;
  const build = (): Float64Array => {
    // λ = 0, then 1e-6 · mean(diag C) × 10^k up to 10 · mean(diag C): at most 9 factorisations.
    for (let step = 0; step <= 8; step++) {
      const lam = step === 0 ? 0 : 1e-6 * meanDiag * 10 ** (step - 1);
      const a = new Float64Array(n * n);
      for (let i = 0; i < n * n; i++) a[i] = sum[i] / count;
      for (let i = 0; i < n; i++) a[i * n + i] += lam;
      if (choleskyInPlace(a, n)) {
        ridge = lam;
        return a;
      }
    }
    throw new Error('mom2Solver: covariance is not positive definite even with a ridge of 10 · mean(diag C)');
  };
  return {
    kind: 'mom2',
    n,
    tokens: count,
    get ridge() {
      if (!factor) factor = build();
      return ridge;
    },
    solve(k) {
      if (!factor) factor = build();
      return choleskySolve(factor, n, k);
    },
  };
}
