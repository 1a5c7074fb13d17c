/**
 * `rome-ts eval counterfact|zsre` (the edit → evaluate → restore → evaluate protocol, one file per case,
 * resumable, sharded) and `rome-ts summarize DIR...` (the paper-style table with 95% CIs).
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadCounterFact, type CounterFactSplit } from '../data/counterfact.js';
import { loadZsre } from '../data/zsre.js';
import { buildReferenceTexts, corpusIdf } from '../eval/reference.js';
import type { MethodName } from '../eval/methods.js';
import { parseShard, runCounterFactEval, runZsreEval } from '../eval/runner.js';
import { summarize, summaryMarkdown } from '../eval/summarize.js';
import { loadModel } from '../loadModel.js';
import { progressBar } from '../progress.js';
import { methodHparamsFor } from './editCommand.js';
import { defaultModelSource } from './defaults.js';
import { UsageError } from './inspectCommand.js';
import { checkOutFile, parseChoice, parseIntFlag, writeFileAtomic } from './args.js';

export const EVAL_HELP = `rome-ts eval counterfact|zsre --method rome|ft|ft-l|kn|none --n N --out DIR [options]
  --model DIR            model (default $ROME_TS_MODEL, else the bundled model)
  --shard i/N            this process takes records i, i+N, i+2N, ...
  --split S              CounterFact split: edit|train|val|all (default edit)
  --hparams NAME|PATH    hyperparameter file (default hparams/<METHOD>/<model name>.json when present)
  --layer N              override the edited layer
  --generation           CounterFact: also generation entropy (GE) and reference score (RS): 100-token top-5 texts
Results: DIR/case_<id>.json (existing files are skipped: rerun to resume), DIR/run.json.`;

export const SUMMARIZE_HELP = `rome-ts summarize DIR... [--json FILE.json] [--md FILE.md] [--force]
Prints the table (unedited row from the first directory's pre-edit measurements, then one row per directory).`;

/** Runs `rome-ts eval`; returns the exit code. */
export async function runEvalCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      model: { type: 'string' },
      method: { type: 'string', default: 'rome' },
      n: { type: 'string' },
      out: { type: 'string' },
      shard: { type: 'string' },
      split: { type: 'string', default: 'edit' },
      hparams: { type: 'string' },
      layer: { type: 'string' },
      generation: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(EVAL_HELP + '\n');
    return 0;
  }
  const dataset = positionals[0];
  if (dataset !== 'counterfact' && dataset !== 'zsre') throw new UsageError(`first argument must be counterfact or zsre\n${EVAL_HELP}`);
  if (!values.out) throw new UsageError('--out DIR is required');
  const method: MethodName = parseChoice('method', values.method, ['rome', 'ft', 'ft-l', 'kn', 'none'] as const);
  const n = parseIntFlag('n', values.n, undefined, 1);
  const layer = parseIntFlag('layer', values.layer, undefined, 0);
  const split = parseChoice('split', values.split, ['edit', 'train', 'val', 'all'] as const);
  let shard: [number, number] | undefined;
  try {
    shard = values.shard ? parseShard(values.shard) : undefined;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const model = await loadModel(values.model ?? defaultModelSource());
  const hparams = methodHparamsFor(model, method, values.hparams, layer);
  const bar = progressBar(`eval ${dataset} ${method}`);
  const onCase = (done: number, total: number) => bar.update(done, total);
  const runInfo = { command: `rome-ts eval ${args.join(' ')}`, date: new Date().toISOString() };
  if (dataset === 'counterfact') {
    const records = await loadCounterFact({ split: split as CounterFactSplit, limit: n });
    let generation = null;
    if (values.generation) {
      const all = await loadCounterFact({ split: 'all' });
      generation = { references: await buildReferenceTexts(all), idf: await corpusIdf(), maxNewTokens: 100, topK: 5 };
    }
    await runCounterFactEval(model, records, { method, outDir: values.out, hparams, shard, generation, onCase, runInfo });
  } else {
    const records = await loadZsre({ limit: n });
    await runZsreEval(model, records, { method, outDir: values.out, hparams, shard, onCase, runInfo });
  }
  bar.done();
  process.stdout.write(summaryMarkdown(summarize([values.out])) + '\n');
  return 0;
}

/** Runs `rome-ts summarize`; returns the exit code. */
export async function runSummarizeCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      json: { type: 'string' },
      md: { type: 'string' },
      force: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help || positionals.length === 0) {
    process.stdout.write(SUMMARIZE_HELP + '\n');
    return values.help ? 0 : 2;
  }
  if (values.json) checkOutFile('json', values.json, ['.json'], values.force);
  if (values.md) checkOutFile('md', values.md, ['.md'], values.force);
  const rows = summarize(positionals.map((p) => path.resolve(p)));
  const md = summaryMarkdown(rows);
  process.stdout.write(md + '\n');
  if (values.json) writeFileAtomic(values.json, JSON.stringify({ dirs: positionals, rows }, null, 1));
  if (values.md) writeFileAtomic(values.md, md);
  return 0;
}
