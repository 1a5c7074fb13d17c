/** Editing methods by name, with their hyperparameters, behind one signature. */
import { ftEdit, type FtHparams } from '../baselines/ft.js';
import { knEdit, type KnHparams } from '../baselines/kn.js';
import type { GPT2Model } from '../model/model.js';
import { edit as romeEdit, type RomeEditOptions } from '../rome/index.js';
import type { RomeHparams } from '../rome/hparams.js';
import type { EditHandle, EditRequest } from '../rome/types.js';

/** Method names of the evaluation ('none' = unedited). */
export type MethodName = 'rome' | 'ft' | 'ft-l' | 'kn' | 'none';

/** Hyperparameters per method. */
export interface MethodHparams {
  rome?: Partial<RomeHparams>;
  romeOptions?: RomeEditOptions;
  ft?: Partial<FtHparams>;
  ftl?: Partial<FtHparams>;
  kn?: Partial<KnHparams>;
}

/** An editor: applies an edit and returns its handle (null for 'none'). */
export type Editor = (request: EditRequest) => Promise<EditHandle | null>;

/** The editor for a method name. FT+L defaults to ε = 5e-4 when its hparams give none. */
export function makeEditor(model: GPT2Model, method: MethodName, hp: MethodHparams = {}): Editor {
  switch (method) {
    case 'rome':
      return (r) => romeEdit(model, r, hp.rome ?? {}, hp.romeOptions ?? {});
    case 'ft':
      return (r) => ftEdit(model, r, { ...hp.ft, normConstraint: null });
    case 'ft-l':
      return (r) => ftEdit(model, r, { normConstraint: 5e-4, ...hp.ftl });
    case 'kn':
      return (r) => knEdit(model, r, hp.kn ?? {});
    case 'none':
      return async () => null;
    default:
      throw new Error(`unknown method "${method as string}" (rome, ft, ft-l, kn, none)`);
  }
}
