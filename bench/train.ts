/**
 * Training throughput of the bundled model's configuration (6 layers, d = 256, 4 heads, vocab 4096, batch 8×128,
 * AdamW) on random tokens: one thread versus the batch split over two worker threads (data-parallel), in the same
 * process. On a 2-core machine the second thread is the second core; the speed-up is bounded by 2.
 *
 * Standalone: `npx tsx bench/train.ts [--quick]` prints a table and writes build/bench/train.json.
 * Env: ROME_TS_BENCH_TRAIN_STEPS (timed steps per setting, default 8; 3 with --quick).
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { initBackend } from '../lib/backend.js';
import { countParams, makeConfig } from '../lib/train/init.js';
import { train } from '../lib/train/trainLoop.js';
import type { BenchRow } from './types.js';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Runs the training benchmark; see the module comment. */
export async function benchTrain(opts: { quick?: boolean; log?: (s: string) => void } = {}): Promise<BenchRow[]> {
  const backend = await initBackend();
  const log = opts.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const steps = Number(process.env.ROME_TS_BENCH_TRAIN_STEPS ?? (opts.quick ? 3 : 8));
  const config = makeConfig({ nLayer: 6, nEmbd: 256, nHead: 4, nPositions: 128, vocabSize: 4096, eosTokenId: 0, bosTokenId: 0 });
  const tokens = new Int32Array(200_000);
  for (let i = 0; i < tokens.length; i++) tokens[i] = (i * 2654435761) % 4096;
  const params = countParams(config).total;
  const rows: BenchRow[] = [];
  const tps: Record<number, number> = {};
  for (const threads of [1, 2]) {
    const dir = await mkdtemp(path.join(tmpdir(), 'rome-ts-bench-train-'));
    // One untimed step first: it compiles kernels and, with threads, starts the worker.
    const r = await train({ config, tokens, steps: steps + 1, batch: 8, seqLen: 128, lr: 1e-3, warmup: 1, seed: 1, outDir: dir, threads, log: () => {} });
    const timed = r.log.steps.slice(1);
    const sec = timed.reduce((s, x) => s + x.seconds, 0);
    tps[threads] = (timed.length * 8 * 128) / sec;
    r.params.dispose();
    await rm(dir, { recursive: true, force: true });
    log(`bench train: ${threads} thread(s) ${tps[threads]!.toFixed(0)} tok/s`);
    rows.push({
      bench: 'train',
      name: `bundled shape, ${threads} thread${threads > 1 ? 's (data-parallel)' : ''}`,
      value: tps[threads]!,
      unit: 'tok/s',
      note: `${((6 * params * tps[threads]!) / 1e9).toFixed(2)} GFLOPS, ${timed.length} steps of 8×128, ${backend}`,
    });
  }
  rows.push({ bench: 'train', name: 'data-parallel speed-up (2 threads)', value: tps[2]! / tps[1]!, unit: 'x', note: 'same process, same configuration' });
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const quick = process.argv.includes('--quick');
  const rows = await benchTrain({ quick });
  const { printTable } = await import('./types.js');
  printTable(rows);
  const out = path.join(ROOT, 'build', 'bench');
  await mkdir(out, { recursive: true });
  await writeFile(path.join(out, 'train.json'), JSON.stringify({ date: new Date().toISOString(), quick, rows }, null, 1));
}
