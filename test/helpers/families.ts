/** The tiny random checkpoints of every non-GPT-2 family (scripts/make-family-fixtures.py) and their references. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../../lib/loadModel.js';
import type { GPT2Model } from '../../lib/model/model.js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

/** Every family fixture (F32, F16 and BF16 variants). */
export const FAMILY_FIXTURES = [
  'tiny-gpt-neox',
  'tiny-gpt-neox-f16',
  'tiny-gpt-neox-bf16',
  'tiny-llama',
  'tiny-llama-f16',
  'tiny-qwen2',
  'tiny-qwen2-bf16',
  'tiny-mistral-bf16',
  'tiny-gptj',
  'tiny-gptj-f16',
  'tiny-gptj-bf16',
] as const;

/** One F32 fixture per family (NeoX, LLaMA, Qwen2 for q/k/v biases + tied head, GPT-J). */
export const FAMILY_MAIN = ['tiny-gpt-neox', 'tiny-llama', 'tiny-qwen2', 'tiny-gptj'] as const;

/** expected.json of a family fixture: logits [T,V], per-layer hidden/attn/mlp [L][T][d] and key [L][T][nInner]. */
export interface FamilyExpected {
  dtype: string;
  ids: number[];
  logits: number[][];
  hidden: number[][][];
  attn: number[][][];
  mlp: number[][][];
  key: number[][][];
}

/** Directory of a fixture. */
export function familyDir(name: string): string {
  return path.join(FIXTURES, name);
}

/** The float64 reference of a fixture. */
export function familyExpected(name: string): FamilyExpected {
  return JSON.parse(fs.readFileSync(path.join(familyDir(name), 'expected.json'), 'utf8')) as FamilyExpected;
}

const cache = new Map<string, Promise<GPT2Model>>();
/** A fixture model, loaded once per test process. */
export function familyModel(name: string): Promise<GPT2Model> {
  let m = cache.get(name);
  if (!m) {
    m = loadModel(familyDir(name));
    cache.set(name, m);
  }
  return m;
}
