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
 * vNumGradSteps − 1 updates; we follow it), vLr, vWeightDecay, klFactor, clampNormFactor, earlyStopLoss (official 5e-2), vAdamBeta2 (official 0.999).
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
  /**
   * The text C is estimated on: null = WikiText-2 + Gutenberg paragraphs (defaultStatsCorpus), or a UTF-8 file with
   * one document per line, relative paths resolved against the rome-ts package root. The paper uses Wikipedia, text
   * like GPT-2's training data; for a model trained on other text, its own training text is the analogue.
   */
  mom2Corpus: string | null;
  /**
   * Precomputed statistics (saveLayerStatsFile; relative paths against the package root), used instead of computing
   * C: e.g. shipped with a model whose mom2Corpus its users cannot rebuild. Checked against the model's weights and
   * layer, and against mom2Tokens and mom2Corpus when those are set.
   */
  mom2Stats: string | null;
  /** Which key the right vector uses: the paper's averaged k* (default) or the official code's bare-prompt key. */
  rightVectorKey: 'averaged' | 'bare-prompt';
  /**
   * Which key the left vector u = C⁻¹k uses: the paper's (and the official code's) k* averaged over the
   * context-prefixed prompts (default), or the bare prompt's key (not in the paper; see hparams/ROME `leftNote`).
   */
  leftVectorKey: 'averaged' | 'bare-prompt';
  /**
   * Not in the paper (null = the paper's ROME): a facts file ({ subject, object } list, preservedKeys.ts) naming
   * subjects the model knows; the update leaves unchanged the keys of up to preserveCount of them that have the
   * request's true object (needs request.targetTrue). Relative paths against the package root.
   */
  preserveFacts: string | null;
  /** How many same-object subjects' keys an edit preserves when preserveFacts is set. */
  preserveCount: number;
}

/** Paper / official defaults (GPT-2 XL values; the layer must be set per model). */
export const ROME_DEFAULTS: Omit<RomeHparams, 'layer'> = {
  vNumGradSteps: 20,
  vLr: 0.5,
  vWeightDecay: 0.5,
  klFactor: 0.0625,
  clampNormFactor: 4,
  earlyStopLoss: 0.05,
  vAdamBeta2: 0.999,
  contextTemplates: [
    { length: 5, count: 10 },
    { length: 10, count: 10 },
  ],
  contextSeed: 0,
  mom2Adjustment: true,
  mom2Tokens: 1_000_000,
  mom2Samples: null,
  mom2Corpus: null,
  mom2Stats: null,
  rightVectorKey: 'averaged',
  leftVectorKey: 'averaged',
  preserveFacts: null,
  preserveCount: 8,
};

/** The hparams/ directory of this checkout or package. */
export function hparamsDir(): string {
  const root = repoRoot();
  if (!root) throw new Error('hparams: cannot find the rome-ts package root');
  return path.join(root, 'hparams');
}

/** A hyperparameter file's parsed object and the path it came from (for error messages). */
export interface HparamsFile {
  file: string;
  raw: Record<string, unknown>;
}

/** Reads a hyperparameter JSON: `name` is a path, or a file name under hparams/<method>/ (".json" optional). */
export function readHparamsFile(method: 'ROME' | 'FT' | 'KN', name: string): Record<string, unknown> {
  return locateHparamsFile(method, name).raw;
}

/** Like readHparamsFile, also returning the path; a file that is not a JSON object throws naming it. */
export function locateHparamsFile(method: 'ROME' | 'FT' | 'KN', name: string): HparamsFile {
  const candidates = [name, path.join(hparamsDir(), method, name.endsWith('.json') ? name : `${name}.json`)];
  for (const c of candidates) {
    if (existsSync(c) && c.endsWith('.json')) {
      let raw: unknown;
      try {
        raw = JSON.parse(readFileSync(c, 'utf8'));
      } catch (e) {
        throw new Error(`${c}: not valid JSON (${(e as Error).message})`);
      }
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${c}: a hyperparameter file must hold a JSON object`);
      return { file: c, raw: raw as Record<string, unknown> };
    }
  }
  throw new Error(`hparams: no ${method} file "${name}" (looked at ${candidates.join(', ')})`);
}

/** A rule for one hyperparameter: returns a problem ("must be ...") or null when the value is fine. */
export type HparamRule = (v: unknown) => string | null;

const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : v === undefined ? 'nothing' : JSON.stringify(v) ?? String(v));

/** Rules shared by the methods' validators. */
export const rules = {
  int: (min: number): HparamRule => (v) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= min ? null : `must be an integer >= ${min}, got ${show(v)}`),
  num: (min: number, open = false): HparamRule => (v) =>
    typeof v === 'number' && Number.isFinite(v) && (open ? v > min : v >= min) ? null : `must be a finite number ${open ? '>' : '>='} ${min}, got ${show(v)}`,
  bool: (): HparamRule => (v) => (typeof v === 'boolean' ? null : `must be true or false, got ${show(v)}`),
  oneOf: (...xs: readonly unknown[]): HparamRule => (v) => (xs.includes(v) ? null : `must be one of ${xs.map(show).join(', ')}, got ${show(v)}`),
  nullOr: (r: HparamRule): HparamRule => (v) => (v === null ? null : r(v) && `${r(v)} (or null)`),
  any: (): HparamRule => () => null,
};

/** Fields every hparams file may carry as documentation (ignored by the code). */
const DOC_FIELD = /^(model|nLayer|source|layerChosenBy|comment|.*Note)$/;

/**
 * Checks `values` against `spec` (field → rule): wrong types or ranges and unknown fields (typos) throw, naming the
 * source (file) and the field. Fields absent from `values` are not checked.
 */
export function checkHparams(source: string, values: Record<string, unknown>, spec: Record<string, HparamRule>): void {
  for (const [k, v] of Object.entries(values)) {
    if (v === undefined) continue;
    const rule = spec[k];
    if (!rule) {
      if (DOC_FIELD.test(k)) continue;
      throw new Error(`${source}: unknown hyperparameter "${k}" (known: ${Object.keys(spec).join(', ')})`);
    }
    const problem = rule(v);
    if (problem) throw new Error(`${source}: hyperparameter "${k}" ${problem}`);
  }
}

const contextTemplatesRule: HparamRule = (v) => {
  if (!Array.isArray(v) || v.length === 0) return `must be a non-empty array of { length, count }, got ${show(v)}`;
  for (const [i, e] of v.entries()) {
    if (e === null || typeof e !== 'object') return `[${i}] must be { length, count }, got ${show(e)}`;
    const { length, count, ...rest } = e as Record<string, unknown>;
    if (Object.keys(rest).length) return `[${i}] has unknown fields ${Object.keys(rest).join(', ')}`;
    const l = rules.int(1)(length);
    if (l) return `[${i}].length ${l}`;
    const c = rules.int(0)(count);
    if (c) return `[${i}].count ${c}`;
  }
  return null;
};

const filePath: HparamRule = (v) => (typeof v === 'string' && v.trim().length > 0 ? null : `must be a file path, got ${show(v)}`);

/** Field rules of ROME's hyperparameters (layer's upper bound is checked against the model in resolveRomeHparams). */
export const ROME_HPARAM_RULES: Record<string, HparamRule> = {
  layer: rules.int(0),
  vNumGradSteps: rules.int(1),
  vLr: rules.num(0, true),
  vWeightDecay: rules.num(0),
  klFactor: rules.num(0),
  clampNormFactor: rules.num(0, true),
  earlyStopLoss: rules.num(0),
  vAdamBeta2: (v) => (typeof v === 'number' && v > 0 && v < 1 ? null : `must be a number in (0, 1), got ${show(v)}`),
  contextTemplates: contextTemplatesRule,
  contextSeed: rules.int(0),
  mom2Adjustment: rules.bool(),
  mom2Tokens: rules.nullOr(rules.int(1)),
  mom2Samples: rules.nullOr(rules.int(1)),
  mom2Corpus: rules.nullOr(filePath),
  mom2Stats: rules.nullOr(filePath),
  rightVectorKey: rules.oneOf('averaged', 'bare-prompt'),
  leftVectorKey: rules.oneOf('averaged', 'bare-prompt'),
  preserveFacts: rules.nullOr(filePath),
  preserveCount: rules.int(1),
  // The official files name the token the fact is read at; rome-ts implements the paper's choice only.
  factToken: rules.oneOf('subject_last'),
};

function pick<T extends object>(defaults: T, raw: Record<string, unknown>): T {
  const out = { ...defaults } as Record<string, unknown>;
  for (const k of Object.keys(defaults)) if (raw[k] !== undefined) out[k] = raw[k];
  return out as T;
}

/** ROME hyperparameters from a file name (e.g. "gpt2-xl", "rome-fact-gpt2") or path, merged over the defaults. */
export function loadRomeHparams(name: string): RomeHparams {
  const { file, raw } = locateHparamsFile('ROME', name);
  if (raw.layer === undefined) throw new Error(`${file}: hyperparameter "layer" is missing`);
  checkHparams(file, raw, ROME_HPARAM_RULES);
  return { ...pick(ROME_DEFAULTS, raw), layer: raw.layer as number };
}

/** Completes partial hyperparameters; the layer defaults to the model's middle layer when not given. */
export function resolveRomeHparams(nLayer: number, hp: Partial<RomeHparams> = {}): RomeHparams {
  const layer = hp.layer ?? Math.floor(nLayer / 2);
  if (!Number.isInteger(layer) || layer < 0 || layer >= nLayer) throw new Error(`ROME: layer ${show(layer)} out of range [0, ${nLayer})`);
  const out = { ...ROME_DEFAULTS, ...hp, layer };
  checkHparams('ROME hyperparameters', out as unknown as Record<string, unknown>, ROME_HPARAM_RULES);
  return out;
}
