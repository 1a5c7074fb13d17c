/**
 * Applying, snapshotting, serialising and undoing parameter updates: the machinery behind every EditHandle.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GPT2Model } from '../model/model.js';
import type { ParamSnapshot } from '../model/params.js';
import type { EditHandle, EditJSON, EditMethod, EditRequest, ParamUpdate, StepLoss } from './types.js';

/** Float32 values → base64 of their little-endian bytes. */
export function float32ToBase64(a: Float32Array): string {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
}

/** Base64 of little-endian float32 bytes → values. */
export function base64ToFloat32(s: string): Float32Array {
  const b = Buffer.from(s, 'base64');
  const out = new Float32Array(b.byteLength / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}

/** Applies one update to the model's live weights (no snapshot). Rank-one: W ← W + u ⊗ v in float32. */
export function applyParamUpdate(model: GPT2Model, upd: ParamUpdate): void {
  const w = model.getParam(upd.param);
  if (upd.kind === 'rank-one') {
    if (w.shape.length !== 2 || w.shape[0] !== upd.u.length || w.shape[1] !== upd.v.length) {
      throw new Error(`rank-one update of "${upd.param}": u[${upd.u.length}] ⊗ v[${upd.v.length}] does not fit [${w.shape}]`);
    }
    const next = tf.tidy(() =>
      tf.add(w, tf.outerProduct(tf.tensor1d(Float32Array.from(upd.u)), tf.tensor1d(Float32Array.from(upd.v)))),
    );
    model.setParam(upd.param, next);
    next.dispose();
  } else if (upd.kind === 'values') {
    const t = tf.tensor(base64ToFloat32(upd.valuesBase64), upd.shape, 'float32');
    model.setParam(upd.param, t);
    t.dispose();
  } else {
    if (w.shape.length !== 2 || w.shape[1] !== upd.cols) throw new Error(`row update of "${upd.param}": width ${upd.cols} does not fit [${w.shape}]`);
    const data = (w.dataSync() as Float32Array).slice();
    const vals = base64ToFloat32(upd.valuesBase64);
    upd.rows.forEach((r, i) => data.set(vals.subarray(i * upd.cols, (i + 1) * upd.cols), r * upd.cols));
    const t = tf.tensor(data, w.shape, 'float32');
    model.setParam(upd.param, t);
    t.dispose();
  }
}

/** Everything a handle needs besides the snapshots. */
export interface HandleParts {
  method: EditMethod;
  layer: number;
  request: EditRequest;
  losses: StepLoss[];
  updates: ParamUpdate[];
  info: Record<string, unknown>;
}

/** Snapshots the parameters the updates touch, applies the updates, and returns the undoable handle. */
export function commitEdit(model: GPT2Model, parts: HandleParts): EditHandle {
  const names = [...new Set(parts.updates.map((u) => u.param))];
  const snaps: ParamSnapshot[] = names.map((n) => model.snapshotParam(n));
  for (const u of parts.updates) applyParamUpdate(model, u);
  return makeHandle(model, parts, snaps);
}

function makeHandle(model: GPT2Model, parts: HandleParts, snaps: ParamSnapshot[]): EditHandle {
  const r1 = parts.updates.length === 1 && parts.updates[0].kind === 'rank-one' ? parts.updates[0] : null;
  let restored = false;
  const json: EditJSON = {
    format: 'rome-ts-edit',
    version: 1,
    method: parts.method,
    model: { name: model.name, nLayer: model.config.nLayer, nEmbd: model.config.nEmbd, nInner: model.config.nInner },
    layer: parts.layer,
    request: parts.request,
    losses: parts.losses,
    updates: parts.updates,
    info: parts.info,
  };
  return {
    method: parts.method,
    layer: parts.layer,
    u: r1 ? r1.u : [],
    v: r1 ? r1.v : [],
    losses: parts.losses,
    request: parts.request,
    info: parts.info,
    get restored() {
      return restored;
    },
    restore(): void {
      if (restored) return;
      for (const s of [...snaps].reverse()) model.restoreParam(s);
      restored = true;
    },
    toJSON: () => json,
  };
}

/** Re-applies a saved edit (any method) on a model of the same shape; the returned handle undoes it. */
export function applyEdit(model: GPT2Model, edit: EditJSON | string): EditHandle {
  const e = typeof edit === 'string' ? (JSON.parse(edit) as EditJSON) : edit;
  if (e.format !== 'rome-ts-edit') throw new Error('applyEdit: not a rome-ts edit (format field missing)');
  const c = model.config;
  if (e.model.nLayer !== c.nLayer || e.model.nEmbd !== c.nEmbd || e.model.nInner !== c.nInner) {
    throw new Error(
      `applyEdit: edit was made on ${e.model.name} (${e.model.nLayer} layers, d=${e.model.nEmbd}, nInner=${e.model.nInner}); ` +
        `this model has ${c.nLayer} layers, d=${c.nEmbd}, nInner=${c.nInner}`,
    );
  }
  return commitEdit(model, { method: e.method, layer: e.layer, request: e.request, losses: e.losses, updates: e.updates, info: e.info });
}
