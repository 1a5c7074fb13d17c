/**
 * Writes `<model dir>/noise.json`: the causal-trace noise level ν = 3σ of the known-facts subjects' token embeddings,
 * so traces of that model (e.g. `npm run demo`) need no data directory. Run once after training a model.
 * Usage: tsx scripts/noise-file.ts [model-dir]   (default: the bundled model)
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { installErrorReporter } from '../lib/cli/exit.js';
import { bundledModelDir } from '../lib/cli/defaults.js';
import { loadModel } from '../lib/loadModel.js';
import { modelNoiseFile, NOISE_FILE } from '../lib/trace/noise.js';

installErrorReporter('noise-file');
const dir = process.argv[2] ?? bundledModelDir();
const model = await loadModel(dir);
const f = await modelNoiseFile(model);
writeFileSync(path.join(dir, NOISE_FILE), JSON.stringify(f, null, 1) + '\n');
process.stdout.write(`wrote ${path.join(dir, NOISE_FILE)}: noise ${f.noise} (3 × σ ${f.sigma} over ${f.nSubjects} subjects)\n`);
model.dispose();
