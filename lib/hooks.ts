/**
 * Hook points: the stable names of every internal state of a run, the same for every family (GPT-2, GPT-NeoX,
 * LLaMA-style, GPT-J).
 *
 * Names (L = layer index, 0-based):
 * - `embed`                 token embeddings, before position embeddings are added   [B, T, d]
 * - `pos_embed`             position embeddings (GPT-2 only: the others rotate q, k)  [B, T, d]
 * - `blocks.L.attn.pattern` attention probabilities after softmax                     [B, H, T, S]
 * - `blocks.L.attn`         attention output (after its output projection), before the
 *                           residual add                                              [B, T, d]
 * - `blocks.L.mlp.key`      the input of the MLP output projection (ROME's k): act(fc)
 *                           for GPT-2/NeoX/GPT-J, silu(gate)·up for LLaMA-style        [B, T, nInner]
 * - `blocks.L.mlp`          MLP output (after its output projection), before the add [B, T, d]
 * - `blocks.L`              residual stream after block L                            [B, T, d]
 * - `final_norm`            output of the final layer norm                           [B, T, d]
 * - `logits`                next-token logits                                         [B, T, V] (or [B, V])
 * S is the number of key positions (past + T). These names never change; every module uses them.
 */
import type * as tf from '@tensorflow/tfjs-core';

/** Where a hook fires: its name, its layer (null outside blocks) and the absolute position of the first row. */
export interface HookContext {
  name: string;
  layer: number | null;
  /** Absolute token position of index 0 along the T axis (non-zero when continuing from a KV cache). */
  positionOffset: number;
}

/** A hook reads a state and may return a replacement of the same shape (return nothing to leave it). */
export type HookFn = (x: tf.Tensor, ctx: HookContext) => tf.Tensor | void;

/** Hooks by hook-point name; several hooks on one point run in order, each seeing the previous result. */
export type HookSet = Readonly<Record<string, HookFn | readonly HookFn[]>>;

/**
 * Every hook-point name for a model with `nLayer` layers, in execution order. `posEmbed: false` for the rotary
 * families (NeoX, LLaMA-style, GPT-J), which have no position embedding.
 */
export function hookNames(nLayer: number, opts: { patterns?: boolean; posEmbed?: boolean } = {}): string[] {
  const names = opts.posEmbed === false ? ['embed'] : ['embed', 'pos_embed'];
  for (let l = 0; l < nLayer; l++) {
    if (opts.patterns) names.push(`blocks.${l}.attn.pattern`);
    names.push(`blocks.${l}.attn`, `blocks.${l}.mlp.key`, `blocks.${l}.mlp`, `blocks.${l}`);
  }
  names.push('final_norm', 'logits');
  return names;
}

const NAME_RE = /^(embed|pos_embed|final_norm|logits|blocks\.(\d+)(\.attn\.pattern|\.attn|\.mlp\.key|\.mlp)?)$/;

/** Throws a clear error when `name` is not a hook point of a model with `nLayer` layers. */
export function checkHookName(name: string, nLayer: number): void {
  const m = NAME_RE.exec(name);
  if (!m) {
    throw new Error(
      `unknown hook point "${name}"; valid: embed, pos_embed, blocks.{i}, blocks.{i}.attn, blocks.{i}.attn.pattern, ` +
        `blocks.{i}.mlp.key, blocks.{i}.mlp, final_norm, logits`,
    );
  }
  if (m[2] !== undefined && Number(m[2]) >= nLayer) {
    throw new Error(`hook point "${name}": layer ${m[2]} out of range (model has ${nLayer} layers: 0..${nLayer - 1})`);
  }
}

/** Layer index of a hook name, or null for embed/final_norm/logits. */
export function hookLayer(name: string): number | null {
  const m = /^blocks\.(\d+)/.exec(name);
  return m ? Number(m[1]) : null;
}
