/**
 * The paper's causal-tracing findings, checked on averaged effects with their 95% CIs: a finding is reported as
 * holding only when the interval of the quantity that carries it excludes zero, so a peak of 0.0002 ± 0.0007 is
 * "not shown", never "YES". Used by notebook 03; pure functions of an AverageEffects object.
 */
import type { AverageEffects } from './averageEffects.js';
import type { StateKind } from './engine.js';

/**
 * MLP / attention window that fits a model of `nLayer` layers: the paper's 10 for deep models (GPT-2 XL has 48
 * layers, GPT-J 28), else 2. A window of 10 on a 6-layer model restores every layer at once, so its MLP and
 * attention curves are flat by construction.
 */
export function fittingWindow(nLayer: number): number {
  return nLayer >= 24 ? 10 : 2;
}

/** A value with the half-width of its 95% confidence interval. */
export interface Estimate {
  value: number;
  ci: number;
}

/** One finding of the paper, as measured. */
export interface TraceClaim {
  id: 'early-mlp-site' | 'late-attention-site' | 'mlp-severing';
  /** The finding, in the paper's terms. */
  statement: string;
  /** True only when the 95% CI of `evidence` lies above zero (and any layer condition holds). */
  holds: boolean;
  /** The quantity the verdict rests on (its sign is the finding). */
  evidence: Estimate;
  /** One line: the verdict and the numbers behind it. */
  summary: string;
}

/** Lower end of the 95% CI of an estimate is above zero. */
export function excludesZero(e: Estimate): boolean {
  return e.value - e.ci > 0;
}

function fmt(e: Estimate): string {
  return `${e.value.toFixed(4)} ± ${e.ci.toFixed(4)}`;
}

function verdict(holds: boolean, e: Estimate, extra = ''): string {
  const why = holds ? '95% CI excludes 0' : excludesZero(e) ? `95% CI excludes 0, but ${extra}` : '95% CI includes 0';
  return `${holds ? 'YES' : 'not shown'} (${fmt(e)}; ${why})`;
}

/** Peak of a bucket's mean indirect effect: layer and AIE ± CI there. */
function peak(avg: AverageEffects, kind: StateKind, bucket: string): Estimate & { layer: number } {
  const b = avg.kinds[kind]?.buckets.find((x) => x.name === bucket);
  if (!b || b.count === 0) return { layer: 0, value: 0, ci: Infinity };
  let l = 0;
  b.meanIE.forEach((v, i) => {
    if (v > b.meanIE[l]!) l = i;
  });
  return { layer: l, value: b.meanIE[l]!, ci: b.ci[l]! };
}

/**
 * The three findings of §2 that notebook 03 reports. Differences of two estimates use the sum of their CI
 * half-widths, which is conservative whatever their correlation (std of a difference ≤ sum of the stds).
 */
export function traceClaims(avg: AverageEffects): TraceClaim[] {
  const L = avg.nLayer;
  const out: TraceClaim[] = [];
  if (avg.kinds.mlp) {
    const p = peak(avg, 'mlp', 'last_subject');
    const middle = p.layer > 0 && p.layer < L - 1;
    const holds = excludesZero(p) && middle;
    out.push({
      id: 'early-mlp-site',
      statement: 'MLP outputs at the last subject token carry an indirect effect, peaking in middle layers',
      holds,
      evidence: { value: p.value, ci: p.ci },
      summary: `${verdict(holds, p, `the peak is at layer ${p.layer}, not a middle one`)}, peak at layer ${p.layer} of 0..${L - 1}`,
    });
  }
  if (avg.kinds.attn) {
    const last = peak(avg, 'attn', 'last');
    const subj = peak(avg, 'attn', 'last_subject');
    const diff = { value: last.value - subj.value, ci: last.ci + subj.ci };
    const late = last.layer >= L / 2;
    const holds = excludesZero(diff) && late;
    out.push({
      id: 'late-attention-site',
      statement: 'attention at the last token has a larger peak effect, in late layers, than at the last subject token',
      holds,
      evidence: diff,
      summary: `${verdict(holds, diff, `the last-token peak is at layer ${last.layer}, not a late one`)}: last token ${fmt(last)} at layer ${last.layer}, last subject token ${fmt(subj)} at layer ${subj.layer}`,
    });
  }
  if (avg.severed) {
    const lower = Array.from({ length: Math.ceil(L / 2) }, (_, i) => i);
    const sum = (c: { mean: number[]; ci: number[] }): Estimate => ({
      value: lower.reduce((a, i) => a + c.mean[i]!, 0),
      ci: lower.reduce((a, i) => a + c.ci[i]!, 0),
    });
    const mlp = sum(avg.severed.mlpSevered);
    const attn = sum(avg.severed.attnSevered);
    const ord = sum(avg.severed.ordinary);
    // Severing MLPs removes more of h_l's effect than severing attention: attn-severed effect > MLP-severed effect.
    const diff = { value: attn.value - mlp.value, ci: attn.ci + mlp.ci };
    const holds = excludesZero(diff);
    out.push({
      id: 'mlp-severing',
      statement: 'in the lower half of the layers, severing the MLPs removes more of the effect of h_l than severing attention',
      holds,
      evidence: diff,
      summary: `${verdict(holds, diff)}: summed AIE over layers 0..${lower.length - 1}: ordinary ${fmt(ord)}, MLP severed ${fmt(mlp)}, attention severed ${fmt(attn)}`,
    });
  }
  return out;
}
