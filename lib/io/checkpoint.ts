// A checkpoint directory in Hugging Face layout: config.json, model.safetensors (or a sharded index), optionally
// tokenizer.json. Weights are exposed under Hugging Face's names without the model prefix (`transformer.`,
// `gpt_neox.`, `model.`); the other families' nn.Linear matrices are transposed to [in, out] (model/family.ts).
import { promises as fsp, type Stats } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { CheckpointError } from './errors.js';
import { toHFConfig, type GPT2Config } from './config.js';
import { parseModelConfig } from './familyConfig.js';
import { archParamSpecs, isBufferName, type ParamSpec } from '../model/family.js';
import {
  SHARD_INDEX_FILE,
  readSafetensors,
  readSafetensorsHeader,
  readShardIndex,
  readShardedSafetensors,
  writeSafetensors,
  type SafetensorsFile,
  type SafetensorsTensor,
  type SafetensorsWriteDtype,
} from './safetensors.js';

export { CheckpointError } from './errors.js';

/** One weight: row-major Float32 values of the given shape. */
export interface CheckpointTensor {
  shape: number[];
  data: Float32Array;
}

/** A loaded checkpoint. `weights` holds canonical names (see expectedWeightShapes); `lm_head.weight` only if untied. */
export interface Checkpoint {
  /** Absolute checkpoint directory. */
  dir: string;
  config: GPT2Config;
  weights: Map<string, CheckpointTensor>;
  /** Absolute path of tokenizer.json, or null when the directory has none. */
  tokenizerPath: string | null;
}

/** Options for writeCheckpoint. */
export interface WriteCheckpointOptions {
  /** Stored weight dtype (default F32). */
  dtype?: SafetensorsWriteDtype;
  /** tokenizer.json content: a JSON string written verbatim, or an object to serialise. */
  tokenizerJson?: string | object;
  /** More files to write into the directory (plain file names only), e.g. vocab.json, merges.txt. */
  extraFiles?: Record<string, string | Uint8Array>;
  /** Extra safetensors metadata (format: "pt" is always set for Hugging Face compatibility). */
  metadata?: Record<string, string>;
}

export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';
export const TOKENIZER_FILE = 'tokenizer.json';
export const LM_HEAD = 'lm_head.weight';

const PREFIX = 'transformer.';
/** Causal-mask buffers that older PyTorch GPT-2 saves carry; they are not weights. */
const BUFFER_RE = /^h\.\d+\.attn\.(bias|masked_bias)$/;
const LAYER_RE = /^h\.(\d+)\./;

/** Canonical name (no `transformer.` prefix) of a stored tensor name. */
export function canonicalWeightName(name: string): string {
  return name.startsWith(PREFIX) ? name.slice(PREFIX.length) : name;
}

/** Required weight names → shapes for a config ([V,d] wte, [P,d] wpe, per-layer Conv1D weights as [in, out]). */
export function expectedWeightShapes(cfg: GPT2Config): Map<string, number[]> {
  const d = cfg.nEmbd;
  const m = new Map<string, number[]>();
  m.set('wte.weight', [cfg.vocabSize, d]);
  m.set('wpe.weight', [cfg.nPositions, d]);
  for (let i = 0; i < cfg.nLayer; i++) {
    const p = `h.${i}.`;
    m.set(`${p}ln_1.weight`, [d]);
    m.set(`${p}ln_1.bias`, [d]);
    m.set(`${p}attn.c_attn.weight`, [d, 3 * d]);
    m.set(`${p}attn.c_attn.bias`, [3 * d]);
    m.set(`${p}attn.c_proj.weight`, [d, d]);
    m.set(`${p}attn.c_proj.bias`, [d]);
    m.set(`${p}ln_2.weight`, [d]);
    m.set(`${p}ln_2.bias`, [d]);
    m.set(`${p}mlp.c_fc.weight`, [d, cfg.nInner]);
    m.set(`${p}mlp.c_fc.bias`, [cfg.nInner]);
    m.set(`${p}mlp.c_proj.weight`, [cfg.nInner, d]);
    m.set(`${p}mlp.c_proj.bias`, [d]);
  }
  m.set('ln_f.weight', [d]);
  m.set('ln_f.bias', [d]);
  return m;
}

/** The output head [V,d]: the separate lm_head.weight when the checkpoint has one, else the tied wte.weight. */
export function lmHeadWeight(ckpt: Pick<Checkpoint, 'weights'>): CheckpointTensor {
  const head = ckpt.weights.get(LM_HEAD) ?? ckpt.weights.get('wte.weight');
  if (head === undefined) throw new Error('checkpoint has neither lm_head.weight nor wte.weight');
  return head;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function fmt(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function listSome(names: string[], max = 8): string {
  const head = names.slice(0, max).join(', ');
  return names.length > max ? `${head}, ... (${names.length} in all)` : head;
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.stat(p);
    return true;
  } catch {
    return false;
  }
}

/** Reads and validates a config.json file. */
export async function readConfigFile(file: string): Promise<GPT2Config> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CheckpointError(file, code === 'ENOENT' ? 'file not found' : `cannot read (${(err as Error).message})`, {
      cause: err,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(file, `not valid JSON (${(err as Error).message})`);
  }
  return parseModelConfig(json, file);
}

interface Plan {
  /** Stored name → canonical name, for the tensors to load. */
  load: Map<string, string>;
}

/** Decides which stored tensors to load, and checks names and shapes before any data is read. */
function planLoad(source: string, cfg: GPT2Config, stored: Map<string, number[]>): Plan {
  // Compare n_layer with the stored layers before listing every expected tensor: a config claiming millions of
  // layers would otherwise build a map of tens of millions of names (seconds, gigabytes) before failing.
  let storedLayers = 0;
  for (const name of stored.keys()) {
    const m = LAYER_RE.exec(canonicalWeightName(name));
    if (m !== null) storedLayers = Math.max(storedLayers, Number(m[1]) + 1);
  }
  if (cfg.nLayer > storedLayers) {
    throw new CheckpointError(
      source,
      `config.json says n_layer = ${cfg.nLayer} but the weights hold ${storedLayers} layer${storedLayers === 1 ? '' : 's'} ` +
        `(h.0 … h.${Math.max(0, storedLayers - 1)}); config.json does not match the weights`,
    );
  }
  const expected = expectedWeightShapes(cfg);
  const byCanonical = new Map<string, string>();
  const beyond: string[] = [];
  const load = new Map<string, string>();
  for (const name of stored.keys()) {
    const canon = canonicalWeightName(name);
    const prev = byCanonical.get(canon);
    if (prev !== undefined) throw new CheckpointError(source, `tensor stored twice, as "${prev}" and "${name}"`);
    byCanonical.set(canon, name);
    if (BUFFER_RE.test(canon)) continue;
    const layer = LAYER_RE.exec(canon);
    if (layer !== null && Number(layer[1]) >= cfg.nLayer) {
      beyond.push(name);
      continue;
    }
    if (expected.has(canon)) load.set(name, canon);
    else if (canon === LM_HEAD && !cfg.tieWordEmbeddings) load.set(name, canon);
  }
  if (beyond.length > 0) {
    throw new CheckpointError(
      source,
      `found weights for layers >= n_layer (${cfg.nLayer}) from config.json: ${listSome(beyond)}; ` +
        'config.json does not match the weights',
    );
  }
  const missing: string[] = [];
  for (const [name, shape] of expected) {
    if (!byCanonical.has(name)) missing.push(`"${name}" (expected shape ${fmt(shape)})`);
  }
  if (missing.length > 0) {
    throw new CheckpointError(source, `missing tensor${missing.length > 1 ? 's' : ''} ${listSome(missing)}`);
  }
  const shapes = new Map(expected);
  shapes.set(LM_HEAD, [cfg.vocabSize, cfg.nEmbd]);
  for (const [stored_, canon] of load) {
    const want = shapes.get(canon)!;
    const got = stored.get(stored_)!;
    if (!sameShape(want, got)) {
      throw new CheckpointError(
        source,
        `tensor "${canon}" has shape ${fmt(got)} but the config expects ${fmt(want)}`,
      );
    }
  }
  return { load };
}

/** Like planLoad, for the families of model/family.ts: stored names and [out, in] shapes as Hugging Face writes them. */
function planLoadArch(
  source: string,
  cfg: GPT2Config,
  stored: Map<string, number[]>,
  unreadable: ReadonlyMap<string, string> = new Map(),
): Plan & { specs: Map<string, ParamSpec> } {
  const specs = archParamSpecs(cfg);
  const byStored = new Map(specs.map((s) => [s.stored, s]));
  const load = new Map<string, string>();
  const beyond: string[] = [];
  for (const name of stored.keys()) {
    if (isBufferName(name)) continue;
    const layer = /(?:^|\.)(?:h|layers)\.(\d+)\./.exec(name);
    if (layer !== null && Number(layer[1]) >= cfg.nLayer) {
      beyond.push(name);
      continue;
    }
    const spec = byStored.get(name);
    if (spec) load.set(name, spec.name);
  }
  if (beyond.length > 0) {
    throw new CheckpointError(
      source,
      `found weights for layers >= the config's ${cfg.nLayer}: ${listSome(beyond)}; config.json does not match the weights`,
    );
  }
  const bad = specs.find((s) => unreadable.has(s.stored));
  if (bad) {
    throw new CheckpointError(source, `tensor "${bad.stored}" is stored as ${unreadable.get(bad.stored)}; weights must be F32, F16 or BF16 (quantized checkpoints are not supported)`);
  }
  const missing = specs.filter((s) => !stored.has(s.stored)).map((s) => `"${s.stored}"`);
  if (missing.length > 0) {
    throw new CheckpointError(source, `missing tensor${missing.length > 1 ? 's' : ''} ${listSome(missing)} for a ${cfg.modelType} checkpoint`);
  }
  for (const s of specs) {
    const want = s.transpose ? [s.shape[1]!, s.shape[0]!] : s.shape;
    const got = stored.get(s.stored)!;
    if (!sameShape(want, got)) {
      throw new CheckpointError(source, `tensor "${s.stored}" has shape ${fmt(got)} but the config expects ${fmt(want)}`);
    }
  }
  return { load, specs: new Map(specs.map((s) => [s.name, s])) };
}

/** [rows, cols] row-major → [cols, rows] row-major. */
function transposed(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[base + c]!;
  }
  return out;
}

/** Loads a checkpoint directory (config.json + model.safetensors or sharded index) of any supported family. */
export async function readCheckpoint(dir: string): Promise<Checkpoint> {
  const abs = path.resolve(dir);
  let st: Stats;
  try {
    st = await fsp.stat(abs);
  } catch {
    throw new CheckpointError(abs, 'checkpoint directory not found');
  }
  if (!st.isDirectory()) throw new CheckpointError(abs, 'expected a checkpoint directory, found a file');

  const config = await readConfigFile(path.join(abs, CONFIG_FILE));
  const single = path.join(abs, WEIGHTS_FILE);
  const indexPath = path.join(abs, SHARD_INDEX_FILE);

  let file: SafetensorsFile;
  if (await exists(single)) {
    const header = await readSafetensorsHeader(single);
    const stored = new Map([...header.entries].map(([n, e]) => [n, e.shape] as [string, number[]]));
    const plan = config.arch ? planLoadArch(single, config, stored, header.unreadable) : planLoad(single, config, stored);
    file = await readSafetensors(single, { names: plan.load.keys() });
    file = renameTensors(file, plan.load);
  } else if (await exists(indexPath)) {
    const index = await readShardIndex(indexPath);
    const stored = new Map<string, number[]>();
    const unreadable = new Map<string, string>();
    for (const shard of new Set(index.weightMap.values())) {
      const header = await readSafetensorsHeader(path.join(abs, shard));
      for (const [name, e] of header.entries) if (index.weightMap.get(name) === shard) stored.set(name, e.shape);
      for (const [name, dt] of header.unreadable) if (index.weightMap.get(name) === shard) unreadable.set(name, dt);
    }
    for (const [name, shard] of index.weightMap) {
      if (!stored.has(name) && !unreadable.has(name)) {
        throw new CheckpointError(indexPath, `weight_map puts "${name}" in ${shard} but that shard has no such tensor`);
      }
    }
    const plan = config.arch ? planLoadArch(indexPath, config, stored, unreadable) : planLoad(indexPath, config, stored);
    file = await readShardedSafetensors(indexPath, { names: plan.load.keys() });
    file = renameTensors(file, plan.load);
  } else {
    const hint = (await exists(path.join(abs, 'pytorch_model.bin')))
      ? ' (only pytorch_model.bin is present: PyTorch pickles are not supported, convert to safetensors)'
      : '';
    throw new CheckpointError(abs, `no ${WEIGHTS_FILE} or ${SHARD_INDEX_FILE} in the directory${hint}`);
  }

  const weights = new Map<string, CheckpointTensor>();
  const specs = config.arch ? new Map(archParamSpecs(config).map((s) => [s.name, s])) : null;
  for (const [name, t] of file.tensors) {
    const spec = specs?.get(name);
    if (spec?.transpose) {
      weights.set(name, { shape: spec.shape, data: transposed(t.data, t.shape[0]!, t.shape[1]!) });
      // Let the stored copy go as soon as it is transposed (large models hold both only one tensor at a time).
      file.tensors.delete(name);
    } else weights.set(name, { shape: t.shape, data: t.data });
  }
  checkFiniteWeights(await exists(single) ? single : indexPath, weights);
  const tok = path.join(abs, TOKENIZER_FILE);
  return { dir: abs, config, weights, tokenizerPath: (await exists(tok)) ? tok : null };
}

/** Index and value of the first NaN / ±Infinity in `data`, or null when every value is finite. */
export function firstNonFinite(data: Float32Array): { index: number; value: number } | null {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    // v - v is 0 for finite v and NaN for NaN/±Infinity: one comparison per value on the hot path.
    if (v - v !== 0) return { index: i, value: v };
  }
  return null;
}

/** Throws CheckpointError naming the first tensor that holds NaN or ±Infinity (such weights make every output NaN). */
export function checkFiniteWeights(source: string, weights: Iterable<[string, { data: Float32Array }]>): void {
  for (const [name, t] of weights) {
    const bad = firstNonFinite(t.data);
    if (bad) {
      let count = 0;
      for (let i = bad.index; i < t.data.length; i++) if (t.data[i] - t.data[i] !== 0) count++;
      throw new CheckpointError(source, `tensor "${name}" holds ${count} non-finite value${count > 1 ? 's' : ''} (first: ${bad.value} at flat index ${bad.index})`);
    }
  }
}

function renameTensors(file: SafetensorsFile, names: Map<string, string>): SafetensorsFile {
  const tensors = new Map<string, SafetensorsTensor>();
  for (const [stored, t] of file.tensors) tensors.set(names.get(stored) ?? stored, t);
  return { metadata: file.metadata, tensors };
}

/** Throws CheckpointError unless `weights` has exactly the tensors a config needs, with matching shapes and sizes. */
export function validateWeights(
  source: string,
  cfg: GPT2Config,
  weights: ReadonlyMap<string, CheckpointTensor> | Record<string, CheckpointTensor>,
): Map<string, CheckpointTensor> {
  const entries: [string, CheckpointTensor][] =
    weights instanceof Map ? [...weights] : Object.entries(weights as Record<string, CheckpointTensor>);
  const expected = expectedWeightShapes(cfg);
  expected.set(LM_HEAD, [cfg.vocabSize, cfg.nEmbd]);
  const out = new Map<string, CheckpointTensor>();
  for (const [name, t] of entries) {
    const canon = canonicalWeightName(name);
    const want = expected.get(canon);
    if (want === undefined) throw new CheckpointError(source, `unknown weight "${name}" for a ${cfg.nLayer}-layer GPT-2`);
    if (out.has(canon)) throw new CheckpointError(source, `weight "${canon}" given twice`);
    if (!sameShape(want, t.shape)) {
      throw new CheckpointError(source, `tensor "${canon}" has shape ${fmt(t.shape)} but the config expects ${fmt(want)}`);
    }
    const count = want.reduce((a, b) => a * b, 1);
    if (!(t.data instanceof Float32Array) || t.data.length !== count) {
      throw new CheckpointError(source, `tensor "${canon}" must be a Float32Array of ${count} values`);
    }
    out.set(canon, t);
  }
  const missing = [...expected.keys()].filter((n) => n !== LM_HEAD && !out.has(n));
  if (missing.length > 0) throw new CheckpointError(source, `missing tensors ${listSome(missing.map((n) => `"${n}"`))}`);
  return out;
}

async function writeFileAtomic(file: string, content: string | Uint8Array): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await fsp.writeFile(tmp, content);
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}

function plainFileName(dir: string, name: string): string {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\\')) {
    throw new CheckpointError(dir, `extra file name must be a plain file name, got "${name}"`);
  }
  return path.join(dir, name);
}

/**
 * Writes a Hugging Face-loadable GPT-2 checkpoint: config.json, model.safetensors (names with `transformer.`
 * prefix, `lm_head.weight` only when untied) and optionally tokenizer.json and extra files.
 */
export async function writeCheckpoint(
  dir: string,
  config: GPT2Config,
  weights: ReadonlyMap<string, CheckpointTensor> | Record<string, CheckpointTensor>,
  opts: WriteCheckpointOptions = {},
): Promise<void> {
  const abs = path.resolve(dir);
  if (config.arch) {
    throw new CheckpointError(abs, `writing ${config.modelType} checkpoints is not supported (GPT-2 only); edits of other families are saved as edit JSON`);
  }
  const valid = validateWeights(abs, config, weights);
  const head = valid.get(LM_HEAD);
  if (config.tieWordEmbeddings) {
    const wte = valid.get('wte.weight')!;
    if (head !== undefined && head.data !== wte.data && !head.data.every((v, i) => Object.is(v, wte.data[i]))) {
      throw new CheckpointError(
        abs,
        'lm_head.weight differs from wte.weight but the config ties them; set tieWordEmbeddings to false to keep it',
      );
    }
  } else if (head === undefined) {
    throw new CheckpointError(abs, 'config has tieWordEmbeddings false but no lm_head.weight was given');
  }

  const out = new Map<string, CheckpointTensor>();
  for (const [name, t] of valid) {
    if (name === LM_HEAD) {
      if (!config.tieWordEmbeddings) out.set(LM_HEAD, t);
    } else {
      out.set(PREFIX + name, t);
    }
  }
  await fsp.mkdir(abs, { recursive: true });
  await writeSafetensors(path.join(abs, WEIGHTS_FILE), out, {
    dtype: opts.dtype ?? 'F32',
    metadata: { ...(opts.metadata ?? {}), format: 'pt' },
  });
  await writeFileAtomic(path.join(abs, CONFIG_FILE), `${JSON.stringify(toHFConfig(config), null, 2)}\n`);
  if (opts.tokenizerJson !== undefined) {
    const text = typeof opts.tokenizerJson === 'string' ? opts.tokenizerJson : JSON.stringify(opts.tokenizerJson);
    await writeFileAtomic(path.join(abs, TOKENIZER_FILE), text);
  }
  for (const [name, content] of Object.entries(opts.extraFiles ?? {})) {
    await writeFileAtomic(plainFileName(abs, name), content);
  }
}
