/**
 * `rome-ts inspect`: tokenisation and top next tokens of a prompt.
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { loadModel } from '../loadModel.js';
import { defaultModelSource } from './defaults.js';

export const INSPECT_HELP = `rome-ts inspect [<model-dir-or-hub-id>] --prompt "<text>" [--top 10] [--json]

  Prints the prompt's tokens and the most likely next tokens with probabilities.
  --json prints { tokens, ids, topk, logits } with the full last-position logits.
  The model defaults to $ROME_TS_MODEL, else the bundled model.`;

/** Runs `rome-ts inspect`; returns the exit code. */
export async function runInspectCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      prompt: { type: 'string', short: 'p' },
      top: { type: 'string', default: '10' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(INSPECT_HELP + '\n');
    return 0;
  }
  if (values.prompt === undefined) throw new UsageError('inspect: --prompt "<text>" is required');
  const top = Number(values.top);
  if (!Number.isInteger(top) || top < 1) throw new UsageError(`inspect: --top must be a positive integer, got "${values.top}"`);
  if (positionals.length > 1) throw new UsageError(`inspect: expected one model, got ${positionals.join(' ')}`);
  const model = await loadModel(positionals[0] ?? defaultModelSource());
  if (!model.tokenizer) throw new Error(`inspect: model "${model.name}" has no tokenizer.json`);
  const enc = model.tokenizer.encode(values.prompt);
  if (enc.ids.length === 0) throw new UsageError('inspect: the prompt has no tokens');
  const tokens = enc.ids.map((id) => model.tokenizer!.decode([id]));
  const r = model.run([enc.ids], { logits: 'last' });
  const logits = Array.from(r.logits!.dataSync());
  const probs = tf.tidy(() => tf.softmax(r.logits!.tensor));
  const { values: pv, indices } = tf.topk(probs, Math.min(top, model.config.vocabSize));
  const p = pv.dataSync();
  const ix = indices.dataSync();
  const topk = Array.from(ix, (id, i) => ({ id, token: model.tokenizer!.decode([id]), prob: p[i], logit: logits[id] }));
  for (const t of [probs, pv, indices]) t.dispose();
  r.dispose();
  if (values.json) {
    process.stdout.write(JSON.stringify({ model: model.name, tokens, ids: enc.ids, topk, logits }) + '\n');
  } else {
    process.stdout.write(`model: ${model.name} (${model.config.nLayer} layers, d=${model.config.nEmbd}, vocab ${model.config.vocabSize})\n`);
    process.stdout.write(`tokens (${tokens.length}): ${tokens.map((t, i) => `${JSON.stringify(t)}:${enc.ids[i]}`).join(' ')}\n`);
    process.stdout.write(`top ${topk.length} next tokens:\n`);
    for (const t of topk) process.stdout.write(`  ${(t.prob * 100).toFixed(2).padStart(6)}%  ${JSON.stringify(t.token)} (${t.id})\n`);
  }
  model.dispose();
  return 0;
}

/** A command-line mistake: printed without a stack trace, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
