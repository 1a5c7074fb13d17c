import test from 'ava';
import { BUCKETS, type AverageEffects } from '../lib/trace/averageEffects.js';
import { excludesZero, fittingWindow, traceClaims } from '../lib/trace/claims.js';

/** Averaged effects of a 6-layer model where every bucket is flat except the ones given. */
function effects(mlpLastSubject: number[], ci: number, attnLast = [0, 0, 0, 0, 0.05, 0], attnCi = 0.001): AverageEffects {
  const flat = [0, 0, 0, 0, 0, 0];
  const kind = (k: 'mlp' | 'attn') => ({
    kind: k,
    window: 2,
    buckets: BUCKETS.map((b) => {
      const meanIE = k === 'mlp' && b.name === 'last_subject' ? mlpLastSubject : k === 'attn' && b.name === 'last' ? attnLast : flat;
      return { name: b.name, label: b.label, count: 20, meanIE, ci: meanIE.map(() => (k === 'mlp' ? ci : attnCi)), meanScore: flat };
    }),
  });
  return { nLayer: 6, nFacts: 20, nKnown: 20, nSkipped: 0, meanPStar: 0.5, meanPLow: 0.1, ate: 0.4, ateCI: 0.05, kinds: { mlp: kind('mlp'), attn: kind('attn') }, noise: 0.1, samples: 10 };
}

test('a finding holds only when its 95% CI excludes zero', (t) => {
  // Notebook 03's case from issue 18: a peak of 0.0002 ± 0.0007 is no evidence.
  const weak = traceClaims(effects([0, 0.0001, 0.0002, 0, 0, 0], 0.0007)).find((c) => c.id === 'early-mlp-site')!;
  t.false(weak.holds);
  t.regex(weak.summary, /^not shown \(0\.0002 ± 0\.0007; 95% CI includes 0\)/);
  const strong = traceClaims(effects([0, 0.02, 0.05, 0.01, 0, 0], 0.01)).find((c) => c.id === 'early-mlp-site')!;
  t.true(strong.holds);
  t.regex(strong.summary, /^YES \(0\.0500 ± 0\.0100; 95% CI excludes 0\), peak at layer 2 of 0\.\.5/);
  // Significant, but at the first layer: not the paper's middle-layer site.
  const edge = traceClaims(effects([0.05, 0.01, 0, 0, 0, 0], 0.01)).find((c) => c.id === 'early-mlp-site')!;
  t.false(edge.holds);
  t.regex(edge.summary, /not a middle one/);
});

test('differences use the summed CI half-widths', (t) => {
  const late = traceClaims(effects([0, 0, 0, 0, 0, 0], 0.001, [0, 0, 0, 0, 0.004, 0], 0.001)).find((c) => c.id === 'late-attention-site')!;
  t.deepEqual(late.evidence, { value: 0.004, ci: 0.002 });
  t.true(late.holds);
  const close = traceClaims(effects([0, 0, 0, 0, 0, 0], 0.001, [0, 0, 0, 0, 0.0015, 0], 0.001)).find((c) => c.id === 'late-attention-site')!;
  t.false(close.holds, 'a difference of 0.0015 with CIs of 0.001 each is not significant');
  t.true(excludesZero({ value: 0.01, ci: 0.009 }));
  t.false(excludesZero({ value: 0.01, ci: 0.01 }));
});

test('the trace window fits the model depth', (t) => {
  t.is(fittingWindow(48), 10);
  t.is(fittingWindow(28), 10);
  t.is(fittingWindow(6), 2);
  t.true(fittingWindow(6) < 6, 'a window must not cover a whole shallow model');
});
