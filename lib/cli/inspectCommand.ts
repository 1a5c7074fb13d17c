/**
 * `rome-ts inspect`: tokenisation and top next tokens of a prompt.
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { loadModel } from '../loadModel.js';
import { defaultModelSource } from './defaults.js';

export const INSPECT_HELP = `rome-ts inspect [<model-dir-or-hub-id>] (--prompt "<text>" | --ids 1,2,3) [--top 10] [--json]

  Prints the prompt's tokens and the most likely next tokens with probabilities.
  --ids takes token ids instead of a prompt (for checkpoints without a tokenizer.json); tokens are then the
  decoded ids when a tokenizer exists, else the ids as strings.
  --json prints { tokens, ids, topk, logits } with the full last-position logits.
  The model defaults to $ROME_TS_MODEL, else the bundled model.`;

/** Runs `rome-ts inspect`; returns the exit code. */
export async function runInspectCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      prompt: { type: 'string', short: 'p' },
      ids: { type: 'string' },
      top: { type: 'string', default: '10' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(INSPECT_HELP + '\n');
    return 0;
  }
  if ((values.prompt === undefined) === (values.ids === undefined)) {
    throw new UsageError('inspect: give exactly one of --prompt "<text>" or --ids 1,2,3');
  }
  const givenIds = values.ids === undefined ? null : parseIds(values.ids);
  const top = Number(values.top);
  if (!Number.isInteger(top) || top < 1) throw new UsageError(`inspect: --top must be a positive integer, got "${values.top}"`);
  if (positionals.length > 1) throw new UsageError(`inspect: expected one model, got ${positionals.join(' ')}`);
  const model = await loadModel(positionals[0] ?? defaultModelSource());
  const tok = model.tokenizer;
  if (!tok && givenIds === null) throw new Error(`inspect: model "${model.name}" has no tokenizer.json (pass --ids instead)`);
  const enc = { ids: givenIds ?? tok!.encode(values.prompt!).ids };
  if (enc.ids.length === 0) throw new UsageError('inspect: the prompt has no tokens');
  for (const id of enc.ids) {
    if (id >= model.config.vocabSize) throw new UsageError(`inspect: token id ${id} out of range [0, ${model.config.vocabSize})`);
  }
  const show = (id: number) => (tok ? tok.decode([id]) : String(id));
  const tokens = enc.ids.map(show);
  const r = model.run([enc.ids], { logits: 'last' });
  const logits = Array.from(r.logits!.dataSync());
  const probs = tf.tidy(() => tf.softmax(r.logits!.tensor));
  const { values: pv, indices } = tf.topk(probs, Math.min(top, model.config.vocabSize));
  const p = pv.dataSync();
  const ix = indices.dataSync();
  const topk = Array.from(ix, (id, i) => ({ id, token: show(id), prob: p[i], logit: logits[id] }));
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

/** "1, 2,3" → [1, 2, 3]; every entry a non-negative integer. */
function parseIds(text: string): number[] {
  const parts = text.split(',').map((x) => x.trim());
  if (parts.some((x) => !/^\d+$/.test(x))) throw new UsageError(`inspect: --ids must be comma-separated token ids, got "${text}"`);
  return parts.map(Number);
}

/** A command-line mistake: printed without a stack trace, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
