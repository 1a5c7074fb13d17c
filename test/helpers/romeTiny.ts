/** A tiny random-init GPT-2 with a BPE trained on a few sentences, for fast ROME / baseline / eval tests. */
import { modelFromWeights } from '../../lib/loadModel.js';
import type { GPT2Model } from '../../lib/model/model.js';
import { Tokenizer } from '../../lib/tokenizer/tokenizer.js';
import { trainByteLevelTokenizerJson } from '../../lib/tokenizer/trainBpe.js';
import { initWeights, makeConfig } from '../../lib/train/init.js';

/** Sentences the tokenizer is trained on (facts, their paraphrases, unrelated text). */
export const TINY_SENTENCES = [
  'Danielle Darrieux is a French actress. The mother tongue of Danielle Darrieux is French.',
  'The Eiffel Tower is located in the city of Paris. Lionel Messi plays the sport of football.',
  'Michael Jordan plays the sport of basketball. The capital of France is Paris.',
  'Toko Yasuda plays the guitar. Autonomous University of Madrid is located in Spain.',
  'The official language of Italy is Italian. Apple was founded by Steve Jobs.',
  'Tokyo is the capital of Japan. English is spoken in London and in New York.',
];

let cached: Promise<GPT2Model> | null = null;

/** The tiny model (2 layers, d = 32, nInner = 128, vocab ≈ 400), built once per test process; seed fixed. */
export function tinyModel(opts: { fresh?: boolean; nLayer?: number } = {}): Promise<GPT2Model> {
  const make = async () => {
    const json = trainByteLevelTokenizerJson(TINY_SENTENCES, { vocabSize: 400 });
    const tok = Tokenizer.fromJSON(json);
    const cfg = makeConfig({
      nLayer: opts.nLayer ?? 2,
      nEmbd: 32,
      nHead: 4,
      nPositions: 64,
      vocabSize: tok.vocabSize,
      bosTokenId: tok.eosId,
      eosTokenId: tok.eosId,
    });
    const w = initWeights(cfg, 1234);
    // GPT-2's init gives near-uniform predictions in so small a model; larger embeddings (tied unembedding) and
    // attention weights let it express confident, editable predictions.
    for (const [name, t] of w) {
      const scale = name === 'wte.weight' ? 25 : /attn\.c_attn\.weight$/.test(name) ? 5 : /\.c_proj\.weight$/.test(name) ? 30 : 1;
      if (scale !== 1) for (let i = 0; i < t.data.length; i++) t.data[i] *= scale;
    }
    return modelFromWeights('tiny-rome', cfg, w, tok);
  };
  if (opts.fresh || opts.nLayer !== undefined) return make();
  cached ??= make();
  return cached;
}
