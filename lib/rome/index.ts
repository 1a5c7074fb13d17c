/**
 * ROME (Rank-One Model Editing): `edit(model, request, hparams?)` inserts a new fact with a rank-one change of
 * one MLP output projection, returning an undoable, serialisable handle. One module per paper step:
 * contextPrefixes → computeKey (k*) → layerStats (C) → computeValue (v*) → rankOneUpdate (W' = W + u ⊗ Λ).
 */
import path from 'node:path';
import type { GPT2Model } from '../model/model.js';
import { contextTemplates } from './contextPrefixes.js';
import { computeKey } from './computeKey.js';
import { computeValue, type ValueEngine } from './computeValue.js';
import { identitySolver, type CovarianceSolver } from './covariance.js';
import { applyEdit, commitEdit } from './edits.js';
import { resolveRomeHparams, type RomeHparams } from './hparams.js';
import { corpusFromFile, layerStats, loadLayerStatsFile, type LayerStatsOptions } from './layerStats.js';
import { mlpProjParams, rankOneVectors } from './rankOneUpdate.js';
import { loadPreservedFacts, preservedFactsFor, preservedKeys } from './preservedKeys.js';
import { checkEditRequest, spacedTarget, type EditHandle, type EditRequest } from './types.js';
import { encodeTarget, encodeText, fillWithSpan } from './tokens.js';

export * from './types.js';
export * from './edits.js';
export * from './hparams.js';
export * from './identity.js';
export * from './tokens.js';
export * from './contextPrefixes.js';
export * from './computeKey.js';
export * from './computeValue.js';
export * from './covariance.js';
export * from './layerStats.js';
export * from './rankOneUpdate.js';
export * from './preservedKeys.js';

/** Extra options of a ROME edit beyond the hyperparameters. */
export interface RomeEditOptions {
  /** Use this solver for C x = k (overrides mom2Adjustment / layerStats). */
  solver?: CovarianceSolver;
  /** Options passed to layerStats when C is computed (corpus, cache, progress). */
  stats?: Omit<LayerStatsOptions, 'maxTokens' | 'maxSamples'>;
  /** Context templates to use instead of generating them. */
  templates?: readonly string[];
  /** How computeValue recomputes each step (default 'suffix'; 'full' is the slower reference). */
  valueEngine?: ValueEngine;
}

/** The solver ROME uses for a layer under these hyperparameters (C = I, or the cached key statistics). */
export async function romeSolver(
  model: GPT2Model,
  hp: RomeHparams,
  stats: RomeEditOptions['stats'] = {},
): Promise<CovarianceSolver> {
  if (!hp.mom2Adjustment) return identitySolver(model.config.nInner);
  if (hp.mom2Stats !== null && !stats.corpus) {
    const s = loadLayerStatsFile(model, hp.layer, hp.mom2Stats);
    const m = s.meta;
    // The hyperparameters that describe how C was made must say what the file holds.
    // (A corpus that ran out before mom2Tokens holds fewer.)
    if (hp.mom2Tokens !== null && (m.tokens > hp.mom2Tokens || (!m.exhausted && m.tokens !== hp.mom2Tokens))) {
      throw new Error(`mom2Stats: ${hp.mom2Stats} holds ${m.tokens} tokens, but mom2Tokens is ${hp.mom2Tokens}`);
    }
    if (hp.mom2Corpus !== null && m.corpusName !== path.basename(hp.mom2Corpus)) {
      throw new Error(`mom2Stats: ${hp.mom2Stats} was computed on "${m.corpusName}", but mom2Corpus is ${hp.mom2Corpus}`);
    }
    return s.solver();
  }
  const corpus = stats.corpus ?? (hp.mom2Corpus === null ? undefined : await corpusFromFile(hp.mom2Corpus, 'mom2Corpus'));
  const s = await layerStats(model, hp.layer, { ...stats, ...(corpus ? { corpus } : {}), maxTokens: hp.mom2Tokens, maxSamples: hp.mom2Samples });
  return s.solver();
}

/**
 * Applies one ROME edit to `model` (in place) and returns its handle. The request's prompt holds "{}" for the
 * subject; the target gets a leading space when it has none. Sequential edits work: each sees the edited model.
 */
export async function edit(model: GPT2Model, request: EditRequest, hparams: Partial<RomeHparams> = {}, opts: RomeEditOptions = {}): Promise<EditHandle> {
  checkEditRequest(request);
  const hp = resolveRomeHparams(model.config.nLayer, hparams);
  const req: EditRequest = { ...request, target: spacedTarget(request.target) };
  // Checked before the (slow) v* optimisation: a missing file or targetTrue fails at once.
  const keep = hp.preserveFacts === null ? [] : preservedFactsFor(loadPreservedFacts(hp.preserveFacts), req, hp.preserveCount);
  const all = opts.templates ? [...opts.templates] : await contextTemplates(model, { spec: hp.contextTemplates, seed: hp.contextSeed });
  const templates = fittingTemplates(model, all, req);
  const t0 = Date.now();
  const keys = computeKey(model, hp.layer, req, templates);
  const value = computeValue(model, hp.layer, req, templates, hp, { engine: opts.valueEngine });
  const solver = opts.solver ?? (await romeSolver(model, hp, opts.stats));
  const kRight = hp.rightVectorKey === 'bare-prompt' ? keys.kBare : keys.kStar;
  const kLeft = hp.leftVectorKey === 'bare-prompt' ? keys.kBare : keys.kStar;
  const r1 = rankOneVectors(model, hp.layer, solver, kLeft, kRight, value.vStar, preservedKeys(model, hp.layer, req, keep));
  return commitEdit(model, {
    method: 'rome',
    layer: hp.layer,
    request: req,
    losses: value.losses,
    updates: [{ kind: 'rank-one', param: mlpProjParams(hp.layer, model.config).weight, u: Array.from(r1.u), v: Array.from(r1.v) }],
    info: {
      hparams: hp,
      solver: solver.kind,
      statsTokens: solver.tokens,
      vStar: Array.from(value.vStar),
      v0Norm: Math.hypot(...value.v0),
      deltaNorm: Math.hypot(...value.delta),
      denom: r1.denom,
      residualNorm: r1.residualNorm,
      ...(hp.preserveFacts === null ? {} : { preservedSubjects: keep.map((f) => f.subject), preservedShare: r1.rho }),
      targetIds: value.targetIds,
      nTemplates: templates.length,
      ms: Date.now() - t0,
    },
  });
}

/**
 * The templates whose prompt plus target fits the model's context (a small model's context can be shorter than a
 * long prompt after a 10-token prefix); "{}" must fit, else the request is rejected.
 */
export function fittingTemplates(model: GPT2Model, templates: readonly string[], req: EditRequest): string[] {
  const m = encodeTarget(model, spacedTarget(req.target)).length;
  const fits = (t: string) => encodeText(model, fillWithSpan(t, req.prompt, req.subject).text).length + m - 1 <= model.config.nPositions;
  if (!fits('{}')) throw new Error(`ROME: the prompt and target do not fit the model's context of ${model.config.nPositions} tokens`);
  return templates.filter(fits);
}

/** The ROME namespace: `rome.edit(model, request, hparams?)`, `rome.applyEdit(model, json)`. */
export const rome = { edit, applyEdit };
