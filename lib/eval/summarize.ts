/**
 * Paper-style tables from result directories: for CounterFact S, ES, PS, NS, EM, PM, NM, GE, RS (all ×100, with
 * 95% CIs 1.96·s/√n over cases; S is the harmonic mean of ES, PS, NS and has no CI), for zsRE efficacy,
 * paraphrase, specificity (×100). Every directory gives its method's post-edit row; the first CounterFact /
 * zsRE directory also gives the "unedited" row from its pre-edit measurements.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import type { CounterFactEval } from './counterfact.js';
import { readCaseResult, type CaseResult } from './runner.js';
import { harmonicMean, mean, meanCI } from './stats.js';
import type { ZsreEval } from './zsre.js';

/** A metric's mean and 95% CI half-width (×100), over n cases. */
export interface Metric {
  mean: number;
  ci: number;
  n: number;
}

/** One row of a table. */
export interface SummaryRow {
  name: string;
  dataset: 'counterfact' | 'zsre';
  n: number;
  metrics: Record<string, Metric>;
}

/** Per-case CounterFact indicators/magnitudes (undefined when the case lacks that prompt kind). */
export function counterFactCaseMetrics(e: CounterFactEval): Record<string, number | undefined> {
  const avg = (xs: number[]) => (xs.length ? mean(xs) : undefined);
  return {
    ES: e.rewrite.nllNew < e.rewrite.nllTrue ? 1 : 0,
    EM: Math.exp(-e.rewrite.nllNew) - Math.exp(-e.rewrite.nllTrue),
    PS: avg(e.paraphrase.map((p) => (p.nllNew < p.nllTrue ? 1 : 0))),
    PM: avg(e.paraphrase.map((p) => Math.exp(-p.nllNew) - Math.exp(-p.nllTrue))),
    NS: avg(e.neighborhood.map((p) => (p.nllTrue < p.nllNew ? 1 : 0))),
    NM: avg(e.neighborhood.map((p) => Math.exp(-p.nllTrue) - Math.exp(-p.nllNew))),
    GE: e.generation ? e.generation.ngramEntropy : undefined,
    RS: e.generation && e.generation.referenceScore !== null ? e.generation.referenceScore : undefined,
  };
}

function collect(evals: readonly Record<string, number | undefined>[], keys: readonly string[]): Record<string, Metric> {
  const out: Record<string, Metric> = {};
  for (const k of keys) {
    const xs = evals.map((e) => e[k]).filter((x): x is number => x !== undefined && Number.isFinite(x));
    const m = meanCI(xs);
    out[k] = { mean: m.mean * 100, ci: m.ci * 100, n: m.n };
  }
  return out;
}

/** The CounterFact row of a set of per-case evaluations. */
export function counterFactRow(name: string, evals: readonly CounterFactEval[]): SummaryRow {
  const metrics = collect(evals.map(counterFactCaseMetrics), ['ES', 'PS', 'NS', 'EM', 'PM', 'NM', 'GE', 'RS']);
  const S = harmonicMean([metrics.ES.mean, metrics.PS.mean, metrics.NS.mean].filter((x) => !Number.isNaN(x)));
  return { name, dataset: 'counterfact', n: evals.length, metrics: { S: { mean: S, ci: NaN, n: evals.length }, ...metrics } };
}

/** The zsRE row of a set of per-case evaluations. */
export function zsreRow(name: string, evals: readonly ZsreEval[]): SummaryRow {
  return {
    name,
    dataset: 'zsre',
    n: evals.length,
    metrics: collect(evals.map((e) => ({ ...e }) as Record<string, number>), ['efficacy', 'paraphrase', 'specificity']),
  };
}

/** All case results of a directory. */
export function readCaseDir(dir: string): CaseResult<unknown>[] {
  return readdirSync(dir)
    .filter((f) => /^case_\d+\.json$/.test(f))
    .sort((a, b) => Number(a.slice(5, -5)) - Number(b.slice(5, -5)))
    .map((f) => readCaseResult(path.join(dir, f)));
}

/** The summary table of result directories (see module comment). Only cases present in every directory are used. */
export function summarize(dirs: readonly string[]): SummaryRow[] {
  const byDir = dirs.map((d) => ({ dir: d, cases: readCaseDir(d) }));
  const rows: SummaryRow[] = [];
  for (const ds of ['counterfact', 'zsre'] as const) {
    const group = byDir.map((g) => ({ ...g, cases: g.cases.filter((c) => c.dataset === ds) })).filter((g) => g.cases.length);
    if (!group.length) continue;
    let common = new Set(group[0].cases.map((c) => c.caseId));
    for (const g of group.slice(1)) common = new Set(g.cases.map((c) => c.caseId).filter((id) => common.has(id)));
    const pick = (cs: CaseResult<unknown>[]) => cs.filter((c) => common.has(c.caseId));
    const make = (name: string, evals: unknown[]) =>
      ds === 'counterfact' ? counterFactRow(name, evals as CounterFactEval[]) : zsreRow(name, evals as ZsreEval[]);
    rows.push(make('unedited', pick(group[0].cases).map((c) => c.pre)));
    for (const g of group) {
      const cs = pick(g.cases);
      if (cs[0].method === 'none') continue;
      const label = group.filter((x) => x.cases[0].method === cs[0].method).length > 1 ? `${cs[0].method} (${path.basename(g.dir)})` : cs[0].method;
      rows.push(make(label.toUpperCase(), cs.map((c) => c.post)));
    }
  }
  return rows;
}

function fmt(m: Metric | undefined, digits = 1): string {
  if (!m || Number.isNaN(m.mean)) return '–';
  return Number.isNaN(m.ci) ? m.mean.toFixed(digits) : `${m.mean.toFixed(digits)} ± ${m.ci.toFixed(digits)}`;
}

/** Markdown rendering of summary rows (one table per dataset). */
export function summaryMarkdown(rows: readonly SummaryRow[]): string {
  const parts: string[] = [];
  for (const ds of ['counterfact', 'zsre'] as const) {
    const rs = rows.filter((r) => r.dataset === ds);
    if (!rs.length) continue;
    const cols = ds === 'counterfact' ? ['S', 'ES', 'PS', 'NS', 'EM', 'PM', 'NM', 'GE', 'RS'] : ['efficacy', 'paraphrase', 'specificity'];
    parts.push(`**${ds === 'counterfact' ? 'CounterFact' : 'zsRE'}** (×100, mean ± 95% CI)\n`);
    parts.push(`| method | n | ${cols.join(' | ')} |`);
    parts.push(`|---|---|${cols.map(() => '---').join('|')}|`);
    for (const r of rs) parts.push(`| ${r.name} | ${r.n} | ${cols.map((c) => fmt(r.metrics[c])).join(' | ')} |`);
    parts.push('');
  }
  return parts.join('\n');
}
