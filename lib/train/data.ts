/**
 * Training data: text → one token stream (documents joined by EOS) → windows of T+1 tokens (T inputs, T shifted
 * targets) → batches in a seeded shuffled order per epoch, resumable from a small cursor.
 *
 * The tokenised stream is cached as a raw little-endian Int32 file keyed by sha256(text, tokenizer key), since
 * tokenising a few MB with a JS BPE takes minutes on a slow CPU and every restart would repeat it.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { sha256 } from '../data/hash.js';
import { createRng, mixSeed } from '../rng.js';

/** The part of a tokenizer the data pipeline needs (lib/tokenizer's Tokenizer satisfies it). */
export interface TokenizerLike {
  encode(text: string): { ids: number[] };
  eosId: number | null;
}

/** How a text file is cut into documents before EOS tokens are put between them. */
export type DocumentSplit = 'blank-line' | 'line' | 'none';

/** Splits text into non-empty documents. */
export function splitDocuments(text: string, split: DocumentSplit): string[] {
  const parts = split === 'none' ? [text] : split === 'line' ? text.split(/\r?\n/) : text.split(/\r?\n[ \t]*\r?\n/);
  return parts.map((p) => p.trim()).filter((p) => p.length > 0);
}

/** Options for tokenizeText / tokenizeFile. */
export interface TokenizeOptions {
  split?: DocumentSplit;
  /** Directory for the Int32 cache (e.g. build/token-cache); no caching when absent. */
  cacheDir?: string;
  /**
   * Identifies the tokenizer in the cache key (e.g. sha256 of tokenizer.json). Required for caching; without it
   * nothing is cached, since two tokenizers would otherwise share entries.
   */
  tokenizerKey?: string;
  /** Called every ~2 s while tokenising: documents done / total. */
  onProgress?: (done: number, total: number) => void;
}

/** Token stream of `text`: EOS, doc₁, EOS, doc₂, …, EOS (no separator when the tokenizer has no EOS). */
export async function tokenizeText(text: string, tok: TokenizerLike, opts: TokenizeOptions = {}): Promise<Int32Array> {
  const split = opts.split ?? 'blank-line';
  const key =
    opts.cacheDir && opts.tokenizerKey ? sha256(`${sha256(text)}\n${opts.tokenizerKey}\n${split}\n${tok.eosId}`) : null;
  const cacheFile = key && opts.cacheDir ? path.join(opts.cacheDir, `${key}.i32`) : null;
  if (cacheFile) {
    const cached = await readInt32File(cacheFile).catch(() => null);
    if (cached) return cached;
  }
  const docs = splitDocuments(text, split);
  const chunks: number[][] = [];
  let total = 0;
  let last = Date.now();
  const eos = tok.eosId;
  for (let i = 0; i < docs.length; i++) {
    const ids = tok.encode(docs[i]!).ids;
    chunks.push(ids);
    total += ids.length + (eos === null ? 0 : 1);
    if (opts.onProgress && Date.now() - last > 2000) {
      last = Date.now();
      opts.onProgress(i + 1, docs.length);
    }
  }
  const out = new Int32Array(total + (eos === null ? 0 : 1));
  let o = 0;
  if (eos !== null) out[o++] = eos;
  for (const ids of chunks) {
    out.set(ids, o);
    o += ids.length;
    if (eos !== null) out[o++] = eos;
  }
  if (cacheFile) await writeInt32File(cacheFile, out);
  return out;
}

/** tokenizeText on a UTF-8 file. */
export async function tokenizeFile(file: string, tok: TokenizerLike, opts: TokenizeOptions = {}): Promise<Int32Array> {
  return tokenizeText(await fsp.readFile(file, 'utf8'), tok, opts);
}

/** Reads a raw little-endian Int32 file. */
export async function readInt32File(file: string): Promise<Int32Array> {
  const buf = await fsp.readFile(file);
  if (buf.byteLength % 4 !== 0) throw new Error(`${file}: size ${buf.byteLength} is not a multiple of 4`);
  const out = new Int32Array(buf.byteLength / 4);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = dv.getInt32(i * 4, true);
  return out;
}

/** Writes a raw little-endian Int32 file atomically (temp + rename). */
export async function writeInt32File(file: string, data: Int32Array): Promise<void> {
  const buf = Buffer.alloc(data.length * 4);
  for (let i = 0; i < data.length; i++) buf.writeInt32LE(data[i]!, i * 4);
  await writeFileAtomic(file, buf);
}

/** Writes a file via a temporary sibling and rename, so readers never see a partial file. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await fsp.writeFile(tmp, data);
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}

/** Where a WindowSampler is in its stream of batches (stored in checkpoints). */
export interface SamplerCursor {
  epoch: number;
  /** Next window index into this epoch's order. */
  index: number;
}

/** One batch: row-major [B, T] inputs and next-token targets. */
export interface Batch {
  inputs: Int32Array;
  targets: Int32Array;
  batch: number;
  seqLen: number;
  /** Loss weight of each target token ([B, T], row-major); absent means 1 everywhere. */
  weights?: Float32Array;
  /** Training dropout for this batch (rate and one mask seed per row); absent: none. */
  dropout?: { rate: number; rowSeeds: Uint32Array };
  /**
   * Subject knockout for this batch: in blocks 0 … layers−1, query (b, t) does not attend to keys
   * [cutFrom[b·T+t], cutTo[b·T+t]) of its row (window positions; an empty range cuts nothing).
   */
  knockout?: SubjectKnockout;
}

/** Per-query key ranges cut from the attention of the lower `layers` blocks (see Batch.knockout). */
export interface SubjectKnockout {
  layers: number;
  /** Weight of the leak penalty (attention the plain model would give the cut edges; see batchLoss); 0: none. */
  leakPenalty?: number;
  /** Also penalise block 0's leak with the subject's embeddings noised, sd = noiseLeak × sd(wte); 0: none. */
  noiseLeak?: number;
  cutFrom: Int32Array;
  cutTo: Int32Array;
  /**
   * Subject readout ([B, T], window positions): where ≥ 0, the token the residual after block layers−1 must predict
   * through the final norm and unembedding (the object's first token, at the last subject token; see batchLoss).
   */
  readTarget?: Int32Array;
  /** Loss weight of each readout target (per token, like Batch.weights); 0 or absent: no readout loss. */
  readWeight?: number;
  /**
   * Extraction supervision ([B, T], window positions): where ≥ 0, the key position (the last subject token) that query
   * position's attention in the blocks from `layers` on should find (see batchLoss).
   */
  extractFrom?: Int32Array;
  /** Loss weight of each extraction query; 0 or absent: none. */
  extractWeight?: number;
  /** Blocks 0 … innerLayers−1 in which a subject token may not attend to the earlier subject tokens (innerFrom). */
  innerLayers?: number;
  /** [B, T], window positions: where ≥ 0, query t may not attend to keys [innerFrom, t) in those blocks. */
  innerFrom?: Int32Array;
}

/** Stream-level key ranges to cut per query token (−1 where nothing is cut), with the number of lower blocks. */
export interface StreamKnockout {
  layers: number;
  leakPenalty?: number;
  noiseLeak?: number;
  from: Int32Array;
  to: Int32Array;
  /** Per stream token: the readout target (subjectReadout) or −1. */
  readTarget?: Int32Array;
  readWeight?: number;
  /** Per stream token: the stream position its upper-block attention should find (subjectReadout's extractFrom) or −1. */
  extractFrom?: Int32Array;
  extractWeight?: number;
  /** Blocks 0 … innerLayers−1 in which subject tokens may not attend to earlier subject tokens (innerFrom); 0: none. */
  innerLayers?: number;
  /**
   * Per stream token inside a subject after its first token: the subject's first stream position, so that in the
   * lowest innerLayers blocks the token cannot gather the earlier subject tokens and no lower MLP sees the whole
   * subject (subjectKnockout's innerFrom); −1 elsewhere.
   */
  innerFrom?: Int32Array;
}

/**
 * Cuts a token stream into windows of T+1 tokens and serves them in a shuffled order per epoch.
 *
 * Each epoch starts the windows at a random offset in [0, T) (so a fact is not always cut at the same place)
 * and visits them in a random order; both come from a stream seeded by (seed, epoch), so the cursor alone
 * resumes the exact sequence.
 */
export class WindowSampler {
  readonly tokens: Int32Array;
  /** Loss weight of each stream token (same length as tokens), served aligned with the targets; null: none. */
  readonly weights: Float32Array | null;
  readonly seqLen: number;
  readonly seed: number;
  private epoch = -1;
  private order: number[] = [];
  private offset = 0;
  private index = 0;

  /** Key ranges cut from each stream token's lower-layer attention; null: none. */
  readonly knockout: StreamKnockout | null;

  constructor(
    tokens: Int32Array,
    seqLen: number,
    seed: number,
    cursor?: SamplerCursor,
    weights?: Float32Array,
    knockout?: StreamKnockout,
  ) {
    if (!Number.isInteger(seqLen) || seqLen < 1) throw new Error(`WindowSampler: seqLen must be a positive integer, got ${seqLen}`);
    if (weights !== undefined && weights.length !== tokens.length) {
      throw new Error(`WindowSampler: ${weights.length} token weights for ${tokens.length} tokens`);
    }
    if (knockout !== undefined && (knockout.from.length !== tokens.length || knockout.to.length !== tokens.length)) {
      throw new Error(`WindowSampler: knockout ranges for ${knockout.from.length} tokens, the stream has ${tokens.length}`);
    }
    if (knockout?.readTarget !== undefined && knockout.readTarget.length !== tokens.length) {
      throw new Error(`WindowSampler: readout targets for ${knockout.readTarget.length} tokens, the stream has ${tokens.length}`);
    }
    if (knockout?.innerFrom !== undefined && knockout.innerFrom.length !== tokens.length) {
      throw new Error(`WindowSampler: subject-inner ranges for ${knockout.innerFrom.length} tokens, the stream has ${tokens.length}`);
    }
    if (knockout?.extractFrom !== undefined && knockout.extractFrom.length !== tokens.length) {
      throw new Error(`WindowSampler: extraction sources for ${knockout.extractFrom.length} tokens, the stream has ${tokens.length}`);
    }
    this.weights = weights ?? null;
    this.knockout = knockout ?? null;
    if (tokens.length < 2 * seqLen + 1) {
      throw new Error(`WindowSampler: ${tokens.length} tokens are too few for windows of ${seqLen} (need ≥ ${2 * seqLen + 1})`);
    }
    this.tokens = tokens;
    this.seqLen = seqLen;
    this.seed = seed;
    const c = cursor ?? { epoch: 0, index: 0 };
    this.startEpoch(c.epoch);
    if (c.index < 0 || c.index > this.order.length) throw new Error(`WindowSampler: cursor index ${c.index} out of range`);
    this.index = c.index;
  }

  /** Windows per epoch (depends slightly on the epoch's offset). */
  get windowsPerEpoch(): number {
    return this.order.length;
  }

  /** The position of the next window. */
  cursor(): SamplerCursor {
    return { epoch: this.epoch, index: this.index };
  }

  private startEpoch(epoch: number): void {
    const rng = createRng(mixSeed(this.seed, epoch));
    const T = this.seqLen;
    this.offset = rng.int(T);
    const n = Math.floor((this.tokens.length - 1 - this.offset) / T);
    this.order = rng.shuffle(Array.from({ length: n }, (_, i) => i));
    this.epoch = epoch;
    this.index = 0;
  }

  /** The next `B` windows (crossing into the next epoch when this one runs out). */
  next(B: number): Batch {
    const T = this.seqLen;
    const inputs = new Int32Array(B * T);
    const targets = new Int32Array(B * T);
    const weights = this.weights ? new Float32Array(B * T) : undefined;
    const ko = this.knockout;
    const cutFrom = ko ? new Int32Array(B * T) : null;
    const cutTo = ko ? new Int32Array(B * T) : null;
    const readTarget = ko?.readTarget ? new Int32Array(B * T) : null;
    const extractFrom = ko?.extractFrom ? new Int32Array(B * T).fill(-1) : null;
    const innerFrom = ko?.innerFrom && ko.innerLayers ? new Int32Array(B * T).fill(-1) : null;
    for (let b = 0; b < B; b++) {
      if (this.index >= this.order.length) this.startEpoch(this.epoch + 1);
      const start = this.offset + (this.order[this.index++] as number) * T;
      inputs.set(this.tokens.subarray(start, start + T), b * T);
      targets.set(this.tokens.subarray(start + 1, start + T + 1), b * T);
      if (weights && this.weights) weights.set(this.weights.subarray(start + 1, start + T + 1), b * T);
      if (ko?.readTarget && readTarget) readTarget.set(ko.readTarget.subarray(start, start + T), b * T);
      if (ko?.extractFrom && extractFrom) {
        for (let t = 0; t < T; t++) {
          const f = ko.extractFrom[start + t] as number;
          // Window-relative; a source before the window cannot be attended to, so that query is not supervised.
          if (f >= start) extractFrom[b * T + t] = f - start;
        }
      }
      if (ko?.innerFrom && innerFrom) {
        for (let t = 0; t < T; t++) {
          const f = ko.innerFrom[start + t] as number;
          // Window-relative; a subject that began before the window is cut from the window's start.
          if (f >= 0) innerFrom[b * T + t] = Math.max(0, f - start);
        }
      }
      if (ko && cutFrom && cutTo) {
        for (let t = 0; t < T; t++) {
          const f = ko.from[start + t] as number;
          if (f < 0) continue;
          // Window-relative; a range that began before the window is clipped to its start.
          const to = (ko.to[start + t] as number) - start;
          if (to <= 0) continue;
          cutFrom[b * T + t] = Math.max(0, f - start);
          cutTo[b * T + t] = to;
        }
      }
    }
    const out: Batch = weights ? { inputs, targets, batch: B, seqLen: T, weights } : { inputs, targets, batch: B, seqLen: T };
    if (ko && cutFrom && cutTo) {
      out.knockout = {
        layers: ko.layers,
        cutFrom,
        cutTo,
        ...(ko.leakPenalty ? { leakPenalty: ko.leakPenalty } : {}),
        ...(ko.noiseLeak ? { noiseLeak: ko.noiseLeak } : {}),
        ...(readTarget && ko.readWeight ? { readTarget, readWeight: ko.readWeight } : {}),
        ...(extractFrom && ko.extractWeight ? { extractFrom, extractWeight: ko.extractWeight } : {}),
        ...(innerFrom && ko.innerLayers ? { innerFrom, innerLayers: ko.innerLayers } : {}),
      };
    }
    return out;
  }
}

/** Consecutive non-overlapping windows of a held-out stream, for a fixed validation set (at most `maxWindows`). */
export function evalWindows(tokens: Int32Array, seqLen: number, maxWindows: number, batch: number): Batch[] {
  const n = Math.min(maxWindows, Math.floor((tokens.length - 1) / seqLen));
  const out: Batch[] = [];
  for (let w0 = 0; w0 < n; w0 += batch) {
    const B = Math.min(batch, n - w0);
    const inputs = new Int32Array(B * seqLen);
    const targets = new Int32Array(B * seqLen);
    for (let b = 0; b < B; b++) {
      const s = (w0 + b) * seqLen;
      inputs.set(tokens.subarray(s, s + seqLen), b * seqLen);
      targets.set(tokens.subarray(s + 1, s + seqLen + 1), b * seqLen);
    }
    out.push({ inputs, targets, batch: B, seqLen });
  }
  return out;
}

/**
 * Walks a token stream laid out as tokenizeText writes it (EOS, doc₁, EOS, doc₂, …, EOS), calling
 * visit(d, start, end) with each document's token range [start, end). `expectLength(d)`, when it returns a number,
 * is checked against the range (the document encoded now vs the stream, which may come from a stale cache). Errors
 * name `who`.
 */
export function forEachStreamDocument(
  tokens: Int32Array,
  docs: readonly string[],
  eos: number | null,
  who: string,
  visit: (d: number, start: number, end: number) => void,
  expectLength?: (d: number) => number | null,
): void {
  if (eos === null) throw new Error(`${who}: the tokenizer has no EOS token, so documents cannot be located in the stream`);
  if (tokens[0] !== eos) throw new Error(`${who}: the stream does not start with EOS`);
  let pos = 1;
  for (let d = 0; d < docs.length; d++) {
    let end = pos;
    while (end < tokens.length && tokens[end] !== eos) end++;
    if (end >= tokens.length) throw new Error(`${who}: the stream ends before document ${d + 1} of ${docs.length}`);
    const want = expectLength?.(d) ?? null;
    if (want !== null && want !== end - pos) {
      throw new Error(`${who}: document ${d + 1} has ${end - pos} tokens in the stream, ${want} when encoded: stale token cache?`);
    }
    visit(d, pos, end);
    pos = end + 1;
  }
  if (pos !== tokens.length) throw new Error(`${who}: ${tokens.length - pos} stream tokens after the last of ${docs.length} documents`);
}

/**
 * The documents of a stream laid out as tokenizeText writes it (EOS, doc₁, EOS, …) for which keep(d) is true, as a
 * stream of the same layout: tokens [EOS, docₐ, EOS, doc_b, EOS, …] and the kept documents' texts, in stream order
 * (so the per-token arrays of objectWeights and subjectKnockout can be computed on it as on the full stream).
 */
export function selectStreamDocuments(
  tokens: Int32Array,
  docs: readonly string[],
  eos: number | null,
  keep: (d: number) => boolean,
  who = 'selectStreamDocuments',
): { tokens: Int32Array; docs: string[] } {
  const ranges: Array<[number, number]> = [];
  const kept: string[] = [];
  let n = 1;
  forEachStreamDocument(tokens, docs, eos, who, (d, start, end) => {
    if (!keep(d)) return;
    ranges.push([start, end]);
    kept.push(docs[d] as string);
    n += end - start + 1;
  });
  const out = new Int32Array(n);
  out[0] = eos as number;
  let at = 1;
  for (const [s, e] of ranges) {
    out.set(tokens.subarray(s, e), at);
    at += e - s;
    out[at++] = eos as number;
  }
  return { tokens: out, docs: kept };
}
