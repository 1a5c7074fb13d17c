/**
 * Trains a byte-level BPE tokenizer and writes a Hugging Face tokenizer.json.
 *
 *   npx tsx scripts/train-tokenizer.ts --input <file|dir...> [--vocab 4096] [--out build/tokenizer.json]
 *       [--min-frequency 2] [--max-mb N]
 *
 * Directories contribute their *.txt files in name order; --max-mb stops reading once that many MB of text
 * have been read (the file that crosses the limit is cut).
 */
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PretokenCounter, trainByteLevelTokenizerJson } from '../lib/tokenizer/trainBpe.js';
import { installErrorReporter } from '../lib/cli/exit.js';

// Uncaught errors print one readable line (not the WASM module's minified source).
installErrorReporter('train-tokenizer');

interface Args {
  inputs: string[];
  vocab: number;
  out: string;
  minFrequency: number;
  maxBytes: number;
}

function usage(msg: string): never {
  process.stderr.write(`${msg}\nusage: train-tokenizer --input <file|dir...> [--vocab 4096] [--out build/tokenizer.json] [--min-frequency 2] [--max-mb N]\n`);
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const a: Args = { inputs: [], vocab: 4096, out: 'build/tokenizer.json', minFrequency: 2, maxBytes: Infinity };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) usage(`missing value for ${flag}`);
      return v;
    };
    const num = (): number => {
      const v = Number(value());
      if (!Number.isFinite(v) || v <= 0) usage(`bad number for ${flag}`);
      return v;
    };
    switch (flag) {
      case '--input':
        a.inputs.push(value());
        while (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--')) a.inputs.push(argv[++i]!);
        break;
      case '--vocab':
        a.vocab = num();
        break;
      case '--out':
        a.out = value();
        break;
      case '--min-frequency':
        a.minFrequency = num();
        break;
      case '--max-mb':
        a.maxBytes = num() * 1e6;
        break;
      case '--help':
      case '-h':
        usage('');
        break;
      default:
        usage(`unknown argument ${flag}`);
    }
  }
  if (a.inputs.length === 0) usage('no --input given');
  return a;
}

function expand(inputs: string[]): string[] {
  const files: string[] = [];
  for (const p of inputs) {
    if (statSync(p).isDirectory()) {
      for (const f of readdirSync(p).filter((f) => f.endsWith('.txt')).sort()) files.push(path.join(p, f));
    } else files.push(p);
  }
  return files;
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const log = (s: string): void => void process.stderr.write(`${s}\n`);
  const t0 = Date.now();
  const counter = new PretokenCounter();
  let bytes = 0;
  for (const f of expand(args.inputs)) {
    if (bytes >= args.maxBytes) break;
    let text = readFileSync(f, 'utf8');
    if (bytes + text.length > args.maxBytes) text = text.slice(0, args.maxBytes - bytes);
    bytes += text.length;
    counter.add(text);
    log(`read ${path.basename(f)}: ${(bytes / 1e6).toFixed(1)} MB so far, ${counter.counts.size} distinct pre-tokens`);
  }
  const tCount = Date.now();
  log(`counted ${counter.total} pre-tokens (${counter.counts.size} distinct) in ${((tCount - t0) / 1000).toFixed(1)} s`);
  const json = trainByteLevelTokenizerJson(counter, {
    vocabSize: args.vocab,
    minFrequency: args.minFrequency,
    onProgress: (p) =>
      log(`merge ${p.merges}: vocab ${p.vocabSize}/${p.targetVocabSize}, last "${p.merge}" x${p.count}, ${(p.elapsedMs / 1000).toFixed(1)} s`),
  });
  const tTrain = Date.now();
  mkdirSync(path.dirname(path.resolve(args.out)), { recursive: true });
  writeFileSync(args.out, JSON.stringify(json));
  const vocabSize = Object.keys(json.model.vocab).length;
  log(`trained ${json.model.merges.length} merges, vocab ${vocabSize}, in ${((tTrain - tCount) / 1000).toFixed(1)} s; wrote ${args.out}`);
  log(`total ${((Date.now() - t0) / 1000).toFixed(1)} s for ${(bytes / 1e6).toFixed(1)} MB (UTF-16 chars)`);
}

main();
