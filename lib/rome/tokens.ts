/**
 * Token bookkeeping shared by the ROME steps and the baselines: subject positions and right-padded id batches.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GPT2Model } from '../model/model.js';

/** Ids of a text and the position of the subject's last token in it (by character offsets; first occurrence). */
export function encodeWithSubject(
  model: GPT2Model,
  text: string,
  subject: string,
  at?: number,
): { ids: number[]; subjectLast: number } {
  const tok = model.tokenizer;
  if (!tok) throw new Error(`model "${model.name}" has no tokenizer`);
  const enc = tok.encode(text);
  const start = at ?? text.indexOf(subject);
  if (start < 0 || text.slice(start, start + subject.length) !== subject) {
    throw new Error(`subject "${subject}" not found in prompt "${text}"`);
  }
  const r = tok.tokenRangeOfSpan(text, start, start + subject.length);
  return { ids: enc.ids, subjectLast: r.end - 1 };
}

/** Fills a two-level template ("<prefix>. {}" around "{} plays") with the subject; returns the text and where the subject starts. */
export function fillWithSpan(context: string, prompt: string, subject: string): { text: string; at: number } {
  const c = context.indexOf('{}');
  const p = prompt.indexOf('{}');
  if (c < 0 || p < 0) throw new Error(`template without "{}": ${JSON.stringify(c < 0 ? context : prompt)}`);
  if (prompt.indexOf('{}', p + 2) >= 0) throw new Error(`prompt template has more than one "{}": ${JSON.stringify(prompt)}`);
  const inner = prompt.slice(0, p) + subject + prompt.slice(p + 2);
  return { text: context.slice(0, c) + inner + context.slice(c + 2), at: c + p };
}

/** Ids of a text (a BOS only when the tokenizer adds one, as LLaMA's does; GPT-2's does not). */
export function encodeText(model: GPT2Model, text: string): number[] {
  const tok = model.tokenizer;
  if (!tok) throw new Error(`model "${model.name}" has no tokenizer`);
  return tok.encode(text).ids;
}

/** Ids of a target (or answer) that follows a prompt: no BOS; see Tokenizer.encodeContinuation. */
export function encodeTarget(model: GPT2Model, text: string): number[] {
  const tok = model.tokenizer;
  if (!tok) throw new Error(`model "${model.name}" has no tokenizer`);
  return tok.encodeContinuation(text);
}

/** Right-pads rows into an int32 [B, T] tensor (causal attention: real tokens never see the padding). */
export function padIds(model: GPT2Model, rows: readonly (readonly number[])[]): { ids: tf.Tensor2D; T: number } {
  const T = Math.max(...rows.map((r) => r.length));
  const pad = model.config.eosTokenId ?? 0;
  const flat = new Int32Array(rows.length * T).fill(pad);
  rows.forEach((r, b) => flat.set(r, b * T));
  return { ids: tf.tensor2d(flat, [rows.length, T], 'int32'), T };
}

/** A constant [N, B*T] one-hot matrix selecting flat positions (matmul instead of gather keeps gradients simple). */
export function selector(flatPositions: readonly number[], BT: number): tf.Tensor2D {
  const m = new Float32Array(flatPositions.length * BT);
  flatPositions.forEach((p, i) => (m[i * BT + p] = 1));
  return tf.tensor2d(m, [flatPositions.length, BT]);
}

/** A constant [N, V] one-hot matrix of token ids. */
export function oneHotRows(ids: readonly number[], V: number): tf.Tensor2D {
  const m = new Float32Array(ids.length * V);
  ids.forEach((t, i) => (m[i * V + t] = 1));
  return tf.tensor2d(m, [ids.length, V]);
}
