/**
 * Captures and patches expressed as hooks on the one forward pass.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { HookContext, HookFn } from '../hooks.js';
import { TensorHandle } from './handle.js';

/** A state (or a function making one) to write into a hook point during a run. */
export type PatchValue = tf.Tensor | TensorHandle | number | ((x: tf.Tensor, ctx: HookContext) => tf.Tensor);

/** One intervention: replace (or add to) a hook point's state at chosen token positions and batch rows. */
export interface Patch {
  hook: string;
  /** Absolute token positions to change (default: all). */
  positions?: readonly number[] | 'all';
  /** Batch rows to change (default: all). */
  batch?: readonly number[] | 'all';
  /**
   * The new state: a tensor broadcastable to the state's shape (e.g. a full [B,T,d] state captured from another
   * run, or a [d] vector), a handle, a scalar, or a function of the current state.
   */
  value: PatchValue;
  /** 'replace' (default) writes the value; 'add' adds it. */
  mode?: 'replace' | 'add';
}

/** Axis of token positions for a hook point's state: 2 for attention patterns [B,H,T,S], else 1. */
function positionAxis(hook: string): number {
  return hook.endsWith('.attn.pattern') ? 2 : 1;
}

function selectionMask(
  shape: readonly number[],
  axis: number,
  positions: readonly number[] | 'all',
  batch: readonly number[] | 'all',
  offset: number,
): tf.Tensor | null {
  const B = shape[0];
  const T = shape[axis];
  const rows = new Uint8Array(B);
  const cols = new Uint8Array(T);
  if (batch === 'all') rows.fill(1);
  else for (const b of batch) if (b >= 0 && b < B) rows[b] = 1;
  if (positions === 'all') cols.fill(1);
  else for (const p of positions) if (p - offset >= 0 && p - offset < T) cols[p - offset] = 1;
  if (batch === 'all' && positions === 'all') return null;
  const data = new Uint8Array(B * T);
  let any = false;
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) if ((data[b * T + t] = rows[b] & cols[t])) any = true;
  if (!any) return tf.zeros([0]); // sentinel: nothing selected in this chunk
  const mshape = shape.map((_, i) => (i === 0 ? B : i === axis ? T : 1));
  return tf.tensor(data, mshape, 'bool');
}

/**
 * Throws unless every explicit position is an integer in [0, T) and every batch row an integer in [0, B): a patch
 * aimed outside the sequence would otherwise change nothing, silently.
 */
export function checkPatchSelection(p: Patch, B: number, T: number): void {
  const check = (what: string, xs: readonly number[] | 'all' | undefined, n: number) => {
    if (xs === undefined || xs === 'all') return;
    if (!Array.isArray(xs)) throw new Error(`patch on "${p.hook}": ${what} must be an array of integers or 'all'`);
    for (const x of xs) {
      if (!Number.isInteger(x) || x < 0 || x >= n) throw new Error(`patch on "${p.hook}": ${what} ${x} is outside [0, ${n})`);
    }
  };
  check('position', p.positions, T);
  check('batch row', p.batch, B);
}

/** Turns a Patch into a hook function (validated against the hook point when it fires). */
export function patchHook(p: Patch): HookFn {
  const mode = p.mode ?? 'replace';
  return (x, ctx) => {
    const axis = positionAxis(p.hook);
    const mask = selectionMask(x.shape, axis, p.positions ?? 'all', p.batch ?? 'all', ctx.positionOffset);
    if (mask && mask.size === 0) return undefined;
    let v: tf.Tensor;
    if (typeof p.value === 'function') v = p.value(x, ctx);
    else if (p.value instanceof TensorHandle) v = p.value.tensor;
    else if (typeof p.value === 'number') v = tf.scalar(p.value);
    else v = p.value;
    if (v.rank > x.rank) throw new Error(`patch on "${p.hook}": value has rank ${v.rank}, state has rank ${x.rank}`);
    // Values captured over a longer sequence (e.g. a clean run) are cut to this chunk's positions.
    if (v.rank === x.rank && v.shape[axis] !== x.shape[axis] && v.shape[axis] !== 1) {
      const start = ctx.positionOffset;
      if (v.shape[axis] < start + x.shape[axis]) {
        throw new Error(
          `patch on "${p.hook}": value shape [${v.shape}] does not cover positions ${start}..${start + x.shape[axis] - 1} of state [${x.shape}]`,
        );
      }
      const begin = v.shape.map((_, i) => (i === axis ? start : 0));
      const size = v.shape.map((s, i) => (i === axis ? x.shape[axis] : s));
      v = tf.slice(v, begin, size);
    }
    let full: tf.Tensor;
    try {
      full = mode === 'add' ? tf.add(x, v) : tf.broadcastTo(v, x.shape);
    } catch (e) {
      throw new Error(`patch on "${p.hook}": value shape [${v.shape}] does not fit state shape [${x.shape}] (${(e as Error).message})`);
    }
    return mask ? tf.where(mask, full, x) : full;
  };
}

/** A hook that keeps a copy of the state it sees in `into` under `name` (concatenating over chunks). */
export function captureHook(name: string, into: Map<string, tf.Tensor>): HookFn {
  return (x) => {
    into.get(name)?.dispose();
    into.set(name, tf.keep(tf.clone(x)));
    return undefined;
  };
}
