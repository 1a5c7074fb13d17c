/** Baseline editors with the same handle as ROME: FT, FT+L (ftEdit with normConstraint) and KN. */
import type { GPT2Model } from '../model/model.js';
import type { EditHandle, EditRequest } from '../rome/types.js';
import { ftEdit, type FtHparams } from './ft.js';

export * from './common.js';
export * from './ft.js';
export * from './kn.js';

/** FT+L: ftEdit with the L∞ constraint ε (default 5e-4, the GPT-2 XL value). */
export function ftlEdit(model: GPT2Model, request: EditRequest, hparams: Partial<FtHparams> = {}): Promise<EditHandle> {
  return ftEdit(model, request, { normConstraint: 5e-4, ...hparams });
}
