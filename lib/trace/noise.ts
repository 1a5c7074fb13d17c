/**
 * The corruption noise level ν of causal tracing: a multiple of the standard deviation of subject token embeddings.
 *
 * Following the official code (`collect_embedding_std`), every subject is tokenised ALONE, exactly as written
 * (no leading space is added, although inside prompts most subjects follow a space), the `wte` rows of its tokens
 * are gathered, and σ is the (unbiased, n−1) standard deviation of all their elements pooled together. ν = 3σ.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { GPT2Model } from '../model/model.js';
import { embedParam } from '../model/family.js';
import { loadKnownFacts } from '../data/knownFacts.js';

/** Options of embeddingNoiseLevel. */
export interface NoiseLevelOptions {
  /** ν = multiplier · σ (default 3, the paper's value). */
  multiplier?: number;
}

const cache = new Map<string, number>();

/** Cache key: model identity (name plus the live embedding variable, so two models named alike never collide). */
function cacheKey(model: GPT2Model, subjects: readonly string[]): string {
  const h = createHash('sha256');
  for (const s of subjects) h.update(s).update('\u0000');
  return `${model.name}|${model.params.get(embedParam(model.config)).id}|${subjects.length}|${h.digest('hex')}`;
}

/** σ: standard deviation (n−1) of all elements of the token embeddings of the subjects' tokens. Cached per model. */
export function embeddingStd(model: GPT2Model, subjects: readonly string[]): number {
  if (subjects.length === 0) throw new Error('embeddingStd: no subjects given');
  const key = cacheKey(model, subjects);
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const ids: number[] = [];
  for (const s of subjects) ids.push(...model.encodeContinuation(s));
  if (ids.length === 0) throw new Error('embeddingStd: the subjects have no tokens');
  const d = model.config.nEmbd;
  // Two-pass moments in float64 on the host: millions of float32 elements would lose digits in a float32 sum.
  const rows = tf.tidy(() => tf.gather(model.params.get(embedParam(model.config)), tf.tensor1d(ids, 'int32')));
  const data = rows.dataSync();
  rows.dispose();
  let sum = 0;
  for (let i = 0; i < data.length; i++) sum += data[i];
  const mean = sum / data.length;
  let ss = 0;
  for (let i = 0; i < data.length; i++) ss += (data[i] - mean) ** 2;
  const n = ids.length * d;
  const std = Math.sqrt(ss / Math.max(1, n - 1));
  cache.set(key, std);
  return std;
}

/** ν = multiplier × σ over the subjects' token embeddings (see module doc); cached per model and subject set. */
export function embeddingNoiseLevel(model: GPT2Model, subjects: readonly string[], opts: NoiseLevelOptions = {}): number {
  const m = opts.multiplier ?? 3;
  if (!(m >= 0)) throw new Error(`embeddingNoiseLevel: multiplier must be >= 0, got ${m}`);
  return m * embeddingStd(model, subjects);
}

/** Forgets every cached σ (e.g. after editing a model's embeddings in place). */
export function clearNoiseCache(): void {
  cache.clear();
}

/** Subjects of the known-facts set (ROME's known_1000.json), for the default noise level. */
export async function knownFactSubjects(): Promise<string[]> {
  const facts = await loadKnownFacts();
  return facts.map((f) => f.subject);
}

/** File in a model directory holding its known-facts noise level, so tracing needs no data directory. */
export const NOISE_FILE = 'noise.json';

/** Content of a model directory's noise.json. */
export interface ModelNoiseFile {
  format: 'rome-ts-noise';
  version: 1;
  /** ν = multiplier · σ. */
  noise: number;
  sigma: number;
  multiplier: number;
  /** Where the subjects came from (e.g. "known_1000.json") and how many there were. */
  subjects: string;
  nSubjects: number;
  /** sha256 of the wte.weight float32 bytes ν was computed from (the file is ignored for other embeddings). */
  wteSha256: string;
}

/** sha256 of a model's token-embedding bytes. */
export function wteSha256(model: GPT2Model): string {
  const d = model.params.get('wte.weight').dataSync() as Float32Array;
  return createHash('sha256').update(Buffer.from(d.buffer, d.byteOffset, d.byteLength)).digest('hex');
}

/** The noise.json content for a model: ν over the known-facts subjects (needs the data directory once). */
export async function modelNoiseFile(model: GPT2Model): Promise<ModelNoiseFile> {
  const subjects = await knownFactSubjects();
  const sigma = embeddingStd(model, subjects);
  return { format: 'rome-ts-noise', version: 1, noise: 3 * sigma, sigma, multiplier: 3, subjects: 'known_1000.json', nSubjects: subjects.length, wteSha256: wteSha256(model) };
}

const modelNoise = new WeakMap<GPT2Model, number>();

/**
 * Reads `<dir>/noise.json` (if any) for a model just loaded from `dir`; when it matches the model's embeddings its ν
 * becomes the model's 'auto' noise level. A malformed or mismatched file is named on stderr and ignored.
 */
export function attachModelNoiseFile(model: GPT2Model, dir: string): void {
  const file = path.join(dir, NOISE_FILE);
  if (!existsSync(file)) return;
  let f: Partial<ModelNoiseFile>;
  try {
    f = JSON.parse(readFileSync(file, 'utf8')) as Partial<ModelNoiseFile>;
  } catch (e) {
    process.stderr.write(`rome-ts: ignoring ${file}: not valid JSON (${(e as Error).message})\n`);
    return;
  }
  if (f === null || typeof f !== 'object' || f.format !== 'rome-ts-noise' || typeof f.noise !== 'number' || !(f.noise > 0) || !Number.isFinite(f.noise)) {
    process.stderr.write(`rome-ts: ignoring ${file}: not a rome-ts noise file with a positive finite "noise"\n`);
    return;
  }
  if (f.wteSha256 !== wteSha256(model)) {
    process.stderr.write(`rome-ts: ignoring ${file}: it was computed for other token embeddings (wteSha256 differs)\n`);
    return;
  }
  modelNoise.set(model, f.noise);
}

/**
 * A noise option made concrete: a number passes through; 'auto' is 3σ over `subjects`, or over the known-facts
 * subjects when none are given (the paper's choice); for the latter a model directory's noise.json (same value,
 * stored with the model) is used when it matches the embeddings, so no data directory is needed.
 */
export async function resolveNoiseLevel(model: GPT2Model, noise: number | 'auto', subjects?: readonly string[]): Promise<number> {
  if (typeof noise === 'number') return noise;
  if (noise !== 'auto') throw new Error(`noise must be a number or 'auto', got ${JSON.stringify(noise)}`);
  if (!model.tokenizer) {
    throw new Error(`noise 'auto' needs a tokenizer to tokenise the subjects; model "${model.name}" has none: pass a number`);
  }
  const stored = subjects === undefined ? modelNoise.get(model) : undefined;
  if (stored !== undefined) return stored;
  return embeddingNoiseLevel(model, subjects ?? (await knownFactSubjects()));
}
