// Model hyperparameters as stored in a Hugging Face `config.json`: GPT-2 here, the other families in
// familyConfig.ts (they share this shape plus an `arch` record).
import { CheckpointError } from './errors.js';

/** Activation functions GPT-2 checkpoints use (names as in Hugging Face's ACT2FN). */
export type GPT2Activation = 'gelu_new' | 'gelu' | 'relu' | 'gelu_fast' | 'gelu_pytorch_tanh';

/** Every MLP nonlinearity the forward pass knows: GPT-2's plus SiLU (the gate of LLaMA-style SwiGLU). */
export type Activation = GPT2Activation | 'silu';

/** The families with a block other than GPT-2's. */
export type ArchFamily = 'gpt_neox' | 'llama' | 'gptj';

/**
 * How a non-GPT-2 block is wired. Absent on GPT-2 configs, whose block is the original one.
 */
export interface ArchSpec {
  family: ArchFamily;
  /** LayerNorm (mean and variance, with bias) or RMSNorm (LLaMA: no centring, no bias). */
  norm: 'layernorm' | 'rmsnorm';
  /** Key/value heads (grouped-query attention when < nHead). */
  nKvHead: number;
  /** Width of one attention head (LLaMA-style configs may set it apart from nEmbd / nHead). */
  headDim: number;
  /** Leading dimensions of each head that are rotated (NeoX rotary_pct, GPT-J rotary_dim); even. */
  rotaryDim: number;
  /** 'half' rotates (x[i], x[i + r/2]) pairs (NeoX, LLaMA); 'interleaved' rotates (x[2i], x[2i+1]) (GPT-J). */
  rotaryStyle: 'half' | 'interleaved';
  /** RoPE base θ: pair i turns by position · θ^(−2i / rotaryDim). */
  ropeTheta: number;
  /**
   * 'sequential': x + attn(n1(x)), then + mlp(n2(·)). 'two_norms': x + attn(n1(x)) + mlp(n2(x)) (NeoX parallel
   * residual). 'one_norm': x + attn(n1(x)) + mlp(n1(x)) (GPT-J).
   */
  residual: 'sequential' | 'two_norms' | 'one_norm';
  /** SwiGLU MLP down(act(gate(x)) · up(x)) instead of down(act(up(x))). */
  gatedMlp: boolean;
  qkvBias: boolean;
  outBias: boolean;
  mlpBias: boolean;
  /** GPT-J's lm_head has a bias. */
  lmHeadBias: boolean;
  /** Mistral: a query sees only the last `slidingWindow` positions (null: all). */
  slidingWindow: number | null;
}

/** Supported activation names, in a stable order (for error messages). */
export const GPT2_ACTIVATIONS: readonly GPT2Activation[] = ['gelu_new', 'gelu', 'relu', 'gelu_fast', 'gelu_pytorch_tanh'];

/** Architecture hyperparameters (camelCase view of Hugging Face's config.json); GPT-2 unless `arch` is set. */
export interface GPT2Config {
  /** The config's model_type: 'gpt2', 'gpt_neox', 'llama', 'mistral', 'qwen2' or 'gptj'. */
  modelType: string;
  /** Number of transformer blocks. */
  nLayer: number;
  /** Residual stream width d. */
  nEmbd: number;
  /** Attention heads; nEmbd is a multiple of nHead. */
  nHead: number;
  /** Maximum sequence length (rows of wpe; max_position_embeddings for rotary families). */
  nPositions: number;
  /** MLP hidden width (4 * nEmbd unless set): the length of the key that ROME edits. */
  nInner: number;
  /** Epsilon of every LayerNorm (or RMSNorm). */
  layerNormEpsilon: number;
  activationFunction: Activation;
  /** Rows of wte. */
  vocabSize: number;
  bosTokenId: number | null;
  eosTokenId: number | null;
  /** When true the output head reuses the token embedding. */
  tieWordEmbeddings: boolean;
  /** Block wiring of a non-GPT-2 family; absent for GPT-2. */
  arch?: ArchSpec;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function show(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

/** Parses and validates a Hugging Face GPT-2 `config.json` object; `source` names the file in errors. */
export function parseGPT2Config(json: unknown, source: string): GPT2Config {
  if (!isObject(json)) throw new CheckpointError(source, `config must be a JSON object, got ${show(json)}`);
  const fail = (field: string, problem: string): never => {
    throw new CheckpointError(source, `config field "${field}" ${problem}`);
  };
  const has = (field: string): boolean => json[field] !== undefined && json[field] !== null;
  const positiveInt = (field: string, fallback?: string): number => {
    let key = field;
    if (!has(field) && fallback !== undefined && has(fallback)) key = fallback;
    if (!has(key)) {
      return fail(field, fallback === undefined ? 'is missing' : `is missing (and so is "${fallback}")`);
    }
    const v = json[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
      return fail(key, `must be a positive integer, got ${show(v)}`);
    }
    return v;
  };
  const tokenId = (field: string): number | null => {
    if (!has(field)) return null;
    const v = json[field];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      return fail(field, `must be a non-negative integer or null, got ${show(v)}`);
    }
    return v;
  };

  let modelType = 'gpt2';
  if (has('model_type')) {
    if (json['model_type'] !== 'gpt2') {
      fail('model_type', `must be "gpt2" (only GPT-2 checkpoints are supported), got ${show(json['model_type'])}`);
    }
    modelType = 'gpt2';
  }
  const nLayer = positiveInt('n_layer');
  const nEmbd = positiveInt('n_embd');
  const nHead = positiveInt('n_head');
  const nPositions = positiveInt('n_positions', 'n_ctx');
  const vocabSize = positiveInt('vocab_size');
  if (nEmbd % nHead !== 0) fail('n_embd', `(${nEmbd}) must be divisible by n_head (${nHead})`);
  const nInner = has('n_inner') ? positiveInt('n_inner') : 4 * nEmbd;

  let layerNormEpsilon = 1e-5;
  if (has('layer_norm_epsilon')) {
    const v = json['layer_norm_epsilon'];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      fail('layer_norm_epsilon', `must be a positive number, got ${show(v)}`);
    }
    layerNormEpsilon = v as number;
  }

  let activationFunction: GPT2Activation = 'gelu_new';
  if (has('activation_function')) {
    const v = json['activation_function'];
    if (typeof v !== 'string' || !(GPT2_ACTIVATIONS as readonly string[]).includes(v)) {
      fail('activation_function', `has unsupported value ${show(v)} (supported: ${GPT2_ACTIVATIONS.join(', ')})`);
    }
    activationFunction = v as GPT2Activation;
  }

  let tieWordEmbeddings = true;
  if (has('tie_word_embeddings')) {
    const v = json['tie_word_embeddings'];
    if (typeof v !== 'boolean') fail('tie_word_embeddings', `must be true or false, got ${show(v)}`);
    tieWordEmbeddings = v as boolean;
  }

  const bosTokenId = tokenId('bos_token_id');
  const eosTokenId = tokenId('eos_token_id');

  return {
    modelType,
    nLayer,
    nEmbd,
    nHead,
    nPositions,
    nInner,
    layerNormEpsilon,
    activationFunction,
    vocabSize,
    bosTokenId,
    eosTokenId,
    tieWordEmbeddings,
  };
}

/** Hugging Face `config.json` object (snake_case, GPT2LMHeadModel) for a config; parseGPT2Config inverts it. */
export function toHFConfig(cfg: GPT2Config): Record<string, unknown> {
  return {
    model_type: 'gpt2',
    architectures: ['GPT2LMHeadModel'],
    vocab_size: cfg.vocabSize,
    n_positions: cfg.nPositions,
    n_ctx: cfg.nPositions,
    n_embd: cfg.nEmbd,
    n_layer: cfg.nLayer,
    n_head: cfg.nHead,
    n_inner: cfg.nInner,
    activation_function: cfg.activationFunction,
    layer_norm_epsilon: cfg.layerNormEpsilon,
    bos_token_id: cfg.bosTokenId,
    eos_token_id: cfg.eosTokenId,
    tie_word_embeddings: cfg.tieWordEmbeddings,
  };
}
