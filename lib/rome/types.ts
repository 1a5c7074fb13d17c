/**
 * Shared types of every editing method (ROME, FT, FT+L, KN): the request, the serialisable edit, and the handle
 * that undoes it.
 */

/** One factual edit: `prompt` holds "{}" where the subject goes; `target` is the new object. */
export interface EditRequest {
  /** Template with "{}" for the subject, e.g. "{} plays the sport of". */
  prompt: string;
  subject: string;
  /** New object, e.g. "football" (a leading space is added when missing, as GPT-2 tokenises it). */
  target: string;
  /** The true object (needed by KN, which attributes the true answer); optional for the other methods. */
  targetTrue?: string;
}

/** Editing methods with a common handle. */
export type EditMethod = 'rome' | 'ft' | 'ft-l' | 'kn';

/** One parameter change, stored exactly (float32 values survive a JSON round trip unchanged). */
export type ParamUpdate =
  /** W' = W + u ⊗ v with u [rows], v [cols] (GPT-2 Conv1D layout [nInner, d]). */
  | { kind: 'rank-one'; param: string; u: number[]; v: number[] }
  /** The whole new value of the parameter (FT, FT+L), little-endian float32 in base64. */
  | { kind: 'values'; param: string; shape: number[]; valuesBase64: string }
  /** New values of some rows of a 2-D parameter (KN), float32 base64 of [rows.length, cols]. */
  | { kind: 'rows'; param: string; rows: number[]; cols: number; valuesBase64: string };

/** One optimisation step's losses (total and its parts; parts absent where a method has none). */
export interface StepLoss {
  step: number;
  loss: number;
  nll?: number;
  kl?: number;
  weightDecay?: number;
}

/** Version written by toJSON (2 added model.paramsSha256; version 1 files apply only when forced). */
export const EDIT_FORMAT_VERSION = 2;

/** A saved edit: enough to re-apply it bit-exactly on the same model. */
export interface EditJSON {
  format: 'rome-ts-edit';
  version: 1 | 2;
  method: EditMethod;
  /**
   * Model it was made on: name and shape, and (version 2) the sha256 of the parameters the edit changes as they were
   * before it (identity.ts weightsHash over those names), all checked when re-applying.
   */
  model: { name: string; nLayer: number; nEmbd: number; nInner: number; paramsSha256?: string };
  /** The (main) edited layer. */
  layer: number;
  request: EditRequest;
  losses: StepLoss[];
  updates: ParamUpdate[];
  /** Method-specific diagnostics (hyperparameters, norms, selected neurons, ...). */
  info: Record<string, unknown>;
}

/** What every editing method returns; `restore()` puts the touched weights back bit-exactly. */
export interface EditHandle {
  method: EditMethod;
  layer: number;
  /** Rank-one left vector (ROME: normalised C⁻¹k*), length nInner; empty for non-rank-one methods. */
  u: number[];
  /** Rank-one right vector Λ, length d; empty for non-rank-one methods. */
  v: number[];
  losses: StepLoss[];
  request: EditRequest;
  info: Record<string, unknown>;
  /** Whether restore() has run. */
  readonly restored: boolean;
  /** Restores the weights from the snapshots taken just before this edit; throws while a later edit of the same weights is applied (undo in LIFO order). */
  restore(): void;
  toJSON(): EditJSON;
}

/** The target with the leading space GPT-2 expects (" Paris"). */
export function spacedTarget(target: string): string {
  return target.startsWith(' ') ? target : ` ${target}`;
}

/** Fills the one "{}" of a template with the subject (a second "{}" would stay in the text literally: refused). */
export function fillPrompt(template: string, subject: string): string {
  const i = template.indexOf('{}');
  if (i < 0) throw new Error(`prompt template has no "{}": ${JSON.stringify(template)}`);
  if (template.indexOf('{}', i + 2) >= 0) throw new Error(`prompt template has more than one "{}": ${JSON.stringify(template)}`);
  return template.slice(0, i) + subject + template.slice(i + 2);
}

/**
 * Throws unless an edit request is usable: string fields, exactly one "{}" in the prompt, a subject and a target with
 * visible characters (a target of " " would edit toward a space).
 */
export function checkEditRequest(req: EditRequest): void {
  for (const f of ['prompt', 'subject', 'target'] as const) {
    if (typeof req[f] !== 'string') throw new Error(`edit request: "${f}" must be a string, got ${JSON.stringify(req[f])}`);
  }
  fillPrompt(req.prompt, req.subject);
  if (req.subject.trim() === '') throw new Error(`edit request: the subject ${JSON.stringify(req.subject)} is empty`);
  if (req.target.trim() === '') throw new Error(`edit request: the target ${JSON.stringify(req.target)} has no visible characters`);
  if (req.targetTrue !== undefined && (typeof req.targetTrue !== 'string' || req.targetTrue.trim() === '')) {
    throw new Error(`edit request: targetTrue ${JSON.stringify(req.targetTrue)} has no visible characters`);
  }
}
