/**
 * Byte-level BPE tokenizer (GPT-2 style) loaded from a local `tokenizer.json`, with character offsets and the
 * "which tokens are the subject" lookup that causal tracing and ROME need.
 *
 * Encoding itself is delegated to @xenova/transformers' PreTrainedTokenizer, constructed directly from the
 * parsed JSON so nothing is ever fetched from the Hub. Offsets are computed here, since xenova has none.
 */
import { readFile } from 'node:fs/promises';
import { PreTrainedTokenizer } from '@xenova/transformers';
import { byteLevelToBytes } from './byteLevel.js';
import { buildByteLevelTokenizerJson, parseMergesFile } from './gpt2Json.js';

/** Token ids, token strings (byte-level form, e.g. 'ĠParis') and [start, end) UTF-16 offsets into the text. */
export interface Encoding {
  ids: number[];
  tokens: string[];
  offsets: Array<[number, number]>;
}

/** Options for encode / encodeBatch / tokenRange. */
export interface EncodeOptions {
  /** Prepend bosId (offsets [0, 0]); GPT-2 itself adds nothing. Throws if the tokenizer has no BOS. */
  addBos?: boolean;
}

/** A half-open range of token positions [start, end). */
export interface TokenRange {
  start: number;
  end: number;
}

/** Options for decode. */
export interface DecodeOptions {
  /** Drop special (added) tokens such as <|endoftext|>. Default false. */
  skipSpecialTokens?: boolean;
}

// The parts of xenova's untyped tokenizer objects this module relies on.
interface XenovaAddedToken {
  content: string;
  id: number;
  special: boolean;
  lstrip: boolean;
  rstrip: boolean;
}
interface XenovaModel {
  vocab: Array<string | undefined>;
  tokens_to_ids: Map<string, number>;
  cache?: Map<string, string[]>;
}
interface XenovaTokenizer {
  encode(text: string, textPair: null, options: { add_special_tokens: boolean }): number[];
  decode(ids: number[], options: { skip_special_tokens: boolean; clean_up_tokenization_spaces: boolean }): string;
  model: XenovaModel;
  added_tokens: XenovaAddedToken[];
}

interface JsonShape {
  normalizer?: unknown;
  pre_tokenizer?: { type?: unknown; add_prefix_space?: unknown } | null;
  decoder?: { type?: unknown } | null;
  model?: { type?: unknown } | null;
  added_tokens?: unknown;
}

const EOT = '<|endoftext|>';
// xenova memoises every distinct pre-token; bound it so long corpora do not grow memory without limit.
const MAX_BPE_CACHE = 100_000;
const utf8 = new TextEncoder();

/**
 * Checks model.vocab (token → non-negative integer id, no id twice) and model.merges ("a b" strings or [a, b] pairs)
 * before the tokenizer library sees them: it fails on bad entries with bare TypeErrors.
 */
function checkBpeModel(model: Record<string, unknown>): void {
  const vocab = model.vocab;
  if (vocab === null || typeof vocab !== 'object' || Array.isArray(vocab)) throw new Error(`tokenizer.json: model.vocab must be an object of token → id, got ${JSON.stringify(vocab)}`);
  const seen = new Map<number, string>();
  for (const [tok, id] of Object.entries(vocab as Record<string, unknown>)) {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) throw new Error(`tokenizer.json: model.vocab[${JSON.stringify(tok)}] must be a non-negative integer id, got ${JSON.stringify(id)}`);
    const prev = seen.get(id);
    if (prev !== undefined) throw new Error(`tokenizer.json: model.vocab gives id ${id} to both ${JSON.stringify(prev)} and ${JSON.stringify(tok)}`);
    seen.set(id, tok);
  }
  const merges = model.merges;
  if (!Array.isArray(merges)) throw new Error(`tokenizer.json: model.merges must be an array, got ${JSON.stringify(merges)}`);
  merges.forEach((m: unknown, i) => {
    const ok =
      (typeof m === 'string' && m.split(' ').length === 2) || (Array.isArray(m) && m.length === 2 && m.every((x) => typeof x === 'string'));
    if (!ok) throw new Error(`tokenizer.json: model.merges[${i}] must be "a b" or ["a", "b"], got ${JSON.stringify(m)}`);
  });
}

/** Byte-level BPE tokenizer with offsets; see the module comment. */
export class Tokenizer {
  /** Id of `<|endoftext|>` when the tokenizer has it, else null. */
  readonly eosId: number | null;
  /** Id prepended by `addBos`; GPT-2 uses `<|endoftext|>` for this too. Null when absent. */
  readonly bosId: number | null;
  /** Number of ids (largest id + 1), added tokens included: 50257 for GPT-2. */
  readonly vocabSize: number;

  private readonly inner: XenovaTokenizer;
  private readonly added: Map<number, XenovaAddedToken>;
  private readonly tokenBytes: Array<Uint8Array | null | undefined>;

  private constructor(inner: XenovaTokenizer) {
    this.inner = inner;
    this.added = new Map(inner.added_tokens.map((t) => [t.id, t]));
    this.vocabSize = inner.model.vocab.length;
    this.tokenBytes = new Array<Uint8Array | null | undefined>(this.vocabSize);
    this.eosId = inner.model.tokens_to_ids.get(EOT) ?? null;
    this.bosId = this.eosId;
  }

  /** Loads a local tokenizer.json (byte-level BPE, no normalizer); never touches the network. */
  static async fromFile(path: string): Promise<Tokenizer> {
    const text = await readFile(path, 'utf8');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new Error(`${path}: not valid JSON (${(e as Error).message}); the file may be truncated`);
    }
    try {
      return Tokenizer.fromJSON(json as object);
    } catch (e) {
      // Name the file: "tokenizer.json: ..." alone does not say which one.
      throw new Error(`${path}: ${(e as Error).message.replace(/^tokenizer\.json: /, '')}`, { cause: e });
    }
  }

  /** Builds a tokenizer from a parsed tokenizer.json object (byte-level BPE, no normalizer). */
  static fromJSON(json: object): Tokenizer {
    const j = json as JsonShape;
    if (j.model?.type !== 'BPE') throw new Error(`tokenizer.json: expected model.type "BPE", got ${JSON.stringify(j.model?.type)}`);
    if (j.pre_tokenizer?.type !== 'ByteLevel' || j.decoder?.type !== 'ByteLevel') {
      throw new Error('tokenizer.json: only byte-level BPE (ByteLevel pre_tokenizer and decoder) is supported');
    }
    if (j.pre_tokenizer.add_prefix_space === true) {
      throw new Error('tokenizer.json: add_prefix_space=true is not supported (GPT-2 uses false; offsets assume no inserted text)');
    }
    if (j.normalizer !== null && j.normalizer !== undefined) {
      throw new Error('tokenizer.json: normalizers are not supported (offsets would not refer to the input text)');
    }
    checkBpeModel(j.model as Record<string, unknown>);
    if (j.added_tokens !== undefined && j.added_tokens !== null && !Array.isArray(j.added_tokens)) {
      throw new Error('tokenizer.json: "added_tokens" must be an array');
    }
    const config = { clean_up_tokenization_spaces: false, model_max_length: Number.MAX_SAFE_INTEGER };
    const copy = { ...json, added_tokens: Array.isArray(j.added_tokens) ? j.added_tokens : [] };
    const inner = new PreTrainedTokenizer(copy, config) as unknown as XenovaTokenizer;
    return new Tokenizer(inner);
  }

  /** Builds a tokenizer from GPT-2-style files: vocab (encoder.json / vocab.json) and merges (vocab.bpe / merges.txt). */
  static async fromBpeFiles(vocabPath: string, mergesPath: string): Promise<Tokenizer> {
    const [vocabText, mergesText] = await Promise.all([readFile(vocabPath, 'utf8'), readFile(mergesPath, 'utf8')]);
    const vocab = JSON.parse(vocabText) as Record<string, number>;
    return Tokenizer.fromJSON(buildByteLevelTokenizerJson({ vocab, merges: parseMergesFile(mergesText) }));
  }

  /**
   * Tokenizes `text`. Added tokens written literally in the text (e.g. '<|endoftext|>') become their special
   * id, as in Hugging Face. Offsets are UTF-16 [start, end) ranges; when a token holds only some of the UTF-8
   * bytes of a character (rare characters, emoji), its range is widened to that whole character, so
   * neighbouring tokens may share that one character. Starts and ends are non-decreasing and the ranges
   * cover the whole text (except whitespace swallowed by an lstrip/rstrip added token, which GPT-2 has none of).
   */
  encode(text: string, options: EncodeOptions = {}): Encoding {
    const ids = this.inner.encode(text, null, { add_special_tokens: false });
    const cache = this.inner.model.cache;
    if (cache !== undefined && cache.size > MAX_BPE_CACHE) cache.clear();
    const tokens = ids.map((id) => this.idToToken(id));
    const offsets = this.computeOffsets(text, ids, tokens);
    if (options.addBos) {
      if (this.bosId === null) throw new Error('addBos: this tokenizer has no BOS token');
      ids.unshift(this.bosId);
      tokens.unshift(this.idToToken(this.bosId));
      offsets.unshift([0, 0]);
    }
    return { ids, tokens, offsets };
  }

  /** encode() for each text. */
  encodeBatch(texts: readonly string[], options: EncodeOptions = {}): Encoding[] {
    return texts.map((t) => this.encode(t, options));
  }

  /** Text for token ids (bytes joined before UTF-8 decoding, so split characters reassemble). */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    if (ids.length === 0) return '';
    for (const id of ids) this.idToToken(id);
    return this.inner.decode([...ids], {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: false,
    });
  }

  /** Byte-level token string for an id (e.g. 'ĠParis'); throws on an unknown id. */
  idToToken(id: number): string {
    const tok = Number.isInteger(id) ? this.inner.model.vocab[id] : undefined;
    if (tok === undefined) throw new RangeError(`token id ${id} is not in the vocabulary (size ${this.vocabSize})`);
    return tok;
  }

  /** Id of a byte-level token string (e.g. 'ĠParis'), or null if it is not in the vocabulary. */
  tokenToId(token: string): number | null {
    return this.inner.model.tokens_to_ids.get(token) ?? null;
  }

  /** Human-readable tokens of `text`: each token decoded on its own (e.g. ' Paris'); split characters show as U+FFFD. */
  tokenize(text: string): string[] {
    return this.encode(text).ids.map((id) => this.decode([id]));
  }

  /**
   * Token positions [start, end) covering the FIRST occurrence of `substring` in `text` (the paper's subject
   * tokens). A token counts when its character range overlaps the substring's, so a leading-space token
   * such as ' Eiffel' is included for subject 'Eiffel Tower'. Positions index `encode(text, options).ids`.
   * Throws `subject "X" not found in prompt "Y"` when absent; use tokenRangeOfSpan for a later occurrence.
   */
  tokenRange(text: string, substring: string, options: EncodeOptions = {}): TokenRange {
    if (substring.length === 0) throw new Error(`empty subject for prompt ${JSON.stringify(text)}`);
    const at = text.indexOf(substring);
    if (at < 0) throw new Error(`subject "${substring}" not found in prompt "${text}"`);
    return tokenRangeInEncoding(this.encode(text, options), at, at + substring.length);
  }

  /** Token positions [start, end) overlapping the character span [charStart, charEnd) of `text`. */
  tokenRangeOfSpan(text: string, charStart: number, charEnd: number, options: EncodeOptions = {}): TokenRange {
    if (!(Number.isInteger(charStart) && Number.isInteger(charEnd) && charStart >= 0 && charStart < charEnd && charEnd <= text.length)) {
      throw new RangeError(`bad character span [${charStart}, ${charEnd}) for text of length ${text.length}`);
    }
    return tokenRangeInEncoding(this.encode(text, options), charStart, charEnd);
  }

  private bytesOf(id: number, token: string): Uint8Array {
    let b = this.tokenBytes[id];
    if (b === undefined) {
      b = byteLevelToBytes(token);
      this.tokenBytes[id] = b;
    }
    if (b === null) throw new Error(`token ${JSON.stringify(token)} (id ${id}) is not a byte-level token`);
    return b;
  }

  // Walks the UTF-8 bytes of the text alongside the bytes of each token.
  private computeOffsets(text: string, ids: number[], tokens: string[]): Array<[number, number]> {
    const bytes = utf8.encode(text);
    const nBytes = bytes.length;
    // For every byte: the UTF-16 range of the character it belongs to. unitToByte: byte offset of each unit.
    const charStart = new Int32Array(nBytes);
    const charEnd = new Int32Array(nBytes);
    const unitToByte = new Int32Array(text.length + 1);
    let bi = 0;
    for (let u = 0; u < text.length; ) {
      const cp = text.codePointAt(u)!;
      const units = cp > 0xffff ? 2 : 1;
      // Lone surrogates are encoded by TextEncoder as U+FFFD, 3 bytes, like any other BMP char >= U+0800.
      const nb = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp > 0xffff ? 4 : 3;
      for (let k = 0; k < nb; k++) {
        charStart[bi + k] = u;
        charEnd[bi + k] = u + units;
      }
      unitToByte[u] = bi;
      if (units === 2) unitToByte[u + 1] = bi;
      bi += nb;
      u += units;
    }
    unitToByte[text.length] = bi;
    if (bi !== nBytes) throw new Error('internal: UTF-8 length mismatch');

    const offsets: Array<[number, number]> = [];
    let b = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const tok = tokens[i]!;
      const added = this.added.get(id);
      if (added !== undefined) {
        const from = b < nBytes ? charStart[b]! : text.length;
        const at = text.indexOf(added.content, from);
        if (at < 0) throw new Error(`internal: added token ${JSON.stringify(added.content)} not found in text`);
        offsets.push([at, at + added.content.length]);
        b = unitToByte[at + added.content.length]!;
        continue;
      }
      const tb = this.bytesOf(id, tok);
      if (tb.length === 0 || b + tb.length > nBytes) throw new Error('internal: token bytes run past the text');
      for (let k = 0; k < tb.length; k++) {
        if (bytes[b + k] !== tb[k]) throw new Error(`internal: token ${JSON.stringify(tok)} does not match the text at byte ${b}`);
      }
      offsets.push([charStart[b]!, charEnd[b + tb.length - 1]!]);
      b += tb.length;
    }
    return offsets;
  }
}

/** Token positions [start, end) in `encoding` whose character ranges overlap [charStart, charEnd); throws if none. */
export function tokenRangeInEncoding(encoding: Encoding, charStart: number, charEnd: number): TokenRange {
  let start = -1;
  let end = -1;
  encoding.offsets.forEach(([s, e], i) => {
    if (s < charEnd && e > charStart) {
      if (start < 0) start = i;
      end = i + 1;
    }
  });
  if (start < 0) throw new Error(`no token overlaps characters [${charStart}, ${charEnd})`);
  return { start, end };
}
