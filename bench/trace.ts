/**
 * Causal-tracing benchmark: one full trace (hidden + MLP + attention tables, 10 noise samples) of a ~10-token
 * prompt, incremental vs naive in the same process, on a random GPT-2-small-shaped model (12 layers, d = 768,
 * vocab 50257, weights drawn at run time) and on the bundled model when present. Reports seconds, FLOPs done
 * (matmuls counted analytically, 2 per multiply-add), effective GFLOPS, the speedup and the largest score
 * difference between the two methods.
 *
 * Standalone: `npx tsx bench/trace.ts` prints a table and writes build/bench/trace.json.
 * ROME_TS_BENCH_TRACE_QUICK=1 traces the hidden kind only with 3 samples (a smoke run).
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { initBackend } from '../lib/backend.js';
import { bundledModelDir } from '../lib/cli/defaults.js';
import { loadModel, modelFromWeights } from '../lib/loadModel.js';
import type { GPT2Model } from '../lib/model/model.js';
import { initWeights, makeConfig } from '../lib/train/init.js';
import { tracePrompt, type StateKind, type TracePromptResult } from '../lib/trace/index.js';

/** One benchmark measurement. */
export interface BenchRow {
  name: string;
  value: number;
  unit: string;
  note?: string;
}

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

function maxDiff(a: TracePromptResult, b: TracePromptResult, kinds: readonly StateKind[]): number {
  let m = 0;
  for (const k of kinds) {
    const x = a.results[k]!.scores;
    const y = b.results[k]!.scores;
    x.forEach((row, t) => row.forEach((v, l) => (m = Math.max(m, Math.abs(v - y[t][l])))));
  }
  return m;
}

async function benchModel(
  label: string,
  model: GPT2Model,
  input: { prompt: string; subject: string } | { ids: number[]; subjectRange: { start: number; end: number } },
  kinds: readonly StateKind[],
  samples: number,
  log: (s: string) => void,
): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  // Same noise level for both methods; explicit so the benchmark needs no dataset.
  const base = { ...input, kinds, samples, noise: 0.1, seed: 0 } as Parameters<typeof tracePrompt>[1];
  const runs: Record<string, { sec: number; res: TracePromptResult }> = {};
  for (const method of ['incremental', 'naive'] as const) {
    const t0 = performance.now();
    const res = await tracePrompt(model, { ...base, method });
    const sec = (performance.now() - t0) / 1000;
    runs[method] = { sec, res };
    const gflop = res.stats.flops / 1e9;
    log(`${label} ${method}: ${sec.toFixed(1)} s, ${gflop.toFixed(1)} GFLOP, ${(gflop / sec).toFixed(2)} GFLOPS, ${res.stats.forwardCalls} calls`);
    const note = `${res.tokens.length} tokens, ${kinds.join('+')}, ${samples} samples, ${res.stats.forwardCalls} forward calls, ${res.stats.rows} rows`;
    rows.push({ name: `trace.${label}.${method}.time`, value: sec, unit: 's', note });
    rows.push({ name: `trace.${label}.${method}.gflop`, value: gflop, unit: 'GFLOP' });
    rows.push({ name: `trace.${label}.${method}.gflops`, value: gflop / sec, unit: 'GFLOP/s' });
  }
  const speedup = runs.naive.sec / runs.incremental.sec;
  rows.push({ name: `trace.${label}.speedup`, value: speedup, unit: 'x', note: `naive / incremental wall time (target >= 3); FLOP ratio ${(runs.naive.res.stats.flops / runs.incremental.res.stats.flops).toFixed(2)}` });
  rows.push({ name: `trace.${label}.max_abs_diff`, value: maxDiff(runs.incremental.res, runs.naive.res, kinds), unit: 'p', note: 'incremental vs naive scores' });
  return rows;
}

/** Runs the benchmark (see module doc) and returns its rows. */
export async function benchTrace(log: (s: string) => void = (s) => process.stderr.write(s + '\n')): Promise<BenchRow[]> {
  const backend = await initBackend();
  const quick = process.env.ROME_TS_BENCH_TRACE_QUICK === '1';
  const kinds: StateKind[] = quick ? ['hidden'] : ['hidden', 'mlp', 'attn'];
  const samples = quick ? 3 : 10;
  const rows: BenchRow[] = [];
  const cfg = makeConfig({ nLayer: 12, nEmbd: 768, nHead: 12, nPositions: 1024, vocabSize: 50257, eosTokenId: 50256 });
  const random = await modelFromWeights('random-gpt2-small', cfg, initWeights(cfg, 0));
  try {
    // GPT-2 ids of "The Space Needle is located in the downtown area of" would do; fixed ids keep it tokenizer-free.
    const ids = [464, 4687, 42321, 318, 5140, 287, 262, 9436, 1989, 286];
    rows.push(...(await benchModel('random-gpt2-small', random, { ids, subjectRange: { start: 1, end: 3 } }, kinds, samples, log)));
  } finally {
    random.dispose();
  }
  const bundled = bundledModelDir();
  if (existsSync(path.join(bundled, 'config.json'))) {
    const m = await loadModel(bundled);
    try {
      rows.push(...(await benchModel('bundled', m, { prompt: 'The Space Needle is located in the city of', subject: 'The Space Needle' }, kinds, samples, log)));
    } catch (e) {
      log(`bundled model: skipped (${(e as Error).message})`);
    } finally {
      m.dispose();
    }
  } else {
    log(`bundled model not found at ${bundled}: skipped`);
  }
  for (const r of rows) r.note = r.note ? `${r.note}; backend ${backend}` : `backend ${backend}`;
  return rows;
}

function printTable(rows: readonly BenchRow[]): void {
  const w = Math.max(...rows.map((r) => r.name.length));
  for (const r of rows) {
    process.stdout.write(`${r.name.padEnd(w)}  ${r.value.toPrecision(4).padStart(10)} ${r.unit.padEnd(8)} ${r.note ?? ''}\n`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const rows = await benchTrace();
  printTable(rows);
  const out = path.join(ROOT, 'build', 'bench', 'trace.json');
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, JSON.stringify({ date: new Date().toISOString(), rows }, null, 1));
  process.stderr.write(`wrote ${out}\n`);
}
