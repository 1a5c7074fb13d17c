/** Shared test helpers: the tiny GPT-2 fixture and its independent float64 reference. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../../lib/loadModel.js';
import type { GPT2Model } from '../../lib/model/model.js';

export const FIXTURE_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'tiny-gpt2');

/** expected.json: logits [T,V] and per-layer hidden/mlp/attn states [L][T][d] for `ids`. */
export interface FixtureExpected {
  ids: number[];
  logits: number[][];
  hidden: number[][][];
  mlp: number[][][];
  attn: number[][][];
}

export function fixtureExpected(): FixtureExpected {
  return JSON.parse(fs.readFileSync(path.join(FIXTURE_DIR, 'expected.json'), 'utf8')) as FixtureExpected;
}

let cached: Promise<GPT2Model> | null = null;
/** The fixture model, loaded once per test process. */
export function fixtureModel(): Promise<GPT2Model> {
  cached ??= loadModel(FIXTURE_DIR);
  return cached;
}

/** Largest absolute difference between two equally shaped nested arrays. */
export function maxAbsDiff(a: unknown, b: unknown): number {
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return Infinity;
    let m = 0;
    for (let i = 0; i < a.length; i++) m = Math.max(m, maxAbsDiff(a[i], b[i]));
    return m;
  }
  if (typeof a === 'number' && typeof b === 'number') return Math.abs(a - b);
  return Infinity;
}
