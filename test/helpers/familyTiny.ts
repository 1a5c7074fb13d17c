/**
 * Tiny random models of the non-GPT-2 families with the few-sentence BPE tokenizer of romeTiny.ts, for trace,
 * ROME and baseline tests on every family. Built from an HF-style config.json object through the same parser
 * loadModel uses.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { modelFromWeights } from '../../lib/loadModel.js';
import { parseModelConfig } from '../../lib/io/familyConfig.js';
import type { GPT2Model } from '../../lib/model/model.js';
import { paramShapes } from '../../lib/model/params.js';
import { createRng } from '../../lib/rng.js';
import { Tokenizer } from '../../lib/tokenizer/tokenizer.js';
import { trainByteLevelTokenizerJson } from '../../lib/tokenizer/trainBpe.js';
import { TINY_SENTENCES } from './romeTiny.js';

export type TinyFamily = 'gpt_neox' | 'llama' | 'qwen2' | 'gptj';
export const TINY_FAMILIES: readonly TinyFamily[] = ['gpt_neox', 'llama', 'qwen2', 'gptj'];

function hfConfig(family: TinyFamily, V: number, eos: number): Record<string, unknown> {
  const common = { vocab_size: V, bos_token_id: eos, eos_token_id: eos };
  switch (family) {
    case 'gpt_neox':
      return { ...common, model_type: 'gpt_neox', hidden_size: 32, num_attention_heads: 4, num_hidden_layers: 2, intermediate_size: 128, max_position_embeddings: 64, rotary_pct: 0.5, use_parallel_residual: true, hidden_act: 'gelu' };
    case 'llama':
      return { ...common, model_type: 'llama', hidden_size: 32, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2, intermediate_size: 96, max_position_embeddings: 64, rms_norm_eps: 1e-6 };
    case 'qwen2':
      return { ...common, model_type: 'qwen2', hidden_size: 32, num_attention_heads: 4, num_key_value_heads: 1, num_hidden_layers: 2, intermediate_size: 96, max_position_embeddings: 64, tie_word_embeddings: true };
    case 'gptj':
      return { ...common, model_type: 'gptj', n_embd: 32, n_head: 4, n_layer: 2, n_positions: 64, rotary_dim: 4 };
  }
}

const cache = new Map<string, Promise<GPT2Model>>();

/** The Metaspace / byte-fallback tokenizer fixture (LLaMA-style: adds <s>). */
export const METASPACE_TOKENIZER = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'tokenizer-metaspace', 'tokenizer.json');

/**
 * The tiny model of a family (2 layers, d = 32), built once per test process; seed fixed. `metaspace` gives the
 * model the SentencePiece-style tokenizer fixture instead of the byte-level one.
 */
export function tinyFamilyModel(family: TinyFamily, opts: { metaspace?: boolean } = {}): Promise<GPT2Model> {
  const key = `${family}${opts.metaspace ? '+metaspace' : ''}`;
  let m = cache.get(key);
  if (m) return m;
  m = (async () => {
    const tok = opts.metaspace
      ? await Tokenizer.fromFile(METASPACE_TOKENIZER)
      : Tokenizer.fromJSON(trainByteLevelTokenizerJson(TINY_SENTENCES, { vocabSize: 400 }));
    const cfg = parseModelConfig(hfConfig(family, tok.vocabSize, tok.eosId ?? 0), `tiny-${family}/config.json`);
    const rng = createRng(4321);
    const w = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, shape] of paramShapes(cfg)) {
      const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
      if (/norm\.weight$|ln_\d\.weight$|ln_f\.weight$/.test(name)) data.fill(1);
      else if (name.endsWith('.bias')) for (let i = 0; i < data.length; i++) data[i] = 0.02 * rng.normal();
      else {
        // Unit-variance embeddings and 1/√fan-in matrices keep every state O(1); a larger head makes the
        // predictions confident enough for tracing and editing to have visible effects.
        const head = /^(lm_head|embed_out)\.weight$/.test(name) || (cfg.tieWordEmbeddings && /embed/.test(name));
        const std = cfg.tieWordEmbeddings && head ? 0.6 : head ? 1.5 : /embed|wte/.test(name) ? 1 : 1 / Math.sqrt(shape[0]!);
        for (let i = 0; i < data.length; i++) data[i] = std * rng.normal();
      }
      w.set(name, { shape, data });
    }
    return modelFromWeights(`tiny-${key}`, cfg, w, tok);
  })();
  cache.set(key, m);
  return m;
}
