/**
 * Builds a Hugging Face `tokenizer.json` (the `tokenizers` library's serialisation) for a byte-level BPE
 * vocabulary such as GPT-2's, from a vocab map and a merge list.
 */

/** An added (special) token: its literal text, and optionally a fixed id. */
export interface AddedTokenSpec {
  content: string;
  /** Id; default: the vocab's id for `content` when present, else the next free id. */
  id?: number;
  /** Special tokens can be skipped when decoding; default true. */
  special?: boolean;
}

/** Input to buildByteLevelTokenizerJson. */
export interface ByteLevelBpeSpec {
  /** Byte-level token string -> id (GPT-2's encoder.json / vocab.json). */
  vocab: Readonly<Record<string, number>>;
  /** Merges in priority order, as 'left right' strings (vocab.bpe lines) or [left, right] pairs. */
  merges: ReadonlyArray<string | readonly [string, string]>;
  /** Added tokens; default `['<|endoftext|>']`. Plain strings are special tokens. */
  addedTokens?: ReadonlyArray<string | AddedTokenSpec>;
}

/** One entry of tokenizer.json's `added_tokens`. */
export interface TokenizerJsonAddedToken {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** The ByteLevel component config used for pre_tokenizer, post_processor and decoder. */
export interface ByteLevelComponent {
  type: 'ByteLevel';
  add_prefix_space: boolean;
  trim_offsets: boolean;
  use_regex: boolean;
}

/** The subset of the `tokenizer.json` schema this project writes and reads. */
export interface ByteLevelTokenizerJson {
  version: string;
  truncation: null;
  padding: null;
  added_tokens: TokenizerJsonAddedToken[];
  normalizer: null;
  pre_tokenizer: ByteLevelComponent;
  post_processor: ByteLevelComponent;
  decoder: ByteLevelComponent;
  model: {
    type: 'BPE';
    dropout: null;
    unk_token: null;
    continuing_subword_prefix: string;
    end_of_word_suffix: string;
    fuse_unk: boolean;
    byte_fallback: boolean;
    vocab: Record<string, number>;
    merges: string[];
  };
}

/** Parses a GPT-2 `vocab.bpe` / HF `merges.txt` file into 'left right' merge strings (skips '#version' and blanks). */
export function parseMergesFile(text: string): string[] {
  const merges: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line.length === 0 || line.startsWith('#version')) continue;
    const parts = line.split(' ');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
      throw new Error(`malformed merge line: ${JSON.stringify(line)}`);
    }
    merges.push(line);
  }
  return merges;
}

/**
 * Produces a standard HF tokenizer.json for byte-level BPE with GPT-2's behaviour: no normalizer, ByteLevel
 * pre-tokenizer (GPT-2 regex, add_prefix_space false), BPE model without unk token, ByteLevel decoder, and
 * `<|endoftext|>` (or the given tokens) as added special tokens.
 */
export function buildByteLevelTokenizerJson(spec: ByteLevelBpeSpec): ByteLevelTokenizerJson {
  // Null prototype so tokens such as 'constructor' or '__proto__' behave as plain keys.
  const vocab = Object.create(null) as Record<string, number>;
  const usedIds = new Map<number, string>();
  let maxId = -1;
  for (const [tok, id] of Object.entries(spec.vocab)) {
    if (!Number.isInteger(id) || id < 0) throw new Error(`vocab id for ${JSON.stringify(tok)} is not a non-negative integer: ${id}`);
    const other = usedIds.get(id);
    if (other !== undefined) throw new Error(`vocab id ${id} used twice: ${JSON.stringify(other)} and ${JSON.stringify(tok)}`);
    usedIds.set(id, tok);
    vocab[tok] = id;
    if (id > maxId) maxId = id;
  }

  const merges = spec.merges.map((m): string => {
    const [left, right] = typeof m === 'string' ? splitMerge(m) : m;
    if (!(left in vocab) || !(right in vocab) || !(left + right in vocab)) {
      throw new Error(`merge "${left} ${right}" refers to a token missing from the vocab`);
    }
    return `${left} ${right}`;
  });

  const added: TokenizerJsonAddedToken[] = [];
  for (const a of spec.addedTokens ?? ['<|endoftext|>']) {
    const { content, id: fixedId, special = true } = typeof a === 'string' ? { content: a } as AddedTokenSpec : a;
    let id = fixedId ?? vocab[content];
    if (id === undefined) id = ++maxId;
    else if (id > maxId) maxId = id;
    const holder = usedIds.get(id);
    if (holder !== undefined && holder !== content) {
      throw new Error(`added token ${JSON.stringify(content)} wants id ${id}, held by ${JSON.stringify(holder)}`);
    }
    usedIds.set(id, content);
    vocab[content] = id;
    added.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: true, special });
  }

  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
}

function splitMerge(m: string): [string, string] {
  const parts = m.split(' ');
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') throw new Error(`malformed merge: ${JSON.stringify(m)}`);
  return [parts[0]!, parts[1]!];
}
