/**
 * Applying, snapshotting, serialising and undoing parameter updates: the machinery behind every EditHandle.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GPT2Model } from '../model/model.js';
import type { ParamSnapshot } from '../model/params.js';
import { EDIT_FORMAT_VERSION, type EditHandle, type EditJSON, type EditMethod, type EditRequest, type ParamUpdate, type StepLoss } from './types.js';
import { weightsHash } from './identity.js';

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

/** Float32's largest finite value: a JSON number beyond it becomes ±Infinity when applied. */
const F32_MAX = 3.4028234663852886e38;

/** Where a value of an edit file came from, for error messages ("applyEdit: updates[0].u[3]"). */
function finiteF32(where: string, x: unknown): number {
  // JSON.stringify writes NaN/±Infinity as null; a null must not become 0.
  if (typeof x !== 'number' || !Number.isFinite(x) || Math.abs(x) > F32_MAX) {
    throw new Error(`${where} must be a finite float32 number, got ${JSON.stringify(x)}`);
  }
  return x;
}

function checkedBase64(where: string, s: unknown, count: number): Float32Array {
  if (typeof s !== 'string') throw new Error(`${where} must be a base64 string`);
  const vals = base64ToFloat32(s);
  if (Buffer.from(s, 'base64').byteLength !== count * 4) {
    throw new Error(`${where} holds ${Buffer.from(s, 'base64').byteLength} bytes, expected ${count * 4} (${count} float32 values)`);
  }
  for (let i = 0; i < vals.length; i++) if (!Number.isFinite(vals[i])) throw new Error(`${where}: value ${i} is ${vals[i]}`);
  return vals;
}

/**
 * Checks one update against the model before any weight changes: the parameter exists, sizes fit, every value is a
 * finite float32, rows are in range. Throws naming the field (`where`, e.g. "updates[1]").
 */
export function validateParamUpdate(model: GPT2Model, upd: ParamUpdate, where = 'update'): void {
  if (upd === null || typeof upd !== 'object') throw new Error(`${where} must be an object`);
  if (typeof upd.param !== 'string' || !model.params.names().includes(upd.param)) {
    throw new Error(`${where}.param: the model has no parameter ${JSON.stringify(upd.param)}`);
  }
  const shape = model.getParam(upd.param).shape;
  if (upd.kind === 'rank-one') {
    if (!Array.isArray(upd.u) || !Array.isArray(upd.v)) throw new Error(`${where}: u and v must be arrays of numbers`);
    if (shape.length !== 2 || shape[0] !== upd.u.length || shape[1] !== upd.v.length) {
      throw new Error(`${where}: rank-one update of "${upd.param}": u[${upd.u.length}] ⊗ v[${upd.v.length}] does not fit [${shape}]`);
    }
    upd.u.forEach((x, i) => finiteF32(`${where}.u[${i}]`, x));
    upd.v.forEach((x, i) => finiteF32(`${where}.v[${i}]`, x));
    // u ⊗ v itself must stay finite in float32.
    const mu = Math.max(...upd.u.map(Math.abs));
    const mv = Math.max(...upd.v.map(Math.abs));
    if (mu * mv > F32_MAX) throw new Error(`${where}: max|u|·max|v| = ${mu * mv} overflows float32`);
  } else if (upd.kind === 'values') {
    if (!Array.isArray(upd.shape) || upd.shape.length !== shape.length || upd.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`${where}.shape ${JSON.stringify(upd.shape)} does not match "${upd.param}" [${shape}]`);
    }
    checkedBase64(`${where}.valuesBase64`, upd.valuesBase64, shape.reduce((a, b) => a * b, 1));
  } else if (upd.kind === 'rows') {
    if (shape.length !== 2 || upd.cols !== shape[1]) throw new Error(`${where}: row update of "${upd.param}": width ${upd.cols} does not fit [${shape}]`);
    if (!Array.isArray(upd.rows)) throw new Error(`${where}.rows must be an array of row indices`);
    upd.rows.forEach((r, i) => {
      if (!Number.isInteger(r) || r < 0 || r >= shape[0]) throw new Error(`${where}.rows[${i}] = ${JSON.stringify(r)} is outside [0, ${shape[0]})`);
    });
    checkedBase64(`${where}.valuesBase64`, upd.valuesBase64, upd.rows.length * shape[1]);
  } else {
    throw new Error(`${where}.kind must be rank-one, values or rows, got ${JSON.stringify((upd as { kind: unknown }).kind)}`);
  }
}

/** Applies one update to the model's live weights (no snapshot, no validation). Rank-one: W ← W + u ⊗ v in float32. */
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

/** Per model and parameter, the live (unrestored) edits that touched it, oldest first. */
const liveEdits = new WeakMap<GPT2Model, Map<string, object[]>>();

/**
 * Validates every update, snapshots the parameters they touch, applies them, and returns the undoable handle.
 * All or nothing: a bad update throws before any weight changes, and a failure while applying restores the
 * snapshots before rethrowing.
 */
export function commitEdit(model: GPT2Model, parts: HandleParts): EditHandle {
  parts.updates.forEach((u, i) => validateParamUpdate(model, u, `updates[${i}]`));
  const names = [...new Set(parts.updates.map((u) => u.param))];
  const fingerprint = weightsHash(model, names);
  const snaps: ParamSnapshot[] = names.map((n) => model.snapshotParam(n));
  try {
    for (const u of parts.updates) applyParamUpdate(model, u);
  } catch (e) {
    for (const s of [...snaps].reverse()) model.restoreParam(s);
    throw e;
  }
  return makeHandle(model, parts, snaps, fingerprint);
}

function makeHandle(model: GPT2Model, parts: HandleParts, snaps: ParamSnapshot[], fingerprint: string): EditHandle {
  const r1 = parts.updates.length === 1 && parts.updates[0].kind === 'rank-one' ? parts.updates[0] : null;
  let restored = false;
  const json: EditJSON = {
    format: 'rome-ts-edit',
    version: EDIT_FORMAT_VERSION,
    method: parts.method,
    model: {
      name: model.name,
      nLayer: model.config.nLayer,
      nEmbd: model.config.nEmbd,
      nInner: model.config.nInner,
      paramsSha256: fingerprint,
    },
    layer: parts.layer,
    request: parts.request,
    losses: parts.losses,
    updates: parts.updates,
    info: parts.info,
  };
  const token = {};
  const live = liveEdits.get(model) ?? new Map<string, object[]>();
  liveEdits.set(model, live);
  for (const s of snaps) {
    const stack = live.get(s.name) ?? [];
    stack.push(token);
    live.set(s.name, stack);
  }
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
      // Snapshots hold the weights from before this edit: restoring under a later live edit would silently undo
      // that one too (or leave this one applied), so out-of-order restores are refused.
      const stacks = snaps.map((s) => live.get(s.name) ?? []);
      const later = snaps.filter((_, i) => stacks[i].at(-1) !== token).map((s) => s.name);
      if (later.length > 0) {
        throw new Error(
          `restore: a later edit of ${later.map((n) => `"${n}"`).join(', ')} is still applied; restore edits in reverse order (last applied first)`,
        );
      }
      for (const s of [...snaps].reverse()) model.restoreParam(s);
      for (const st of stacks) st.pop();
      restored = true;
    },
    toJSON: () => json,
  };
}

/** Options of applyEdit. */
export interface ApplyEditOptions {
  /** Apply even when the touched weights differ from those the edit was made on (or the file has no fingerprint). */
  force?: boolean;
}

/**
 * Re-applies a saved edit (any method) and returns the handle that undoes it. The file is checked whole before any
 * weight changes: format and version, model shape, layer, every update (finite float32 values, sizes), and the
 * sha256 of the touched weights it was made on (a patch for another model of the same shape is refused unless
 * `force`).
 */
export function applyEdit(model: GPT2Model, edit: EditJSON | string, opts: ApplyEditOptions = {}): EditHandle {
  let e: EditJSON;
  try {
    e = typeof edit === 'string' ? (JSON.parse(edit) as EditJSON) : edit;
  } catch (err) {
    throw new Error(`applyEdit: not valid JSON (${(err as Error).message})`);
  }
  if (e === null || typeof e !== 'object' || e.format !== 'rome-ts-edit') throw new Error('applyEdit: not a rome-ts edit (format field missing)');
  if (e.version !== 1 && e.version !== EDIT_FORMAT_VERSION) {
    throw new Error(`applyEdit: unsupported edit version ${JSON.stringify(e.version)} (this rome-ts reads 1 and ${EDIT_FORMAT_VERSION})`);
  }
  if (!['rome', 'ft', 'ft-l', 'kn'].includes(e.method)) throw new Error(`applyEdit: unknown method ${JSON.stringify(e.method)}`);
  const c = model.config;
  if (e.model === null || typeof e.model !== 'object') throw new Error('applyEdit: the "model" field is missing');
  if (e.model.nLayer !== c.nLayer || e.model.nEmbd !== c.nEmbd || e.model.nInner !== c.nInner) {
    throw new Error(
      `applyEdit: edit was made on ${e.model.name} (${e.model.nLayer} layers, d=${e.model.nEmbd}, nInner=${e.model.nInner}); ` +
        `this model has ${c.nLayer} layers, d=${c.nEmbd}, nInner=${c.nInner}`,
    );
  }
  if (!Number.isInteger(e.layer) || e.layer < 0 || e.layer >= c.nLayer) throw new Error(`applyEdit: layer ${JSON.stringify(e.layer)} is outside [0, ${c.nLayer})`);
  if (!Array.isArray(e.updates) || e.updates.length === 0) throw new Error('applyEdit: "updates" must be a non-empty array');
  e.updates.forEach((u, i) => validateParamUpdate(model, u, `applyEdit: updates[${i}]`));
  if (e.method === 'rome') {
    const want = `h.${e.layer}.mlp.c_proj.weight`;
    const off = e.updates.find((u) => u.param !== want);
    if (off) throw new Error(`applyEdit: a ROME edit of layer ${e.layer} must change "${want}" only, but it changes "${off.param}"`);
  }
  const names = [...new Set(e.updates.map((u) => u.param))];
  if (!opts.force) {
    const want = e.model.paramsSha256;
    if (typeof want !== 'string') {
      throw new Error('applyEdit: this edit file has no fingerprint of the weights it was made on (version 1); pass { force: true } to apply it anyway');
    }
    const got = weightsHash(model, names);
    if (got !== want) {
      throw new Error(
        `applyEdit: the weights this edit changes (${names.join(', ')}) differ from those it was made on (sha256 ${want.slice(0, 12)}…, ` +
          `this model ${got.slice(0, 12)}…): it was made for another model or on top of other edits; pass { force: true } to apply it anyway`,
      );
    }
  }
  return commitEdit(model, { method: e.method, layer: e.layer, request: e.request, losses: e.losses, updates: e.updates, info: e.info });
}
