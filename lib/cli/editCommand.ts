/**
 * `rome-ts edit`: apply one ROME (or FT / FT+L / KN) edit, show the edit prompt's prediction before and after,
 * and optionally save the edit as a portable JSON patch.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { loadModel } from '../loadModel.js';
import type { GPT2Model } from '../model/model.js';
import { hparamsDir, loadRomeHparams, type RomeHparams } from '../rome/hparams.js';
import { checkEditRequest, fillPrompt, spacedTarget } from '../rome/types.js';
import { loadFtHparams, type FtHparams } from '../baselines/ft.js';
import { loadKnHparams } from '../baselines/kn.js';
import { makeEditor, type MethodHparams, type MethodName } from '../eval/methods.js';
import { UsageError } from './inspectCommand.js';
import { defaultModelSource } from './defaults.js';
import { checkOutFile, parseChoice, parseIntFlag, writeFileAtomic } from './args.js';

export const EDIT_HELP = `rome-ts edit [--model DIR] --prompt "{} plays" --subject "X" --target "football" [options]
  --method rome|ft|ft-l|kn   editing method (default rome)
  --target-true STR          the true object (needed by kn, and by rome with preserveFacts)
  --hparams NAME|PATH        hyperparameter file (default: hparams/<METHOD>/<model name>.json when present)
  --layer N                  override the edited layer
  --identity-cov             ROME with C = I (no corpus statistics)
  --out FILE.json            save the edit as JSON (re-apply with romets.applyEdit)
  --force                    overwrite an existing --out file
  --generate N               also show N greedy tokens after the prompt before/after (default 12)`;

/** Hyperparameters of a method for a model: an explicit file, else hparams/<METHOD>/<model name>.json if present. */
export function methodHparamsFor(model: GPT2Model, method: MethodName, file?: string, layer?: number): MethodHparams {
  const base = path.basename(model.name);
  const has = (dir: string, n: string) => existsSync(path.join(hparamsDir(), dir, `${n}.json`));
  const out: MethodHparams = {};
  if (method === 'rome') {
    const hp: Partial<RomeHparams> = file ? loadRomeHparams(file) : has('ROME', base) ? loadRomeHparams(base) : {};
    if (layer !== undefined && hp.mom2Stats != null && hp.layer !== layer) {
      // Shipped statistics belong to the file's layer; at another layer C is computed from the same corpus.
      process.stderr.write(
        `--layer ${layer}: mom2Stats (${hp.mom2Stats}) holds layer ${String(hp.layer)}'s statistics; computing C at layer ${layer} from ` +
          `${hp.mom2Corpus ? `mom2Corpus (${hp.mom2Corpus})` : 'the default corpus'} instead\n`,
      );
      out.rome = { ...hp, layer, mom2Stats: null };
    } else {
      out.rome = layer !== undefined ? { ...hp, layer } : hp;
    }
  } else if (method === 'ft' || method === 'ft-l') {
    const n = `${base}_${method === 'ft' ? 'unconstr' : 'constr'}`;
    const hp: Partial<FtHparams> = file ? loadFtHparams(file) : has('FT', n) ? loadFtHparams(n) : {};
    if (layer !== undefined) hp.layer = layer;
    if (method === 'ft') out.ft = hp;
    else out.ftl = hp;
  } else if (method === 'kn') {
    out.kn = file ? loadKnHparams(file) : has('KN', base) ? loadKnHparams(base) : {};
  }
  return out;
}

/** Runs `rome-ts edit`; returns the exit code. */
export async function runEditCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string' },
      prompt: { type: 'string' },
      subject: { type: 'string' },
      target: { type: 'string' },
      'target-true': { type: 'string' },
      method: { type: 'string', default: 'rome' },
      hparams: { type: 'string' },
      layer: { type: 'string' },
      'identity-cov': { type: 'boolean', default: false },
      out: { type: 'string' },
      force: { type: 'boolean', default: false },
      generate: { type: 'string', default: '12' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(EDIT_HELP + '\n');
    return 0;
  }
  if (!values.prompt || !values.subject || !values.target) throw new UsageError(`--prompt, --subject and --target are required\n${EDIT_HELP}`);
  if (!values.prompt.includes('{}')) throw new UsageError('--prompt must contain "{}" where the subject goes');
  const request = { prompt: values.prompt, subject: values.subject, target: values.target, targetTrue: values['target-true'] };
  try {
    checkEditRequest(request);
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/^edit request: /, ''));
  }
  if (values.out) checkOutFile('out', values.out, ['.json'], values.force);
  const method = parseChoice('method', values.method, ['rome', 'ft', 'ft-l', 'kn'] as const);
  const layer = parseIntFlag('layer', values.layer, undefined, 0);
  const nGen = parseIntFlag('generate', values.generate, 12, 0);
  const model = await loadModel(values.model ?? defaultModelSource());
  const hp = methodHparamsFor(model, method, values.hparams, layer);
  if (method === 'rome' && values['identity-cov']) hp.rome = { ...hp.rome, mom2Adjustment: false };
  const text = fillPrompt(values.prompt, values.subject);
  const show = async (label: string) => {
    const top = model.topTokens(text, 5).map((t) => `${JSON.stringify(t.token)} ${(t.prob * 100).toFixed(1)}%`).join(', ');
    process.stdout.write(`${label}: top next tokens: ${top}\n`);
    if (nGen > 0) process.stdout.write(`${label}: ${JSON.stringify(await model.generate(text, { maxNewTokens: nGen }))}\n`);
  };
  await show('before');
  const target = { prompt: text, target: spacedTarget(values.target) };
  const [pre] = model.scoreTargets([target]);
  const handle = await makeEditor(model, method, hp)(request);
  if (!handle) return 0;
  await show('after ');
  const last = handle.losses.at(-1);
  process.stdout.write(`${method} edit at layer ${handle.layer}: ${handle.losses.length} steps${last ? `, final loss ${last.loss.toFixed(4)}` : ''}\n`);
  // The loss alone does not say whether the edit took: measure p(target | prompt) and greedy recall.
  const [post] = model.scoreTargets([target]);
  const took = post.tokenArgmaxCorrect.every(Boolean);
  process.stdout.write(`p(${JSON.stringify(target.target)} | prompt): ${post.prob.toExponential(3)} after the edit (${pre.prob.toExponential(3)} before); greedy recall ${took ? 'yes' : 'no'}\n`);
  if (!took) {
    process.stderr.write(
      `rome-ts edit: warning: the edit did not take: the model does not greedily continue the prompt with ${JSON.stringify(target.target)} ` +
        `(p = ${post.prob.toExponential(3)}); try more steps, another layer or another hyperparameter file\n`,
    );
  }
  if (values.out) {
    writeFileAtomic(values.out, JSON.stringify(handle.toJSON()));
    process.stdout.write(`saved ${values.out}\n`);
  }
  return 0;
}
