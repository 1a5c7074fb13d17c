/**
 * BPE tokenizer loaded from a local `tokenizer.json` — byte-level (GPT-2, GPT-NeoX/Pythia, GPT-J, Qwen2) or
 * SentencePiece-style Metaspace with byte fallback (LLaMA, Mistral) — with character offsets and the "which
 * tokens are the subject" lookup that causal tracing and ROME need.
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
  /** Prepend bosId (offsets [0, 0]); default `addsBos` (GPT-2 adds nothing, LLaMA adds <s>). Throws without a BOS. */
  addBos?: boolean;
}

/** A half-open range of token positions [start, end). */
export interface TokenRange {
  start: number;
  end: number;
}

/** Options for fromJSON. */
export interface TokenizerJsonOptions {
  /**
   * Accept an NFC normalizer (GPT-NeoX, Qwen2). encode() then refuses text that NFC would change, since offsets
   * must index the caller's text; almost all text is NFC already. Default false in fromJSON, true in fromFile.
   */
  acceptNfc?: boolean;
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
  post_processor?: { type?: unknown; single?: unknown } | null;
  normalizer?: { type?: unknown; normalizers?: unknown } | null;
  pre_tokenizer?: { type?: unknown; add_prefix_space?: unknown; pretokenizers?: unknown; replacement?: unknown } | null;
  decoder?: { type?: unknown } | null;
  model?: { type?: unknown } | null;
  added_tokens?: unknown;
}

/** How token strings map to bytes of the text: GPT-2's byte alphabet, or '▁' for space plus <0xHH> bytes. */
type TokenForm = 'byte-level' | 'metaspace';

const METASPACE = '\u2581';
const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;

function typeOf(x: unknown): unknown {
  return typeof x === 'object' && x !== null ? (x as { type?: unknown }).type : undefined;
}

/** The special token a TemplateProcessing post-processor puts before a single text, if any. */
function templateBosToken(j: JsonShape): string | null {
  const pp = j.post_processor;
  if (typeOf(pp) !== 'TemplateProcessing' || !Array.isArray(pp!.single)) return null;
  const first = pp!.single[0] as { SpecialToken?: { id?: unknown } } | undefined;
  const tokenId = first?.SpecialToken?.id;
  return typeof tokenId === 'string' ? tokenId : null;
}

/** Classifies a tokenizer.json (throwing for kinds whose offsets cannot be computed); `nfc` when NFC-normalized. */
function classify(j: JsonShape, opts: TokenizerJsonOptions): { form: TokenForm; nfc: boolean } {
  if (j.model?.type !== 'BPE') throw new Error(`tokenizer.json: expected model.type "BPE", got ${JSON.stringify(j.model?.type)}`);
  const pre = j.pre_tokenizer;
  const norm = j.normalizer;
  // SentencePiece conversions: either normalizer [Prepend '▁', Replace ' ' → '▁'] with no pre-tokenizer (LLaMA 1/2,
  // TinyLlama, Mistral), or a Metaspace pre-tokenizer (newer conversions).
  const normParts = typeOf(norm) === 'Sequence' && Array.isArray(norm!.normalizers) ? (norm!.normalizers as unknown[]) : [];
  const spNormalizer =
    normParts.length > 0 && normParts.every((n) => typeOf(n) === 'Prepend' || typeOf(n) === 'Replace') && (pre === null || pre === undefined);
  if (spNormalizer || (typeOf(pre) === 'Metaspace' && (norm === null || norm === undefined))) {
    if (typeOf(pre) === 'Metaspace' && pre!.replacement !== undefined && pre!.replacement !== METASPACE) {
      throw new Error(`tokenizer.json: Metaspace replacement ${JSON.stringify(pre!.replacement)} is not supported (only "▁")`);
    }
    return { form: 'metaspace', nfc: false };
  }
  // Byte-level: a ByteLevel pre-tokenizer, alone or after regex Splits (Qwen2).
  const preParts: unknown[] = typeOf(pre) === 'Sequence' && Array.isArray(pre!.pretokenizers) ? (pre!.pretokenizers as unknown[]) : [pre];
  const byteLevel = preParts.find((p) => typeOf(p) === 'ByteLevel') as { add_prefix_space?: unknown } | undefined;
  if (!byteLevel || preParts.some((p) => typeOf(p) !== 'ByteLevel' && typeOf(p) !== 'Split') || j.decoder?.type !== 'ByteLevel') {
    throw new Error('tokenizer.json: only byte-level BPE (ByteLevel pre_tokenizer and decoder) or Metaspace BPE is supported');
  }
  if (byteLevel.add_prefix_space === true) {
    throw new Error('tokenizer.json: add_prefix_space=true is not supported (GPT-2 uses false; offsets assume no inserted text)');
  }
  if (norm !== null && norm !== undefined) {
    if (typeOf(norm) === 'NFC' && opts.acceptNfc) return { form: 'byte-level', nfc: true };
    throw new Error('tokenizer.json: normalizers are not supported (offsets would not refer to the input text; NFC is, with acceptNfc)');
  }
  return { form: 'byte-level', nfc: false };
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

  /** 'byte-level' (GPT-2, NeoX, GPT-J, Qwen2) or 'metaspace' (SentencePiece-style: LLaMA, Mistral). */
  readonly form: TokenForm;
  /**
   * Whether encode() starts every text with bosId by default: true when the tokenizer.json's post-processor
   * template does (LLaMA, Mistral), as Hugging Face's tokenizer(text) does; false for GPT-2, NeoX, GPT-J, Qwen2.
   */
  readonly addsBos: boolean;

  private readonly inner: XenovaTokenizer;
  private readonly added: Map<number, XenovaAddedToken>;
  private readonly tokenBytes: Array<Uint8Array | null | undefined>;
  private readonly nfc: boolean;

  private constructor(inner: XenovaTokenizer, form: TokenForm, nfc: boolean, bosToken: string | null) {
    this.inner = inner;
    this.form = form;
    this.nfc = nfc;
    this.added = new Map(inner.added_tokens.map((t) => [t.id, t]));
    this.vocabSize = inner.model.vocab.length;
    this.tokenBytes = new Array<Uint8Array | null | undefined>(this.vocabSize);
    const id = (s: string) => inner.model.tokens_to_ids.get(s);
    if (form === 'metaspace') {
      this.eosId = id('</s>') ?? null;
      this.bosId = id('<s>') ?? null;
    } else {
      this.eosId = id(EOT) ?? null;
      this.bosId = this.eosId;
    }
    const templateBos = bosToken !== null ? id(bosToken) : undefined;
    if (templateBos !== undefined) this.bosId = templateBos;
    this.addsBos = templateBos !== undefined;
  }

  /** Loads a local tokenizer.json (byte-level BPE, NFC accepted, or Metaspace BPE); never touches the network. */
  static async fromFile(path: string): Promise<Tokenizer> {
    const text = await readFile(path, 'utf8');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new Error(`${path}: not valid JSON (${(e as Error).message}); the file may be truncated`);
    }
    try {
      return Tokenizer.fromJSON(json as object, { acceptNfc: true });
    } catch (e) {
      // Name the file: "tokenizer.json: ..." alone does not say which one.
      throw new Error(`${path}: ${(e as Error).message.replace(/^tokenizer\.json: /, '')}`, { cause: e });
    }
  }

  /** Builds a tokenizer from a parsed tokenizer.json object (byte-level or Metaspace BPE; see TokenizerJsonOptions). */
  static fromJSON(json: object, opts: TokenizerJsonOptions = {}): Tokenizer {
    const j = json as JsonShape;
    const { form, nfc } = classify(j, opts);
    checkBpeModel(j.model as Record<string, unknown>);
    if (j.added_tokens !== undefined && j.added_tokens !== null && !Array.isArray(j.added_tokens)) {
      throw new Error('tokenizer.json: "added_tokens" must be an array');
    }
    const config = { clean_up_tokenization_spaces: false, model_max_length: Number.MAX_SAFE_INTEGER };
    const copy: Record<string, unknown> = { ...json, added_tokens: Array.isArray(j.added_tokens) ? j.added_tokens : [] };
    if (form === 'metaspace' && typeOf(j.pre_tokenizer) === 'Metaspace') {
      // xenova prepends '▁' only with add_prefix_space (newer files say prepend_scheme instead) and never for
      // 'first' when encoding a single text; for one text, 'first' and 'always' are the same rule.
      const pre = j.pre_tokenizer as Record<string, unknown>;
      const scheme = pre['prepend_scheme'] ?? (pre['add_prefix_space'] === false ? 'never' : 'always');
      copy['pre_tokenizer'] = { ...pre, prepend_scheme: scheme === 'never' ? 'never' : 'always', add_prefix_space: scheme !== 'never' };
    }
    const inner = new PreTrainedTokenizer(copy, config) as unknown as XenovaTokenizer;
    return new Tokenizer(inner, form, nfc, templateBosToken(j));
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
    if (this.nfc && text.normalize('NFC') !== text) {
      throw new Error('tokenizer: this tokenizer NFC-normalizes its input; pass text.normalize("NFC") so that offsets index your text');
    }
    const ids = this.inner.encode(text, null, { add_special_tokens: false });
    const cache = this.inner.model.cache;
    if (cache !== undefined && cache.size > MAX_BPE_CACHE) cache.clear();
    const tokens = ids.map((id) => this.idToToken(id));
    const offsets = this.computeOffsets(text, ids, tokens);
    if (options.addBos ?? this.addsBos) {
      if (this.bosId === null) throw new Error('addBos: this tokenizer has no BOS token');
      ids.unshift(this.bosId);
      tokens.unshift(this.idToToken(this.bosId));
      offsets.unshift([0, 0]);
    }
    return { ids, tokens, offsets };
  }

  /**
   * Ids of `text` as a continuation of earlier text (a target after a prompt): never a BOS, and for Metaspace
   * tokenizers a leading space is carried by the first piece's '▁' (" Paris" → ["▁Paris"], not ["▁", "▁Paris"]).
   * Byte-level tokenizers: the same ids as encode(text) without BOS.
   */
  encodeContinuation(text: string): number[] {
    const body = this.form === 'metaspace' && text.startsWith(' ') ? text.slice(1) : text;
    return this.encode(body, { addBos: false }).ids;
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
      if (this.form === 'byte-level') b = byteLevelToBytes(token);
      else {
        // SentencePiece pieces: '▁' is a space; <0xHH> is one raw byte (byte fallback).
        const m = BYTE_TOKEN.exec(token);
        b = m ? Uint8Array.of(parseInt(m[1]!, 16)) : utf8.encode(token.split(METASPACE).join(' '));
      }
      this.tokenBytes[id] = b;
    }
    if (b === null) throw new Error(`token ${JSON.stringify(token)} (id ${id}) is not a byte-level token`);
    return b;
  }

  // Walks the UTF-8 bytes of the text alongside the bytes of each token.
  private computeOffsets(text: string, ids: number[], tokens: string[]): Array<[number, number]> {
    if (this.form === 'metaspace') return this.metaspaceOffsets(text, ids, tokens);
    return this.walkOffsets(text, ids, tokens);
  }

  // SentencePiece-style tokenizers may prepend one '▁' (a space) to the text; offsets are computed on that text
  // and shifted back, so the prefix space belongs to the first token's range start.
  private metaspaceOffsets(text: string, ids: number[], tokens: string[]): Array<[number, number]> {
    let total = 0;
    for (let i = 0; i < ids.length; i++) {
      const added = this.added.get(ids[i]!);
      total += added ? utf8.encode(added.content).length : this.bytesOf(ids[i]!, tokens[i]!).length;
    }
    const prefix = total - utf8.encode(text).length;
    if (prefix !== 0 && prefix !== 1) throw new Error(`internal: tokens hold ${total} bytes for a text of ${total - prefix}`);
    if (prefix === 0) return this.walkOffsets(text, ids, tokens);
    return this.walkOffsets(' ' + text, ids, tokens).map(([a, b]) => [Math.max(0, a - 1), Math.max(0, b - 1)] as [number, number]);
  }

  private walkOffsets(text: string, ids: number[], tokens: string[]): Array<[number, number]> {
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
