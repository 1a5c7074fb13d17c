/**
 * ROME's key statistics: C = E[k kᵀ] (uncentred second moment) of the MLP keys of one layer over a text corpus,
 * every real (non-padding) token counted. Samples are corpus items (paragraphs by default) truncated to the
 * model's context; they are processed in a fixed order, in buffers of 64 sorted by length to limit padding.
 *
 * The sum Σ k kᵀ is accumulated in float64 (per-batch products in float32 on the backend) and cached on disk with
 * metadata {model name, hash of the weights the keys depend on, layer, corpus name + identity, tokens, samples,
 * dtype}. A later call that asks for more tokens resumes from the cached sum (the sample cursor is stored), so an
 * interrupted run (checkpoints every 60 s) or a too-small cache is extended, never recomputed. A cache holding
 * more tokens than asked is used as is.
 */
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { openTextCorpus } from '../data/corpus.js';
import { sha256 } from '../data/hash.js';
import { cacheDir, repoRoot } from '../data/paths.js';
import type { GPT2Model } from '../model/model.js';
import { progressBar } from '../progress.js';
import { sharedTracePool, type TracePool } from '../trace/parallel.js';
import { mom2Solver, type CovarianceSolver } from './covariance.js';
import { keyUpstreamHash } from './identity.js';
import { encodeText, padIds } from './tokens.js';

/** A corpus for statistics: deterministic texts plus what identifies them. */
export interface StatsCorpus {
  name: string;
  /** Changes whenever the texts could change (used in cache keys). */
  identity: string;
  texts(): AsyncIterable<string> | Iterable<string>;
}

/** A corpus from in-memory texts (identity = hash of the texts). */
export function corpusFromTexts(name: string, texts: readonly string[]): StatsCorpus {
  return { name, identity: sha256(JSON.stringify(texts)), texts: () => texts };
}

/**
 * A corpus from a UTF-8 text file, one document per line (empty lines skipped); identity = hash of the file. A
 * relative path resolves against the rome-ts package root. `field` names the setting in error messages.
 */
export async function corpusFromFile(file: string, field = 'corpus'): Promise<StatsCorpus> {
  const root = repoRoot();
  const abs = path.isAbsolute(file) || !root ? path.resolve(file) : path.join(root, file);
  let bytes: Buffer;
  try {
    bytes = await readFile(abs);
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${(e as Error).message})`;
    throw new Error(`${field}: ${abs} ${why}${/build\/corpus/.test(abs) ? ' (npm run build:corpus writes it)' : ''}`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new Error(`${field}: ${abs} is not UTF-8 text`);
  }
  const lines = text.split('\n').filter((l) => l.trim().length > 0);
  if (lines.length === 0) throw new Error(`${field}: ${abs} holds no text`);
  return { name: path.basename(abs), identity: sha256(bytes), texts: () => lines };
}

let defaultCorpus: Promise<StatsCorpus> | null = null;
/** WikiText-2 raw test + Gutenberg paragraphs from the data directory (lib/data/corpus.ts), opened once. */
export function defaultStatsCorpus(): Promise<StatsCorpus> {
  defaultCorpus ??= openTextCorpus({ unit: 'paragraph' }).then((c) => ({
    name: c.name,
    identity: c.identity,
    async *texts() {
      for await (const it of c) yield it.text;
    },
  }));
  return defaultCorpus;
}

/** Cache metadata (also the JSON file next to the binary sum). */
export interface LayerStatsMeta {
  format: 'rome-ts-layer-stats';
  version: 1;
  model: string;
  /** sha256 of the parameters the layer's keys depend on (identity.ts keyUpstreamParams). */
  weightsHash: string;
  layer: number;
  n: number;
  corpusName: string;
  corpusIdentity: string;
  maxLength: number;
  /** Real tokens accumulated. */
  tokens: number;
  /** Corpus samples consumed (the resume cursor). */
  samples: number;
  /** The corpus ran out before the requested amount. */
  exhausted: boolean;
  dtype: 'float64';
  /** sha256 of the .f64 file's bytes (absent in caches written before it was recorded: then only the size is checked). */
  sumSha256?: string;
}

/** Statistics of one layer. */
export interface LayerStats {
  meta: LayerStatsMeta;
  /** Σ k kᵀ over the tokens, row-major [n, n]. */
  sum: Float64Array;
  /** C = Σ k kᵀ / tokens. */
  covariance(): Float64Array;
  /** The (cached) solver for C x = k. */
  solver(): CovarianceSolver;
}

/** Options of layerStats. */
export interface LayerStatsOptions {
  /** Default: defaultStatsCorpus(). */
  corpus?: StatsCorpus;
  /** Token budget (default 1,000,000; null = no limit). */
  maxTokens?: number | null;
  /** Sample budget (default no limit). */
  maxSamples?: number | null;
  /** Truncation of each sample (default the model's context). */
  maxLength?: number;
  /** Tokens per forward batch (rows × padded length), default 2048. */
  batchTokens?: number;
  /** Cache directory; null disables the disk cache. Default `<cache>/layer-stats`. */
  cacheDir?: string | null;
  /** Progress bar on stderr (default true). */
  progress?: boolean;
  /** Seconds between checkpoints (default 60). */
  checkpointSeconds?: number;
  /**
   * Threads computing key batches (the caller's + the shared workers of lib/trace/parallel.ts, each holding its own
   * copy of the weights), or 'auto' (default): min(cores, 2), the second one started after the first
   * AUTO_STATS_THREADS_MIN_TOKENS tokens. The batch sums are added in the same order either way, so the result is the
   * same, bit for bit.
   */
  threads?: number | 'auto';
}

/** Tokens after which layerStats' threads 'auto' starts a second core's worker (starting it costs seconds). */
export const AUTO_STATS_THREADS_MIN_TOKENS = 20_000;

const memory = new Map<string, LayerStats>();

function makeStats(meta: LayerStatsMeta, sum: Float64Array): LayerStats {
  let solver: CovarianceSolver | null = null;
  return {
    meta,
    sum,
    covariance() {
      const c = new Float64Array(sum.length);
      for (let i = 0; i < sum.length; i++) c[i] = sum[i] / meta.tokens;
      return c;
    },
    solver() {
      solver ??= mom2Solver(sum, meta.tokens, meta.n);
      return solver;
    },
  };
}

function saveAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

/** Σ k kᵀ [n·n] (float32, row-major) of the MLP keys of `layer` over the real (unpadded) tokens of `rows` of ids. */
export function keyMoments(model: GPT2Model, layer: number, rows: number[][]): Float32Array {
  const n = model.config.nInner;
  const { ids, T } = padIds(model, rows);
  const mask = new Float32Array(rows.length * T);
  rows.forEach((r, b) => mask.fill(1, b * T, b * T + r.length));
  let key: tf.Tensor | null = null;
  const out = model.forward(ids, {
    endLayer: layer + 1,
    logits: 'none',
    hooks: { [`blocks.${layer}.mlp.key`]: (x) => void (key = tf.keep(x)) },
  });
  out.hidden.dispose();
  ids.dispose();
  const kk = tf.tidy(() => {
    const k = tf.mul(tf.reshape(key as unknown as tf.Tensor, [-1, n]), tf.tensor2d(mask, [mask.length, 1])) as tf.Tensor2D;
    return tf.matMul(k, k, true, false);
  });
  (key as unknown as tf.Tensor).dispose();
  const d = kk.dataSync() as Float32Array;
  kk.dispose();
  return d;
}

function addInto(sum: Float64Array, d: Float32Array): void {
  for (let i = 0; i < d.length; i++) sum[i] += d[i] as number;
}

/** What readStatsPair found: the pair, or the first thing wrong with it (the file and why). */
type StatsPair = { ok: true; meta: LayerStatsMeta; sum: Float64Array } | { ok: false; file: string; why: string };

/**
 * Reads `<base>.json` + `<base>.f64` for n-wide keys and checks what a pair must satisfy whatever its use: a metadata
 * object of the right format, a positive token count, a non-negative sample count, n·n float64 values and (when
 * recorded, or always with `requireChecksum`) a matching sha256. A truncated .f64 read as zeros would otherwise shrink
 * every edit silently. Callers decide whether a problem throws or warns.
 */
function readStatsPair(base: string, n: number, requireChecksum: boolean): StatsPair {
  const bad = (file: string, why: string): StatsPair => ({ ok: false, file, why });
  for (const f of [`${base}.json`, `${base}.f64`]) if (!existsSync(f)) return bad(f, 'does not exist');
  let meta: LayerStatsMeta;
  try {
    meta = JSON.parse(readFileSync(`${base}.json`, 'utf8')) as LayerStatsMeta;
  } catch (e) {
    return bad(`${base}.json`, `is not valid JSON (${(e as Error).message})`);
  }
  if (meta === null || typeof meta !== 'object' || meta.format !== 'rome-ts-layer-stats') return bad(`${base}.json`, 'is not a layer-stats metadata file');
  if (meta.n !== n) return bad(`${base}.json`, `holds ${JSON.stringify(meta.n)}-wide keys, but the model's MLP is ${n} wide`);
  if (!Number.isSafeInteger(meta.tokens) || meta.tokens <= 0) return bad(`${base}.json`, `field "tokens" must be a positive integer, got ${JSON.stringify(meta.tokens)}`);
  if (!Number.isSafeInteger(meta.samples) || meta.samples < 0) return bad(`${base}.json`, `field "samples" must be a non-negative integer, got ${JSON.stringify(meta.samples)}`);
  const buf = readFileSync(`${base}.f64`);
  if (buf.byteLength !== n * n * 8) return bad(`${base}.f64`, `has ${buf.byteLength} bytes, expected ${n * n * 8} (${n}×${n} float64)`);
  if (requireChecksum && typeof meta.sumSha256 !== 'string') return bad(`${base}.json`, 'records no checksum ("sumSha256") for its .f64');
  if (meta.sumSha256 !== undefined && sha256(buf) !== meta.sumSha256) return bad(`${base}.f64`, 'does not match the checksum in its metadata');
  const sum = new Float64Array(n * n);
  new Uint8Array(sum.buffer).set(buf);
  return { ok: true, meta, sum };
}

/**
 * Reads a cached sum if it belongs to these weights and corpus and is intact (readStatsPair); a cache of other weights
 * or another corpus is skipped quietly, a damaged one with a warning on stderr naming the file. Either way the caller
 * recomputes.
 */
export function readStatsCache(base: string, weightsHash: string, n: number, corpusIdentity: string): LayerStats | null {
  const pair = readStatsPair(base, n, false);
  if (!pair.ok) {
    process.stderr.write(`layerStats: ignoring the cache ${pair.file}: it ${pair.why}; recomputing\n`);
    return null;
  }
  if (pair.meta.weightsHash !== weightsHash || pair.meta.corpusIdentity !== corpusIdentity) return null;
  return makeStats(pair.meta, pair.sum);
}

/**
 * Writes statistics as a standalone file pair `<base>.json` + `<base>.f64` (the cache's format), e.g. to ship the C
 * of a model next to its weights; refuses to overwrite existing files.
 */
export function saveLayerStatsFile(stats: LayerStats, base: string): void {
  for (const f of [`${base}.json`, `${base}.f64`]) if (existsSync(f)) throw new Error(`saveLayerStatsFile: ${f} exists; remove it first`);
  mkdirSync(path.dirname(base), { recursive: true });
  const bytes = new Uint8Array(stats.sum.buffer, stats.sum.byteOffset, stats.sum.byteLength);
  const meta: LayerStatsMeta = { ...stats.meta, sumSha256: sha256(bytes) };
  saveAtomic(`${base}.f64`, bytes);
  saveAtomic(`${base}.json`, JSON.stringify(meta, null, 1));
}

/**
 * Reads a standalone statistics file pair (saveLayerStatsFile) for `layer` of `model`, strictly: any mismatch (other
 * weights, layer or width, a bad checksum, a missing file) throws, naming `field` and the file. `file` may be the
 * base path or either file of the pair; a relative path resolves against the rome-ts package root.
 */
export function loadLayerStatsFile(model: GPT2Model, layer: number, file: string, field = 'mom2Stats'): LayerStats {
  const root = repoRoot();
  const abs = path.isAbsolute(file) || !root ? path.resolve(file) : path.join(root, file);
  const base = abs.replace(/\.(json|f64)$/, '');
  const pair = readStatsPair(base, model.config.nInner, true);
  if (!pair.ok) throw new Error(`${field}: ${pair.file} ${pair.why}`);
  const { meta } = pair;
  if (meta.layer !== layer) throw new Error(`${field}: ${base}.json holds layer ${JSON.stringify(meta.layer)}, but the edit is at layer ${layer}`);
  if (meta.weightsHash !== keyUpstreamHash(model, layer)) {
    throw new Error(`${field}: ${base}.json was computed for other weights (${String(meta.model)}) than layer ${layer}'s inputs in this model`);
  }
  return makeStats(meta, pair.sum);
}

/** Computes (or loads, or extends) the key statistics of `layer`; see the module comment. */
export async function layerStats(model: GPT2Model, layer: number, opts: LayerStatsOptions = {}): Promise<LayerStats> {
  const n = model.config.nInner;
  const corpus = opts.corpus ?? (await defaultStatsCorpus());
  const maxTokens = opts.maxTokens === undefined ? 1_000_000 : opts.maxTokens ?? Infinity;
  const maxSamples = opts.maxSamples ?? Infinity;
  const maxLength = Math.min(opts.maxLength ?? model.config.nPositions, model.config.nPositions);
  const batchTokens = opts.batchTokens ?? 2048;
  const weightsHash = keyUpstreamHash(model, layer);
  const key = `${model.name}|${weightsHash}|${layer}|${corpus.identity}|${maxLength}`;
  const dir = opts.cacheDir === undefined ? path.join(cacheDir(), 'layer-stats') : opts.cacheDir;
  const base =
    dir === null
      ? null
      : path.join(dir, model.name.replace(/[^\w.-]/g, '_'), `L${layer}-${weightsHash.slice(0, 16)}-${corpus.identity.slice(0, 16)}-T${maxLength}`);

  const enough = (m: LayerStatsMeta) => m.exhausted || m.tokens >= maxTokens || m.samples >= maxSamples;
  let stats = memory.get(key) ?? null;
  if (!stats && base && existsSync(`${base}.json`) && existsSync(`${base}.f64`)) stats = readStatsCache(base, weightsHash, n, corpus.identity);
  if (stats && enough(stats.meta)) {
    memory.set(key, stats);
    return stats;
  }
  const meta: LayerStatsMeta = stats
    ? { ...stats.meta }
    : {
        format: 'rome-ts-layer-stats',
        version: 1,
        model: model.name,
        weightsHash,
        layer,
        n,
        corpusName: corpus.name,
        corpusIdentity: corpus.identity,
        maxLength,
        tokens: 0,
        samples: 0,
        exhausted: false,
        dtype: 'float64',
      };
  const sum = stats ? Float64Array.from(stats.sum) : new Float64Array(n * n);
  const save = () => {
    if (!base) return;
    mkdirSync(path.dirname(base), { recursive: true });
    const bytes = new Uint8Array(sum.buffer);
    meta.sumSha256 = sha256(bytes);
    saveAtomic(`${base}.f64`, bytes);
    saveAtomic(`${base}.json`, JSON.stringify(meta, null, 1));
  };
  const auto = opts.threads === undefined || opts.threads === 'auto';
  const threads = auto ? Math.min(availableParallelism(), 2) : (opts.threads as number);
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`layerStats: threads must be a positive integer or 'auto', got ${String(opts.threads)}`);
  let pool: TracePool | null = null;
  const tokensAtStart = meta.tokens;
  const bar = opts.progress === false ? null : progressBar(`layerStats ${model.name} L${layer}`);
  const total = Number.isFinite(maxTokens) ? maxTokens : null;
  let lastSave = Date.now();
  const src = corpus.texts();
  const iter = (Symbol.asyncIterator in src ? src[Symbol.asyncIterator]() : (src as Iterable<string>)[Symbol.iterator]()) as
    | AsyncIterator<string>
    | Iterator<string>;
  for (let skipped = 0; skipped < meta.samples; skipped++) {
    if ((await iter.next()).done) {
      meta.exhausted = true;
      break;
    }
  }
  while (!enough(meta)) {
    // 'auto' starts the worker only once this call has done AUTO_STATS_THREADS_MIN_TOKENS tokens on one thread, so a
    // small corpus never pays for it.
    if (!pool && threads > 1 && (!auto || meta.tokens - tokensAtStart >= AUTO_STATS_THREADS_MIN_TOKENS)) pool = await sharedTracePool(model, threads);
    // Fill a buffer of up to 64 samples within the budgets.
    const buffer: number[][] = [];
    let bufTokens = 0;
    while (buffer.length < 64 && meta.samples + buffer.length < maxSamples && meta.tokens + bufTokens < maxTokens) {
      const r = await iter.next();
      if (r.done) {
        meta.exhausted = true;
        break;
      }
      let ids = encodeText(model, r.value).slice(0, maxLength);
      if (meta.tokens + bufTokens + ids.length > maxTokens) ids = ids.slice(0, maxTokens - meta.tokens - bufTokens);
      // Empty samples still advance the cursor.
      buffer.push(ids);
      bufTokens += ids.length;
    }
    if (buffer.length === 0) break;
    const real = buffer.filter((r) => r.length > 0).sort((a, b) => a.length - b.length);
    const batches: number[][][] = [];
    for (let i = 0; i < real.length; ) {
      const rows: number[][] = [];
      while (i < real.length && (rows.length + 1) * real[i].length <= Math.max(batchTokens, real[i].length)) rows.push(real[i++]);
      batches.push(rows);
    }
    const workers = pool ? pool.threads - 1 : 0;
    for (let j = 0; j < batches.length; j += 1 + workers) {
      // Worker w computes batch j+1+w while this thread computes batch j; all are added in batch order.
      const others = batches.slice(j + 1, j + 1 + workers).map((rows, w) => (pool as TracePool).keyMoments(w, layer, rows));
      // A rejected request is awaited below; until then it must not count as unhandled.
      for (const o of others) o.catch(() => undefined);
      addInto(sum, keyMoments(model, layer, batches[j] as number[][]));
      for (const o of others) addInto(sum, await o);
      await new Promise((res) => setImmediate(res));
    }
    meta.samples += buffer.length;
    meta.tokens += bufTokens;
    bar?.update(meta.tokens, total, `${meta.samples} samples`);
    if (Date.now() - lastSave > (opts.checkpointSeconds ?? 60) * 1000) {
      save();
      lastSave = Date.now();
    }
  }
  if (meta.tokens === 0) throw new Error(`layerStats: corpus "${corpus.name}" gave no tokens`);
  save();
  bar?.done(`${meta.tokens} tokens, ${meta.samples} samples`);
  stats = makeStats(meta, sum);
  memory.set(key, stats);
  return stats;
}

/** Forgets the in-memory statistics (disk caches stay). */
export function clearLayerStatsMemory(): void {
  memory.clear();
}
