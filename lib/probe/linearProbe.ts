/**
 * Linear probes: which states carry a fact's object, as a linear read-out, on facts the probe never saw.
 *
 * A probe is a ridge-regression classifier (one-hot targets, closed-form solve, argmax) over standardised
 * features. It is trained on some facts and scored on others, so a high score means the model writes objects into
 * the probed state in a shared linear code — not that the probe memorised the facts (Allen-Zhu & Li 2023, arXiv
 * 2309.14316, P-probing). Plain float64 JavaScript: the sizes here (a few thousand × a few hundred) solve in
 * milliseconds and need no tensors.
 */

/** A labelled example: a feature vector (length d) and its class. */
export interface ProbeExample {
  x: Float32Array | Float64Array | readonly number[];
  label: string;
}

/** Probe result on a held-out set. */
export interface ProbeScore {
  /** Share of test examples whose argmax class is their label. */
  accuracy: number;
  /** Share of test examples whose label is the commonest training label (the chance-level baseline). */
  majority: number;
  nTrain: number;
  nTest: number;
  classes: number;
  /** Ridge strength chosen by 3-fold cross-validation on the training set. */
  lambda: number;
}

/** Solves (A + λI) w = b for symmetric positive definite A (n×n row-major) by Cholesky; several right-hand sides. */
export function ridgeSolve(A: Float64Array, n: number, B: Float64Array, m: number, lambda: number): Float64Array {
  if (A.length !== n * n || B.length !== n * m) throw new Error(`ridgeSolve: shapes A ${A.length} ≠ ${n}², B ${B.length} ≠ ${n}×${m}`);
  if (!(lambda >= 0) || !Number.isFinite(lambda)) throw new Error(`ridgeSolve: lambda must be finite and ≥ 0, got ${lambda}`);
  const L = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = A[i * n + j]! + (i === j ? lambda : 0);
      for (let k = 0; k < j; k++) s -= L[i * n + k]! * L[j * n + k]!;
      if (i === j) {
        if (!(s > 0)) throw new Error(`ridgeSolve: matrix not positive definite at row ${i} (pivot ${s}); increase lambda`);
        L[i * n + i] = Math.sqrt(s);
      } else L[i * n + j] = s / L[j * n + j]!;
    }
  }
  const W = new Float64Array(n * m);
  const y = new Float64Array(n);
  for (let c = 0; c < m; c++) {
    for (let i = 0; i < n; i++) {
      let s = B[i * m + c]!;
      for (let k = 0; k < i; k++) s -= L[i * n + k]! * y[k]!;
      y[i] = s / L[i * n + i]!;
    }
    for (let i = n - 1; i >= 0; i--) {
      let s = y[i]!;
      for (let k = i + 1; k < n; k++) s -= L[k * n + i]! * W[k * m + c]!;
      W[i * m + c] = s / L[i * n + i]!;
    }
  }
  return W;
}

interface Fitted {
  mean: Float64Array;
  std: Float64Array;
  W: Float64Array;
  classes: string[];
}

function fit(train: readonly ProbeExample[], lambda: number): Fitted {
  const d = train[0]!.x.length;
  const classes = [...new Set(train.map((e) => e.label))].sort();
  const ci = new Map(classes.map((c, i) => [c, i]));
  const mean = new Float64Array(d);
  const std = new Float64Array(d);
  for (const e of train) for (let j = 0; j < d; j++) mean[j]! += Number(e.x[j]) / train.length;
  for (const e of train) for (let j = 0; j < d; j++) std[j]! += (Number(e.x[j]) - mean[j]!) ** 2 / train.length;
  for (let j = 0; j < d; j++) std[j] = Math.sqrt(std[j]!) || 1;
  const n = d + 1;
  const A = new Float64Array(n * n);
  const B = new Float64Array(n * classes.length);
  const z = new Float64Array(n);
  for (const e of train) {
    for (let j = 0; j < d; j++) z[j] = (Number(e.x[j]) - mean[j]!) / std[j]!;
    z[d] = 1;
    for (let i = 0; i < n; i++) {
      const zi = z[i]!;
      for (let j = 0; j <= i; j++) A[i * n + j]! += zi * z[j]!;
    }
    const c = ci.get(e.label)!;
    for (let i = 0; i < n; i++) B[i * classes.length + c]! += z[i]!;
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) A[j * n + i] = A[i * n + j]!;
  return { mean, std, W: ridgeSolve(A, n, B, classes.length, lambda), classes };
}

function predict(f: Fitted, x: ProbeExample['x']): string {
  const d = f.mean.length;
  const m = f.classes.length;
  const scores = new Float64Array(m);
  for (let j = 0; j <= d; j++) {
    const z = j === d ? 1 : (Number(x[j]) - f.mean[j]!) / f.std[j]!;
    for (let c = 0; c < m; c++) scores[c]! += z * f.W[j * m + c]!;
  }
  let best = 0;
  for (let c = 1; c < m; c++) if (scores[c]! > scores[best]!) best = c;
  return f.classes[best]!;
}

const accuracyOf = (f: Fitted, xs: readonly ProbeExample[]): number =>
  xs.length ? xs.filter((e) => predict(f, e.x) === e.label).length / xs.length : NaN;

/**
 * Trains a ridge probe on `train` (λ by 3-fold cross-validation over `lambdas`, scaled by the number of training
 * examples) and scores it on the `test` examples whose label occurs in training.
 */
export function trainAndScoreProbe(
  train: readonly ProbeExample[],
  test: readonly ProbeExample[],
  lambdas: readonly number[] = [0.01, 0.1, 1, 10],
): ProbeScore {
  if (train.length < 6) throw new Error(`trainAndScoreProbe: need at least 6 training examples, got ${train.length}`);
  const d = train[0]!.x.length;
  for (const e of [...train, ...test]) {
    if (e.x.length !== d) throw new Error(`trainAndScoreProbe: feature length ${e.x.length} ≠ ${d}`);
  }
  const seen = new Set(train.map((e) => e.label));
  const scored = test.filter((e) => seen.has(e.label));
  let bestLambda = lambdas[0]!;
  let bestAcc = -1;
  for (const l of lambdas) {
    let acc = 0;
    for (let k = 0; k < 3; k++) {
      const tr = train.filter((_, i) => i % 3 !== k);
      const va = train.filter((_, i) => i % 3 === k);
      acc += accuracyOf(fit(tr, l * tr.length), va);
    }
    if (acc > bestAcc + 1e-12) {
      bestAcc = acc;
      bestLambda = l;
    }
  }
  const f = fit(train, bestLambda * train.length);
  const counts = new Map<string, number>();
  for (const e of train) counts.set(e.label, (counts.get(e.label) ?? 0) + 1);
  const top = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]![0];
  return {
    accuracy: accuracyOf(f, scored),
    majority: scored.length ? scored.filter((e) => e.label === top).length / scored.length : NaN,
    nTrain: train.length,
    nTest: scored.length,
    classes: f.classes.length,
    lambda: bestLambda,
  };
}
