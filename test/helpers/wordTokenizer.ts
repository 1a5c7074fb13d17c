import type { TokenizerLike } from '../../lib/train/data.js';

/** Word-level toy tokenizer: id 0 is EOS, then words in first-seen order. */
export class WordTokenizer implements TokenizerLike {
  readonly eosId = 0;
  readonly vocab = new Map<string, number>([['<eos>', 0]]);
  calls = 0;
  constructor(text: string) {
    for (const w of text.split(/\s+/).filter(Boolean)) if (!this.vocab.has(w)) this.vocab.set(w, this.vocab.size);
  }
  encode(text: string): { ids: number[] } {
    this.calls++;
    return { ids: text.split(/\s+/).filter(Boolean).map((w) => this.vocab.get(w) ?? 0) };
  }
}
