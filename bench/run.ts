/**
 * `npm run bench`: runs every benchmark, prints one table and writes build/bench/results.json.
 * Usage: npm run bench [-- core trace rome train vs-pytorch] [--quick]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { printTable, type BenchRow } from './types.js';

type Bench = () => Promise<BenchRow[]>;

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const wanted = args.filter((a) => !a.startsWith('--'));
const all: Record<string, () => Promise<Bench>> = {
  core: async () => {
    const m = await import('./core.js');
    return () => m.benchCore({ quick });
  },
};
// Benchmarks of later modules register themselves here when their files exist.
for (const [name, file, fn] of [
  ['trace', './trace.js', 'benchTrace'],
  ['rome', './rome.js', 'benchRome'],
  ['train', './train.js', 'benchTrain'],
  ['vs-pytorch', './vs-pytorch.js', 'benchVsPytorch'],
] as const) {
  all[name] = async () => {
    const m = (await import(file)) as Record<string, Bench>;
    return m[fn];
  };
}

const names = wanted.length ? wanted : Object.keys(all);
const rows: BenchRow[] = [];
for (const name of names) {
  if (!all[name]) {
    process.stderr.write(`bench: unknown benchmark "${name}" (have: ${Object.keys(all).join(', ')})\n`);
    process.exit(2);
  }
  let bench: Bench;
  try {
    bench = await all[name]();
  } catch (e) {
    process.stderr.write(`bench: "${name}" is not available: ${(e as Error).message}\n`);
    continue;
  }
  process.stderr.write(`bench: running ${name}...\n`);
  const t0 = performance.now();
  rows.push(...(await bench()));
  process.stderr.write(`bench: ${name} took ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
}
printTable(rows);
const out = path.join('build', 'bench', 'results.json');
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), node: process.version, rows }, null, 2));
process.stdout.write(`wrote ${out}\n`);
