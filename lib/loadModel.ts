/**
 * Loading a model of any supported family from a local Hugging Face-layout directory or a hub id.
 */
import * as path from 'node:path';
import { initBackend } from './backend.js';
import { CONFIG_FILE, readCheckpoint, readConfigFile } from './io/checkpoint.js';
import { checkFitsBackend } from './model/memory.js';
import type { GPT2Config } from './io/config.js';
import { resolveModelSource, type ResolveModelOptions } from './io/hub.js';
import { GPT2Model } from './model/model.js';
import { GPT2Params } from './model/params.js';
import { Tokenizer } from './tokenizer/tokenizer.js';
import { attachModelNoiseFile } from './trace/noise.js';

/** Options of loadModel: hub download settings plus an optional tokenizer override. */
export interface LoadModelOptions extends ResolveModelOptions {
  /** Path of a tokenizer.json to use instead of the checkpoint's own. */
  tokenizerPath?: string;
}

/**
 * Loads a model from a directory holding config.json, model.safetensors (or a sharded index) and tokenizer.json,
 * or from a hub id such as "gpt2" (downloaded once into the cache).
 */
export async function loadModel(source: string, opts: LoadModelOptions = {}): Promise<GPT2Model> {
  const backend = await initBackend();
  const dir = await resolveModelSource(source, {
    ...opts,
    checkConfig: async (file) => {
      checkFitsBackend(await readConfigFile(file), backend, source);
      await opts.checkConfig?.(file);
    },
  });
  // Refuse before reading any weight when the backend cannot hold them (WASM: 4 GiB).
  checkFitsBackend(await readConfigFile(path.join(dir, CONFIG_FILE)), backend, dir);
  const ckpt = await readCheckpoint(dir);
  const tokPath = opts.tokenizerPath ?? ckpt.tokenizerPath;
  const tokenizer = tokPath ? await Tokenizer.fromFile(tokPath) : null;
  if (tokenizer && tokenizer.vocabSize > ckpt.config.vocabSize) {
    throw new Error(
      `${tokPath}: tokenizer has ${tokenizer.vocabSize} tokens but the model's vocab_size is ${ckpt.config.vocabSize}`,
    );
  }
  const params = new GPT2Params(ckpt.config, ckpt.weights);
  ckpt.weights.clear();
  const model = new GPT2Model(path.basename(path.resolve(dir)) || source, params, tokenizer);
  attachModelNoiseFile(model, dir);
  return model;
}

/** Builds a model from in-memory weights (canonical HF names without `transformer.`). */
export async function modelFromWeights(
  name: string,
  config: GPT2Config,
  weights: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>,
  tokenizer: Tokenizer | null = null,
): Promise<GPT2Model> {
  checkFitsBackend(config, await initBackend(), name);
  return new GPT2Model(name, new GPT2Params(config, weights), tokenizer);
}
