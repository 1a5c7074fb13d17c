import test from 'ava';
import { ridgeSolve, trainAndScoreProbe, type ProbeExample } from '../lib/probe/linearProbe.js';
import { createRng } from '../lib/rng.js';

test('ridgeSolve matches a hand-solved 2×2 system, with and without λ', (t) => {
  // [[4, 2], [2, 3]] w = [2, 1]  →  w = [0.5, 0]; with λ = 1: [[5, 2], [2, 4]] w = [2, 1] → w = [6/16, 1/16] (det 16).
  const A = new Float64Array([4, 2, 2, 3]);
  const w0 = ridgeSolve(A, 2, new Float64Array([2, 1]), 1, 0);
  t.true(Math.abs(w0[0]! - 0.5) < 1e-12 && Math.abs(w0[1]!) < 1e-12);
  const w1 = ridgeSolve(A, 2, new Float64Array([2, 1]), 1, 1);
  t.true(Math.abs(w1[0]! - 6 / 16) < 1e-12 && Math.abs(w1[1]! - 1 / 16) < 1e-12);
  t.throws(() => ridgeSolve(new Float64Array([0, 0, 0, 0]), 2, new Float64Array([1, 1]), 1, 0), { message: /positive definite/ });
  t.throws(() => ridgeSolve(A, 2, new Float64Array([1, 1]), 1, Number.NaN), { message: /lambda/ });
});

/** Examples whose class is written into the features along a class direction, plus noise. */
function clustered(seed: number, n: number, d: number, classes: number, signal: number, shuffleLabels: boolean): ProbeExample[] {
  const rng = createRng(seed);
  const dirs = Array.from({ length: classes }, () => Array.from({ length: d }, () => rng.normal()));
  const out: ProbeExample[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % classes;
    const x = Array.from({ length: d }, (_, j) => signal * dirs[c]![j]! + rng.normal());
    out.push({ x, label: `c${c}` });
  }
  if (shuffleLabels) {
    const labels = rng.shuffle(out.map((e) => e.label));
    return out.map((e, i) => ({ x: e.x, label: labels[i]! }));
  }
  return out;
}

test('a probe reads a linearly written class on held-out examples and stays at chance when there is none', (t) => {
  const data = clustered(1, 600, 32, 6, 0.8, false);
  const s = trainAndScoreProbe(data.slice(0, 450), data.slice(450));
  t.true(s.accuracy > 0.95, `accuracy ${s.accuracy}`);
  t.is(s.classes, 6);
  t.is(s.nTest, 150);
  // Chance: six balanced classes → about 1/6; the majority baseline is computed on the same test set.
  const noise = clustered(2, 600, 32, 6, 0.6, true);
  const z = trainAndScoreProbe(noise.slice(0, 450), noise.slice(450));
  t.true(z.accuracy < 0.3, `accuracy on shuffled labels ${z.accuracy}`);
  t.true(z.majority > 0.05 && z.majority < 0.3);
});

test('test examples of classes never seen in training are not scored', (t) => {
  const data = clustered(3, 120, 8, 4, 1, false);
  const train = data.filter((e) => e.label !== 'c3');
  const s = trainAndScoreProbe(train.slice(0, 60), data.slice(60));
  t.is(s.nTest, data.slice(60).filter((e) => e.label !== 'c3').length);
  t.throws(() => trainAndScoreProbe(train.slice(0, 3), data), { message: /at least 6/ });
  t.throws(() => trainAndScoreProbe(train.slice(0, 10), [{ x: [1, 2], label: 'c0' }]), { message: /feature length/ });
});
