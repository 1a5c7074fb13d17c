/**
 * FT and FT+L baselines: fine-tune one layer's MLP output projection (GPT-2 h.{l}.mlp.c_proj.weight; NeoX dense_4h_to_h, LLaMA down_proj, GPT-J fc_out) on the edit
 * prompt → new target with Adam, teacher forcing over every target token (the official code scores all target
 * tokens at one position; we do not copy that quirk). FT+L clamps every weight to [w₀ − ε, w₀ + ε] after each
 * step (an L∞ ball around the original weights).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GPT2Model } from '../model/model.js';
import { commitEdit, float32ToBase64 } from '../rome/edits.js';
import { checkHparams, locateHparamsFile, rules, type HparamRule } from '../rome/hparams.js';
import { mlpProjParams } from '../rome/rankOneUpdate.js';
import { checkEditRequest, fillPrompt, spacedTarget, type EditHandle, type EditRequest, type StepLoss } from '../rome/types.js';
import { prepareTargetBatch, targetNll } from './common.js';

/** FT / FT+L hyperparameters. */
export interface FtHparams {
  layer: number;
  /** Maximum Adam steps (official 25). */
  numSteps: number;
  lr: number;
  /** Stop when the loss is below this (official 1e-2). */
  earlyStopLoss: number;
  /** FT+L: L∞ radius ε around the original weights (official 5e-4 for GPT-2 XL); null = unconstrained FT. */
  normConstraint: number | null;
}

/** Official FT defaults (layer must be chosen per model). */
export const FT_DEFAULTS: Omit<FtHparams, 'layer'> = { numSteps: 25, lr: 5e-4, earlyStopLoss: 1e-2, normConstraint: null };

/** Field rules of FT / FT+L hyperparameters. */
export const FT_HPARAM_RULES: Record<string, HparamRule> = {
  layer: rules.int(0),
  numSteps: rules.int(1),
  lr: rules.num(0, true),
  earlyStopLoss: rules.num(0),
  normConstraint: rules.nullOr(rules.num(0, true)),
};

/** FT hyperparameters from hparams/FT/<name>.json (or a path). */
export function loadFtHparams(name: string): FtHparams {
  const { file, raw } = locateHparamsFile('FT', name);
  if (raw.layer === undefined) throw new Error(`${file}: hyperparameter "layer" is missing`);
  checkHparams(file, raw, FT_HPARAM_RULES);
  const out = { ...FT_DEFAULTS, layer: raw.layer as number } as FtHparams;
  for (const k of Object.keys(FT_DEFAULTS) as (keyof typeof FT_DEFAULTS)[]) {
    if (raw[k] !== undefined) (out as unknown as Record<string, unknown>)[k] = raw[k];
  }
  return out;
}

/** Fine-tunes layer `hp.layer`'s MLP output weight on the request (FT, or FT+L when normConstraint is set). */
export async function ftEdit(model: GPT2Model, request: EditRequest, hparams: Partial<FtHparams> = {}): Promise<EditHandle> {
  checkEditRequest(request);
  const hp: FtHparams = { ...FT_DEFAULTS, layer: Math.floor(model.config.nLayer / 2), ...hparams };
  checkHparams('FT hyperparameters', hp as unknown as Record<string, unknown>, FT_HPARAM_RULES);
  if (hp.layer >= model.config.nLayer) throw new Error(`FT: layer ${hp.layer} out of range [0, ${model.config.nLayer})`);
  const req: EditRequest = { ...request, target: spacedTarget(request.target) };
  const name = mlpProjParams(hp.layer, model.config).weight;
  const w = model.getParam(name);
  const snap = model.snapshotParam(name);
  const batch = prepareTargetBatch(model, fillPrompt(req.prompt, req.subject), req.target, hp.layer);
  const eps = hp.normConstraint;
  const lo = eps !== null ? tf.tidy(() => tf.sub(w, eps)) : null;
  const hi = eps !== null ? tf.tidy(() => tf.add(w, eps)) : null;
  const opt = tf.train.adam(hp.lr, 0.9, 0.999, 1e-8);
  const losses: StepLoss[] = [];
  let finalValues: Float32Array;
  try {
    for (let it = 0; it < hp.numSteps; it++) {
      const { value, grads } = tf.variableGrads(() => targetNll(model, batch), [w]);
      const loss = value.dataSync()[0];
      value.dispose();
      losses.push({ step: it, loss });
      if (loss < hp.earlyStopLoss) {
        for (const g of Object.values(grads)) g.dispose();
        break;
      }
      opt.applyGradients(Object.entries(grads).map(([name, tensor]) => ({ name, tensor })));
      for (const g of Object.values(grads)) g.dispose();
      if (lo && hi) tf.tidy(() => w.assign(tf.minimum(tf.maximum(w, lo), hi)));
    }
    finalValues = (w.dataSync() as Float32Array).slice();
  } finally {
    opt.dispose();
    lo?.dispose();
    hi?.dispose();
    batch.dispose();
    model.restoreParam(snap);
  }
  let maxAbs = 0;
  for (let i = 0; i < finalValues.length; i++) maxAbs = Math.max(maxAbs, Math.abs(finalValues[i] - snap.data[i]));
  return commitEdit(model, {
    method: eps !== null ? 'ft-l' : 'ft',
    layer: hp.layer,
    request: req,
    losses,
    updates: [{ kind: 'values', param: name, shape: [...snap.shape], valuesBase64: float32ToBase64(finalValues) }],
    info: { hparams: hp, maxAbsChange: maxAbs },
  });
}
