/**
 * Writes a model layer's key statistics (Σ k kᵀ, the C of ROME) as a standalone file pair `<out>.json` + `<out>.f64`,
 * for the ROME hyperparameter `mom2Stats` (e.g. shipped next to a model whose statistics corpus its users cannot
 * rebuild).
 *
 * `npx tsx scripts/layer-stats.ts --model DIR --layer L --out BASE [--corpus FILE] [--tokens 200000]`
 * (--corpus: a UTF-8 text file, one document per line; default WikiText-2 + Gutenberg from the data directory).
 */
import path from 'node:path';
import { initBackend } from '../lib/backend.js';
import { installErrorReporter } from '../lib/cli/exit.js';
import { loadModel } from '../lib/loadModel.js';
import { corpusFromFile, layerStats, saveLayerStatsFile } from '../lib/rome/index.js';

installErrorReporter('layer-stats');

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? process.argv[i + 1] : fallback;
  if (v === undefined || v.startsWith('--')) {
    process.stderr.write(`layer-stats: ${name} needs a value\nusage: layer-stats --model DIR --layer L --out BASE [--corpus FILE] [--tokens N]\n`);
    process.exit(2);
  }
  return v;
}

const model = arg('--model');
const layer = Number(arg('--layer'));
const out = arg('--out').replace(/\.(json|f64)$/, '');
const tokens = Number(arg('--tokens', '200000'));
if (!Number.isInteger(tokens) || tokens < 1) throw new Error(`layer-stats: --tokens must be a positive integer, got ${arg('--tokens')}`);
await initBackend();
const m = await loadModel(model);
if (!Number.isInteger(layer) || layer < 0 || layer >= m.config.nLayer) throw new Error(`layer-stats: --layer must be an integer in [0, ${m.config.nLayer}), got ${arg('--layer')}`);
const corpus = process.argv.includes('--corpus') ? await corpusFromFile(path.resolve(arg('--corpus')), '--corpus') : undefined;
const stats = await layerStats(m, layer, { ...(corpus ? { corpus } : {}), maxTokens: tokens, cacheDir: null });
saveLayerStatsFile(stats, out);
process.stderr.write(`wrote ${out}.json and ${out}.f64: layer ${layer}, ${stats.meta.tokens} tokens of ${stats.meta.corpusName}\n`);
