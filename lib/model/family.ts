/**
 * Parameter names and layouts of every family. Parameters keep Hugging Face's module names with the model prefix
 * (`transformer.`, `gpt_neox.`, `model.`) dropped, so `getParam('layers.3.mlp.down_proj.weight')` finds LLaMA's
 * down projection. Every matrix is held as [in, out] (GPT-2's Conv1D layout, what `x @ W` reads), so the
 * nn.Linear weights of the other families ([out, in] on disk) are transposed once at load.
 */
import type { GPT2Config } from '../io/config.js';

/** One parameter: its name here, its name in the checkpoint, its shape here, and whether loading transposes it. */
export interface ParamSpec {
  name: string;
  stored: string;
  shape: number[];
  transpose: boolean;
}

/** The module names of one family's block parts (relative to the layer's prefix). */
interface FamilyNames {
  prefix: string;
  layer: (l: number) => string;
  embed: string;
  finalNorm: string;
  head: string;
  mlpOut: string;
}

const NAMES: Readonly<Record<'gpt2' | 'gpt_neox' | 'llama' | 'gptj', FamilyNames>> = {
  gpt2: { prefix: 'transformer.', layer: (l) => `h.${l}.`, embed: 'wte', finalNorm: 'ln_f', head: 'lm_head', mlpOut: 'mlp.c_proj' },
  gpt_neox: {
    prefix: 'gpt_neox.',
    layer: (l) => `layers.${l}.`,
    embed: 'embed_in',
    finalNorm: 'final_layer_norm',
    head: 'embed_out',
    mlpOut: 'mlp.dense_4h_to_h',
  },
  llama: { prefix: 'model.', layer: (l) => `layers.${l}.`, embed: 'embed_tokens', finalNorm: 'norm', head: 'lm_head', mlpOut: 'mlp.down_proj' },
  gptj: { prefix: 'transformer.', layer: (l) => `h.${l}.`, embed: 'wte', finalNorm: 'ln_f', head: 'lm_head', mlpOut: 'mlp.fc_out' },
};

function names(cfg: GPT2Config): FamilyNames {
  return NAMES[cfg.arch?.family ?? 'gpt2'];
}

/** Name of the token embedding [V, d]. */
export function embedParam(cfg: GPT2Config): string {
  return `${names(cfg).embed}.weight`;
}

/** Name of the output head [V, d] (the embedding when tied). */
export function headParam(cfg: GPT2Config): string {
  return cfg.tieWordEmbeddings ? embedParam(cfg) : `${names(cfg).head}.weight`;
}

/** Name of the output head's bias [V] (GPT-J only), else null. */
export function headBiasParam(cfg: GPT2Config): string | null {
  return cfg.arch?.lmHeadBias ? `${names(cfg).head}.bias` : null;
}

/** Final norm's weight [d] and bias [d] (null for RMSNorm). */
export function finalNormParams(cfg: GPT2Config): { weight: string; bias: string | null } {
  const n = names(cfg).finalNorm;
  return { weight: `${n}.weight`, bias: cfg.arch?.norm === 'rmsnorm' ? null : `${n}.bias` };
}

/**
 * The MLP output projection of a layer, [nInner, d] here: GPT-2 c_proj, NeoX dense_4h_to_h, LLaMA down_proj,
 * GPT-J fc_out. Its input is the hook `blocks.{l}.mlp.key`; ROME, FT and KN rewrite it. Bias null when the family
 * has none.
 */
export function mlpOutParams(cfg: GPT2Config, layer: number): { weight: string; bias: string | null } {
  const n = names(cfg);
  const base = `${n.layer(layer)}${n.mlpOut}`;
  return { weight: `${base}.weight`, bias: cfg.arch && !cfg.arch.mlpBias ? null : `${base}.bias` };
}

/** Layer index of a parameter name (null outside blocks), and whether it belongs to that layer's MLP output. */
export function paramLayer(cfg: GPT2Config, name: string): { layer: number; mlpOut: boolean } | null {
  const m = /^(?:h|layers)\.(\d+)\./.exec(name);
  if (!m) return null;
  const layer = Number(m[1]);
  const out = mlpOutParams(cfg, layer);
  return { layer, mlpOut: name === out.weight || name === out.bias };
}

/** Every parameter of a non-GPT-2 config, in a stable order (GPT-2 lives in params.ts paramShapes). */
export function archParamSpecs(cfg: GPT2Config): ParamSpec[] {
  const a = cfg.arch;
  if (!a) throw new Error('archParamSpecs: GPT-2 configs have no arch record');
  const n = names(cfg);
  const d = cfg.nEmbd;
  const I = cfg.nInner;
  const q = cfg.nHead * a.headDim;
  const kv = a.nKvHead * a.headDim;
  const out: ParamSpec[] = [];
  const top = (name: string, shape: number[]) => out.push({ name, stored: n.prefix + name, shape, transpose: false });
  // nn.Linear stores [out, in]; held here as [in, out].
  const lin = (name: string, din: number, dout: number, bias: boolean) => {
    out.push({ name: `${name}.weight`, stored: `${n.prefix}${name}.weight`, shape: [din, dout], transpose: true });
    if (bias) out.push({ name: `${name}.bias`, stored: `${n.prefix}${name}.bias`, shape: [dout], transpose: false });
  };
  const norm = (name: string) => {
    top(`${name}.weight`, [d]);
    if (a.norm === 'layernorm') top(`${name}.bias`, [d]);
  };
  top(`${n.embed}.weight`, [cfg.vocabSize, d]);
  for (let l = 0; l < cfg.nLayer; l++) {
    const p = n.layer(l);
    if (a.family === 'gpt_neox') {
      norm(`${p}input_layernorm`);
      norm(`${p}post_attention_layernorm`);
      lin(`${p}attention.query_key_value`, d, 3 * d, a.qkvBias);
      lin(`${p}attention.dense`, d, d, a.outBias);
      lin(`${p}mlp.dense_h_to_4h`, d, I, a.mlpBias);
      lin(`${p}mlp.dense_4h_to_h`, I, d, a.mlpBias);
    } else if (a.family === 'llama') {
      norm(`${p}input_layernorm`);
      norm(`${p}post_attention_layernorm`);
      lin(`${p}self_attn.q_proj`, d, q, a.qkvBias);
      lin(`${p}self_attn.k_proj`, d, kv, a.qkvBias);
      lin(`${p}self_attn.v_proj`, d, kv, a.qkvBias);
      lin(`${p}self_attn.o_proj`, q, d, a.outBias);
      lin(`${p}mlp.gate_proj`, d, I, a.mlpBias);
      lin(`${p}mlp.up_proj`, d, I, a.mlpBias);
      lin(`${p}mlp.down_proj`, I, d, a.mlpBias);
    } else {
      norm(`${p}ln_1`);
      lin(`${p}attn.q_proj`, d, d, false);
      lin(`${p}attn.k_proj`, d, d, false);
      lin(`${p}attn.v_proj`, d, d, false);
      lin(`${p}attn.out_proj`, d, d, false);
      lin(`${p}mlp.fc_in`, d, I, a.mlpBias);
      lin(`${p}mlp.fc_out`, I, d, a.mlpBias);
    }
  }
  norm(n.finalNorm);
  if (!cfg.tieWordEmbeddings) {
    // The head sits outside the model prefix in every family's checkpoint.
    out.push({ name: `${n.head}.weight`, stored: `${n.head}.weight`, shape: [cfg.vocabSize, d], transpose: false });
  }
  if (a.lmHeadBias) out.push({ name: `${n.head}.bias`, stored: `${n.head}.bias`, shape: [cfg.vocabSize], transpose: false });
  return out;
}

/** Stored tensors that are buffers, not weights (causal masks, rotary tables), skipped at load. */
export function isBufferName(name: string): boolean {
  return /(^|\.)(attn|attention)\.(bias|masked_bias)$/.test(name) || /rotary_emb\.inv_freq$/.test(name);
}

/** float32 bytes of every parameter of a config (what the backend must hold, before activations). */
export function paramBytes(cfg: GPT2Config): number {
  let n = 0;
  if (cfg.arch) for (const s of archParamSpecs(cfg)) n += s.shape.reduce((x, y) => x * y, 1);
  else {
    const d = cfg.nEmbd;
    n = (cfg.vocabSize + cfg.nPositions) * d + cfg.nLayer * (4 * d + 4 * d * d + 4 * d + 2 * d * cfg.nInner + cfg.nInner + d) + 2 * d;
    if (!cfg.tieWordEmbeddings) n += cfg.vocabSize * d;
  }
  return 4 * n;
}
