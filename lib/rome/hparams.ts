/**
 * ROME hyperparameters: a typed view of the JSON files in `hparams/ROME/` (our own camelCase format; the values of
 * the GPT-2/GPT-J files are the official ones, the bundled model's are chosen from its causal trace).
 */
import type { ValueHparams } from './computeValue.js';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../data/paths.js';

/**
 * ROME hyperparameters (see paper-spec §2). The v* optimisation's fields come from ValueHparams: vNumGradSteps (the official loop makes at most
 * vNumGradSteps − 1 updates; we follow it), vLr, vWeightDecay, klFactor, clampNormFactor, earlyStopLoss (official 5e-2).
 */
export interface RomeHparams extends ValueHparams {
  /** The edited layer l* (0-based). */
  layer: number;
  /** Context prefixes: `count` texts of `length` generated tokens each. */
  contextTemplates: { length: number; count: number }[];
  /** Seed of the prefix sampler (the official code does not seed). */
  contextSeed: number;
  /** true: u = C⁻¹k* with C from layerStats; false: C = I. */
  mom2Adjustment: boolean;
  /** Corpus tokens for C (null: no token limit, use mom2Samples). */
  mom2Tokens: number | null;
  /** Corpus samples (paragraphs for rome-ts's corpus; official: Wikipedia articles) for C (null: no limit). */
  mom2Samples: number | null;
  /** Which key the right vector uses: the paper's averaged k* (default) or the official code's bare-prompt key. */
  rightVectorKey: 'averaged' | 'bare-prompt';
}

/** Paper / official defaults (GPT-2 XL values; the layer must be set per model). */
export const ROME_DEFAULTS: Omit<RomeHparams, 'layer'> = {
  vNumGradSteps: 20,
  vLr: 0.5,
  vWeightDecay: 0.5,
  klFactor: 0.0625,
  clampNormFactor: 4,
  earlyStopLoss: 0.05,
  contextTemplates: [
    { length: 5, count: 10 },
    { length: 10, count: 10 },
  ],
  contextSeed: 0,
  mom2Adjustment: true,
  mom2Tokens: 1_000_000,
  mom2Samples: null,
  rightVectorKey: 'averaged',
};

/** The hparams/ directory of this checkout or package. */
export function hparamsDir(): string {
  const root = repoRoot();
  if (!root) throw new Error('hparams: cannot find the rome-ts package root');
  return path.join(root, 'hparams');
}

/** Reads a hyperparameter JSON: `name` is a path, or a file name under hparams/<method>/ (".json" optional). */
export function readHparamsFile(method: 'ROME' | 'FT' | 'KN', name: string): Record<string, unknown> {
  const candidates = [name, path.join(hparamsDir(), method, name.endsWith('.json') ? name : `${name}.json`)];
  for (const c of candidates) {
    if (existsSync(c) && c.endsWith('.json')) return JSON.parse(readFileSync(c, 'utf8')) as Record<string, unknown>;
  }
  throw new Error(`hparams: no ${method} file "${name}" (looked at ${candidates.join(', ')})`);
}

function pick<T extends object>(defaults: T, raw: Record<string, unknown>): T {
  const out = { ...defaults } as Record<string, unknown>;
  for (const k of Object.keys(defaults)) if (raw[k] !== undefined) out[k] = raw[k];
  return out as T;
}

/** ROME hyperparameters from a file name (e.g. "gpt2-xl", "rome-fact-gpt2") or path, merged over the defaults. */
export function loadRomeHparams(name: string): RomeHparams {
  const raw = readHparamsFile('ROME', name);
  if (typeof raw.layer !== 'number') throw new Error(`hparams ${name}: "layer" must be a number`);
  return { ...pick(ROME_DEFAULTS, raw), layer: raw.layer };
}

/** Completes partial hyperparameters; the layer defaults to the model's middle layer when not given. */
export function resolveRomeHparams(nLayer: number, hp: Partial<RomeHparams> = {}): RomeHparams {
  const layer = hp.layer ?? Math.floor(nLayer / 2);
  if (!Number.isInteger(layer) || layer < 0 || layer >= nLayer) throw new Error(`ROME: layer ${layer} out of range [0, ${nLayer})`);
  return { ...ROME_DEFAULTS, ...hp, layer };
}
