/**
 * `rome-ts trace` (Figure 1 for one prompt) and `rome-ts trace-avg` (Figures 2–3 over the known facts, resumable
 * and shardable).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { loadKnownFacts } from '../data/knownFacts.js';
import { renderVegaLiteSvg } from '../display/render.js';
import type { VegaLiteSpec } from '../display/spec.js';
import { loadModel } from '../loadModel.js';
import { progressBar } from '../progress.js';
import {
  aieHeatmapSpec,
  aieLineSpec,
  averageIndirectEffect,
  mergeTraceResults,
  severedSpec,
  tracePanelsSpec,
  tracePrompt,
  tokenLabels,
  type AverageEffects,
  type CausalTraceResult,
  type StateKind,
} from '../trace/index.js';
import { defaultModelSource } from './defaults.js';
import { UsageError } from './inspectCommand.js';
import { checkOutFile, parseIntFlag, writeFileAtomic } from './args.js';

const TRACE_USAGE = `usage: rome-ts trace "<prompt>" --subject "<subject>" [--kind mlp|attn|hidden|all] [--model DIR]
                     [--samples 10] [--noise auto|X] [--seed 0] [--window W] [--answer " Paris"]
                     [--method incremental|naive] [--threads auto|N] [--out fig.svg|fig.json] [--force]
Causal trace of one prompt (paper Figure 1). --threads: cores scoring restorations (default auto: 2 for a large trace). Noise 'auto' = 3σ of the known-facts subjects' token embeddings.
Without --out, prints the table of p(answer) per token (rows, subject starred) and layer (columns).`;

const AVG_USAGE = `usage: rome-ts trace-avg --out DIR [--n 100] [--shard i/N] [--resume] [--kinds hidden,mlp,attn] [--severed]
                         [--samples 10] [--noise auto|X] [--seed 0] [--model DIR] [--method incremental|naive] [--window W]
       rome-ts trace-avg --merge DIR
Average indirect effects over the first n known facts (paper Figures 2 and 3). One JSON record per fact in DIR,
so an interrupted run continues with --resume and shards (--shard 0/4 … 3/4, any scheduler) merge with --merge.
Writes DIR/summary.json and SVG figures when the run covers every shard (or on --merge).`;

function parseNoise(v: string | undefined): number | 'auto' {
  if (v === undefined || v === 'auto') return 'auto';
  const x = Number(v);
  if (!Number.isFinite(x) || x < 0) throw new UsageError(`--noise must be 'auto' or a number >= 0, got "${v}"`);
  return x;
}

function parseInt0(name: string, v: string | undefined, dflt: number, min = 0): number {
  return parseIntFlag(name, v, dflt, min);
}

function parseMethod(v: string | undefined): 'incremental' | 'naive' {
  if (v === undefined || v === 'incremental' || v === 'naive') return v ?? 'incremental';
  throw new UsageError(`--method must be incremental or naive, got "${v}"`);
}

function parseKinds(v: string | undefined): StateKind[] {
  if (v === undefined || v === 'all') return ['hidden', 'mlp', 'attn'];
  const ks = v.split(',').map((s) => s.trim());
  for (const k of ks) if (k !== 'hidden' && k !== 'mlp' && k !== 'attn') throw new UsageError(`unknown kind "${k}" (hidden, mlp, attn, all)`);
  return ks as StateKind[];
}

/** Text rendering of one kind's table. */
export function formatTraceTable(r: CausalTraceResult): string {
  const labels = tokenLabels(r.tokens, r.subjectRange);
  const w = Math.max(...labels.map((l) => l.length), 5);
  const L = r.scores[0]?.length ?? 0;
  const head = `${r.kind} (window ${r.window}): p(${JSON.stringify(r.answer.token)}) restored; p* = ${r.pStar.toFixed(4)}, p_low = ${r.pLow.toFixed(4)}, noise ${r.noise.toPrecision(4)}, ${r.samples} samples`;
  const cols = `${''.padEnd(w)} ${Array.from({ length: L }, (_, l) => String(l).padStart(6)).join('')}`;
  const rows = r.scores.map((row, t) => `${labels[t].padEnd(w)} ${row.map((v) => v.toFixed(3).padStart(6)).join('')}`);
  return [head, cols, ...rows].join('\n');
}

async function writeFigure(file: string, spec: VegaLiteSpec): Promise<void> {
  await writeFile(file, await renderVegaLiteSvg(spec));
}

/** `rome-ts trace "<prompt>" --subject S ...`: returns the exit code. */
export async function runTraceCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      subject: { type: 'string' },
      kind: { type: 'string' },
      model: { type: 'string' },
      samples: { type: 'string' },
      noise: { type: 'string' },
      seed: { type: 'string' },
      window: { type: 'string' },
      answer: { type: 'string' },
      threads: { type: 'string' },
      method: { type: 'string' },
      out: { type: 'string' },
      force: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(TRACE_USAGE + '\n');
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(`expected one prompt in quotes\n${TRACE_USAGE}`);
  if (!values.subject) throw new UsageError(`--subject is required\n${TRACE_USAGE}`);
  const prompt = positionals[0];
  const kinds = parseKinds(values.kind);
  if (values.out) checkOutFile('out', values.out, ['.svg', '.json'], values.force ?? false);
  const traceOpts = {
    samples: parseInt0('samples', values.samples, 10, 1),
    noise: parseNoise(values.noise),
    seed: parseInt0('seed', values.seed, 0),
    method: parseMethod(values.method),
    threads: values.threads === undefined || values.threads === 'auto' ? ('auto' as const) : parseInt0('threads', values.threads, 1, 1),
  };
  const window = values.window === undefined ? undefined : parseInt0('window', values.window, 1, 1);
  const model = await loadModel(values.model ?? defaultModelSource());
  const windows: Partial<Record<StateKind, number>> = {};
  if (window !== undefined) for (const k of kinds) windows[k] = window;
  const bar = progressBar('trace', {});
  const t0 = Date.now();
  const res = await tracePrompt(model, {
    prompt,
    subject: values.subject,
    kinds,
    windows,
    ...traceOpts,
    answer: values.answer,
    onProgress: (d, n) => bar.update(d, n),
  });
  bar.done(`${((Date.now() - t0) / 1000).toFixed(1)} s, ${(res.stats.flops / 1e9).toFixed(1)} GFLOP`);
  const results = kinds.map((k) => res.results[k]!);
  const out = values.out;
  if (!out) {
    process.stdout.write(results.map(formatTraceTable).join('\n\n') + '\n');
  } else if (out.toLowerCase().endsWith('.json')) {
    writeFileAtomic(out, JSON.stringify({ prompt, subject: values.subject, model: model.name, results }, null, 1));
    process.stderr.write(`wrote ${out}\n`);
  } else {
    writeFileAtomic(out, await renderVegaLiteSvg(tracePanelsSpec(results)));
    process.stderr.write(`wrote ${out}\n`);
  }
  model.dispose();
  return 0;
}

/** One-paragraph text summary of average effects (Figure 2 peaks and ATE). */
export function formatAverageSummary(avg: AverageEffects): string {
  const lines = [
    `${avg.nKnown} known facts traced, ${avg.nSkipped} skipped (model's top-1 is not the attribute); noise ${avg.noise.toPrecision(4)}, ${avg.samples} samples`,
    `p* = ${avg.meanPStar.toFixed(4)}, p_low = ${avg.meanPLow.toFixed(4)}, ATE = ${avg.ate.toFixed(4)} ± ${avg.ateCI.toFixed(4)}`,
  ];
  for (const k of ['hidden', 'mlp', 'attn'] as const) {
    const kk = avg.kinds[k];
    if (!kk) continue;
    for (const b of kk.buckets) {
      if (b.count === 0) continue;
      let best = 0;
      b.meanIE.forEach((v, l) => (v > b.meanIE[best] ? (best = l) : 0));
      lines.push(`  ${k.padEnd(6)} ${b.label.padEnd(24)} peak AIE ${b.meanIE[best].toFixed(4)} ± ${b.ci[best].toFixed(4)} at layer ${best} (n = ${b.count})`);
    }
  }
  return lines.join('\n');
}

async function writeAverageOutputs(dir: string, avg: AverageEffects): Promise<void> {
  await writeFile(path.join(dir, 'summary.json'), JSON.stringify(avg, null, 1));
  if (avg.nKnown > 0 && Object.keys(avg.kinds).length) {
    await writeFigure(path.join(dir, 'aie-lines.svg'), aieLineSpec(avg));
    await writeFigure(path.join(dir, 'aie-heatmap.svg'), aieHeatmapSpec(avg));
  }
  if (avg.severed) await writeFigure(path.join(dir, 'severed.svg'), severedSpec(avg.severed));
  process.stdout.write(formatAverageSummary(avg) + '\n');
  process.stderr.write(`wrote ${dir}/summary.json and figures\n`);
}

/** `rome-ts trace-avg --out DIR ...` or `--merge DIR`: returns the exit code. */
export async function runTraceAvgCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: false,
    options: {
      n: { type: 'string' },
      out: { type: 'string' },
      merge: { type: 'string' },
      shard: { type: 'string' },
      resume: { type: 'boolean' },
      kinds: { type: 'string' },
      severed: { type: 'boolean' },
      samples: { type: 'string' },
      noise: { type: 'string' },
      seed: { type: 'string' },
      model: { type: 'string' },
      method: { type: 'string' },
      window: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  void positionals;
  if (values.help) {
    process.stdout.write(AVG_USAGE + '\n');
    return 0;
  }
  if (values.merge) {
    await writeAverageOutputs(values.merge, await mergeTraceResults(values.merge));
    return 0;
  }
  if (!values.out) throw new UsageError(`--out DIR is required\n${AVG_USAGE}`);
  let shard = { index: 0, count: 1 };
  if (values.shard) {
    const m = /^(\d+)\/(\d+)$/.exec(values.shard);
    if (!m || Number(m[1]) >= Number(m[2]) || Number(m[2]) < 1) throw new UsageError(`--shard must be i/N with 0 <= i < N, got "${values.shard}"`);
    shard = { index: Number(m[1]), count: Number(m[2]) };
  }
  const n = parseInt0('n', values.n, 100, 1);
  const facts = (await loadKnownFacts()).slice(0, n);
  const model = await loadModel(values.model ?? defaultModelSource());
  await mkdir(values.out, { recursive: true });
  const bar = progressBar(`trace-avg ${shard.index}/${shard.count}`, {});
  let skipped = 0;
  // The paper's window of 10 layers suits 48-layer models; smaller models need a smaller one (--window).
  const kinds = parseKinds(values.kinds);
  const windows: Partial<Record<StateKind, number>> = {};
  if (values.window !== undefined) {
    const w = parseInt0('window', values.window, 1, 1);
    for (const k of kinds) if (k !== 'hidden') windows[k] = w;
  }
  const avg = await averageIndirectEffect(model, facts, {
    kinds,
    windows,
    samples: parseInt0('samples', values.samples, 10, 1),
    noise: parseNoise(values.noise),
    seed: parseInt0('seed', values.seed, 0),
    severed: values.severed ?? false,
    method: parseMethod(values.method),
    outDir: values.out,
    shard,
    resume: values.resume ?? false,
    onProgress: (d, total, rec) => {
      if (!rec.known) skipped++;
      bar.update(d, total, `${skipped} unknown skipped`);
    },
  });
  bar.done();
  model.dispose();
  if (shard.count === 1) await writeAverageOutputs(values.out, avg);
  else process.stderr.write(`shard ${shard.index}/${shard.count} done; when every shard is done: rome-ts trace-avg --merge ${values.out}\n`);
  return 0;
}
