/**
 * zsRE evaluation of one model state: token-level teacher-forced top-1 accuracy of " " + answer after the question
 * (efficacy), after its paraphrase (paraphrase), and of " " + loc_ans after loc + "?" (specificity, as the
 * official code appends "?"). The new answer is the record's `alt` (lib/data/zsre.ts).
 */
import type { ZsreRecord } from '../data/zsre.js';
import type { GPT2Model } from '../model/model.js';
import { spacedTarget } from '../rome/types.js';

/** Token accuracies in [0, 1]. */
export interface ZsreEval {
  efficacy: number;
  paraphrase: number;
  specificity: number;
}

const acc = (ok: boolean[]) => ok.filter(Boolean).length / ok.length;

/** Scores one zsRE case on the model as it is now. */
export function evalZsreCase(model: GPT2Model, rec: ZsreRecord): ZsreEval {
  const [e, p, s] = model.scoreTargets([
    { prompt: rec.prompt, target: spacedTarget(rec.target) },
    { prompt: rec.rephrase, target: spacedTarget(rec.target) },
    { prompt: `${rec.locPrompt}?`, target: spacedTarget(rec.locAnswer) },
  ]);
  return { efficacy: acc(e.tokenArgmaxCorrect), paraphrase: acc(p.tokenArgmaxCorrect), specificity: acc(s.tokenArgmaxCorrect) };
}
