/** Tokenization: GPT-2-compatible byte-level BPE with offsets, tokenizer.json building and BPE training. */
export { Tokenizer, tokenRangeInEncoding } from './tokenizer.js';
export type { Encoding, EncodeOptions, DecodeOptions, TokenRange } from './tokenizer.js';
export { buildByteLevelTokenizerJson, parseMergesFile } from './gpt2Json.js';
export type { AddedTokenSpec, ByteLevelBpeSpec, ByteLevelTokenizerJson, TokenizerJsonAddedToken, ByteLevelComponent } from './gpt2Json.js';
export { trainBpe, trainByteLevelTokenizerJson, PretokenCounter } from './trainBpe.js';
export type { TrainBpeOptions, TrainProgress, TrainedBpe } from './trainBpe.js';
export { GPT2_PRETOKENIZE_PATTERN, BYTE_ORDER, pretokenize, byteToChar, charToByte, textToByteLevel, byteLevelToBytes } from './byteLevel.js';
