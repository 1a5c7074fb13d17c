// config.json of the non-GPT-2 families (gpt_neox, llama / mistral / qwen2, gptj), read the way each family's
// Hugging Face configuration class reads it: same field names, same defaults.
import { CheckpointError } from './errors.js';
import { parseGPT2Config, type Activation, type ArchSpec, type GPT2Config } from './config.js';

/** model_type values loadModel accepts. */
export const SUPPORTED_MODEL_TYPES: readonly string[] = ['gpt2', 'gpt_neox', 'llama', 'mistral', 'qwen2', 'gptj'];

type Json = Record<string, unknown>;

function show(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

/** Typed field readers that name the file and field in every error. */
function reader(json: Json, source: string) {
  const fail = (field: string, problem: string): never => {
    throw new CheckpointError(source, `config field "${field}" ${problem}`);
  };
  const has = (f: string): boolean => json[f] !== undefined && json[f] !== null;
  const int = (f: string, fallback?: number): number => {
    if (!has(f)) {
      if (fallback !== undefined) return fallback;
      return fail(f, 'is missing');
    }
    const v = json[f];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) return fail(f, `must be a positive integer, got ${show(v)}`);
    return v;
  };
  const num = (f: string, fallback: number): number => {
    if (!has(f)) return fallback;
    const v = json[f];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) return fail(f, `must be a positive number, got ${show(v)}`);
    return v;
  };
  const bool = (f: string, fallback: boolean): boolean => {
    if (!has(f)) return fallback;
    const v = json[f];
    if (typeof v !== 'boolean') return fail(f, `must be true or false, got ${show(v)}`);
    return v;
  };
  const tokenId = (f: string): number | null => {
    if (!has(f)) return null;
    let v = json[f];
    // LLaMA-3-style configs list several end tokens; the first is the one generation stops at here.
    if (Array.isArray(v)) v = v[0];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return fail(f, `must be a non-negative integer or null, got ${show(v)}`);
    return v;
  };
  const act = (f: string, fallback: Activation, allowed: readonly Activation[]): Activation => {
    if (!has(f)) return fallback;
    const v = json[f];
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
      return fail(f, `has unsupported value ${show(v)} (supported: ${allowed.join(', ')})`);
    }
    return v as Activation;
  };
  return { fail, has, int, num, bool, tokenId, act };
}

function noRopeScaling(json: Json, source: string): void {
  const rs = json['rope_scaling'];
  if (rs === undefined || rs === null) return;
  const type = typeof rs === 'object' ? ((rs as Json)['rope_type'] ?? (rs as Json)['type']) : rs;
  if (type === 'default') return;
  throw new CheckpointError(source, `config field "rope_scaling" (${show(rs)}) is not supported: only plain RoPE is implemented`);
}

function evenRotary(source: string, rotaryDim: number, headDim: number): number {
  if (rotaryDim <= 0 || rotaryDim > headDim || rotaryDim % 2 !== 0) {
    throw new CheckpointError(source, `rotary dimension ${rotaryDim} must be even and in (0, head_dim = ${headDim}]`);
  }
  return rotaryDim;
}

function parseNeoX(json: Json, source: string): GPT2Config {
  const r = reader(json, source);
  const d = r.int('hidden_size');
  const H = r.int('num_attention_heads');
  if (d % H !== 0) r.fail('hidden_size', `(${d}) must be divisible by num_attention_heads (${H})`);
  const hd = d / H;
  const pct = r.num('rotary_pct', 0.25);
  if (pct > 1) r.fail('rotary_pct', `must be in (0, 1], got ${pct}`);
  noRopeScaling(json, source);
  const bias = r.bool('attention_bias', true);
  const arch: ArchSpec = {
    family: 'gpt_neox',
    norm: 'layernorm',
    nKvHead: H,
    headDim: hd,
    // HF truncates head_dim · rotary_pct to an integer.
    rotaryDim: evenRotary(source, Math.floor(hd * pct), hd),
    rotaryStyle: 'half',
    ropeTheta: r.has('rotary_emb_base') ? r.num('rotary_emb_base', 10000) : r.num('rope_theta', 10000),
    residual: r.bool('use_parallel_residual', true) ? 'two_norms' : 'sequential',
    gatedMlp: false,
    qkvBias: bias,
    outBias: bias,
    mlpBias: true,
    lmHeadBias: false,
    slidingWindow: null,
  };
  return {
    modelType: 'gpt_neox',
    nLayer: r.int('num_hidden_layers'),
    nEmbd: d,
    nHead: H,
    nPositions: r.int('max_position_embeddings', 2048),
    nInner: r.int('intermediate_size', 4 * d),
    layerNormEpsilon: r.num('layer_norm_eps', 1e-5),
    activationFunction: r.act('hidden_act', 'gelu', ['gelu', 'gelu_new', 'gelu_fast', 'gelu_pytorch_tanh', 'relu', 'silu']),
    vocabSize: r.int('vocab_size'),
    bosTokenId: r.tokenId('bos_token_id'),
    eosTokenId: r.tokenId('eos_token_id'),
    tieWordEmbeddings: r.bool('tie_word_embeddings', false),
    arch,
  };
}

function parseLlama(json: Json, source: string, modelType: 'llama' | 'mistral' | 'qwen2'): GPT2Config {
  const r = reader(json, source);
  const d = r.int('hidden_size');
  const H = r.int('num_attention_heads');
  const nKv = r.int('num_key_value_heads', H);
  if (H % nKv !== 0) r.fail('num_key_value_heads', `(${nKv}) must divide num_attention_heads (${H})`);
  if (!r.has('head_dim') && d % H !== 0) r.fail('hidden_size', `(${d}) must be divisible by num_attention_heads (${H})`);
  const hd = r.int('head_dim', d / H);
  noRopeScaling(json, source);
  const qwen = modelType === 'qwen2';
  // LLaMA's attention_bias covers q, k, v and o; Qwen2 always has q/k/v biases and never an o bias.
  const attnBias = modelType === 'llama' ? r.bool('attention_bias', false) : false;
  let slidingWindow: number | null = null;
  if (modelType === 'mistral' && r.has('sliding_window')) slidingWindow = r.int('sliding_window');
  if (qwen && r.bool('use_sliding_window', false) && r.has('sliding_window')) slidingWindow = r.int('sliding_window');
  const arch: ArchSpec = {
    family: 'llama',
    norm: 'rmsnorm',
    nKvHead: nKv,
    headDim: hd,
    rotaryDim: evenRotary(source, hd, hd),
    rotaryStyle: 'half',
    ropeTheta: r.num('rope_theta', qwen ? 1e6 : 10000),
    residual: 'sequential',
    gatedMlp: true,
    qkvBias: qwen || attnBias,
    outBias: attnBias,
    mlpBias: modelType === 'llama' ? r.bool('mlp_bias', false) : false,
    lmHeadBias: false,
    slidingWindow,
  };
  return {
    modelType,
    nLayer: r.int('num_hidden_layers'),
    nEmbd: d,
    nHead: H,
    nPositions: r.int('max_position_embeddings', 2048),
    nInner: r.int('intermediate_size'),
    layerNormEpsilon: r.num('rms_norm_eps', 1e-6),
    activationFunction: r.act('hidden_act', 'silu', ['silu', 'gelu', 'gelu_new', 'gelu_pytorch_tanh', 'relu']),
    vocabSize: r.int('vocab_size'),
    bosTokenId: r.tokenId('bos_token_id'),
    eosTokenId: r.tokenId('eos_token_id'),
    tieWordEmbeddings: r.bool('tie_word_embeddings', false),
    arch,
  };
}

function parseGptj(json: Json, source: string): GPT2Config {
  const r = reader(json, source);
  const d = r.int('n_embd');
  const H = r.int('n_head');
  if (d % H !== 0) r.fail('n_embd', `(${d}) must be divisible by n_head (${H})`);
  const hd = d / H;
  const arch: ArchSpec = {
    family: 'gptj',
    norm: 'layernorm',
    nKvHead: H,
    headDim: hd,
    rotaryDim: evenRotary(source, r.int('rotary_dim', hd), hd),
    rotaryStyle: 'interleaved',
    ropeTheta: 10000,
    residual: 'one_norm',
    gatedMlp: false,
    qkvBias: false,
    outBias: false,
    mlpBias: true,
    lmHeadBias: true,
    slidingWindow: null,
  };
  return {
    modelType: 'gptj',
    nLayer: r.int('n_layer'),
    nEmbd: d,
    nHead: H,
    nPositions: r.int('n_positions', 2048),
    nInner: r.int('n_inner', 4 * d),
    layerNormEpsilon: r.num('layer_norm_epsilon', 1e-5),
    activationFunction: r.act('activation_function', 'gelu_new', ['gelu_new', 'gelu', 'gelu_fast', 'gelu_pytorch_tanh', 'relu']),
    vocabSize: r.int('vocab_size'),
    bosTokenId: r.tokenId('bos_token_id'),
    eosTokenId: r.tokenId('eos_token_id'),
    tieWordEmbeddings: r.bool('tie_word_embeddings', false),
    arch,
  };
}

/** Parses a Hugging Face config.json of any supported family (dispatching on model_type; absent = gpt2). */
export function parseModelConfig(json: unknown, source: string): GPT2Config {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new CheckpointError(source, `config must be a JSON object, got ${show(json)}`);
  }
  const obj = json as Json;
  const type = obj['model_type'] ?? 'gpt2';
  switch (type) {
    case 'gpt2':
      return parseGPT2Config(json, source);
    case 'gpt_neox':
      return parseNeoX(obj, source);
    case 'llama':
    case 'mistral':
    case 'qwen2':
      return parseLlama(obj, source, type as 'llama' | 'mistral' | 'qwen2');
    case 'gptj':
      return parseGptj(obj, source);
    default:
      throw new CheckpointError(
        source,
        `config field "model_type" has unsupported value ${show(type)} (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`,
      );
  }
}
