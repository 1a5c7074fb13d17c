/**
 * CounterFact evaluation of one model state (paper-spec §4). Both record formats are handled: ROME's full records
 * (2 paraphrase and 10 neighbourhood prompts, several generation prompts) and EasyEdit's reduced records (one
 * rephrase prompt, which lib/data classifies as a paraphrase or a generation prompt, and one neighbourhood
 * prompt). Absent prompt kinds give empty lists, and the summary averages each metric over the cases that have it.
 * Attribute prompts are not scored (the official code does not score them either).
 */
import type { CounterFactRecord } from '../data/counterfact.js';
import type { GPT2Model } from '../model/model.js';
import { fillPrompt, spacedTarget } from '../rome/types.js';
import type { ReferenceTexts } from './reference.js';
import { ngramEntropy, tfidfCosine, type Idf } from './text.js';

/** NLLs (mean per token) of the new and the true object after one prompt. */
export interface PromptNll {
  nllNew: number;
  nllTrue: number;
}

/** Everything measured on one model state for one case. */
export interface CounterFactEval {
  rewrite: PromptNll;
  paraphrase: PromptNll[];
  neighborhood: PromptNll[];
  /** Present when generation was requested and the case has generation prompts. */
  generation?: { texts: string[]; ngramEntropy: number; referenceScore: number | null; nReferences: number };
}

/** Options of the generation metrics. */
export interface GenerationOptions {
  /** New tokens per text (default 100). */
  maxNewTokens?: number;
  /** Top-k of the sampler (default 5). */
  topK?: number;
  seed?: number;
  /** For RS; when absent RS is null. */
  references?: ReferenceTexts;
  idf?: Idf;
}

/** Scores one CounterFact case on the model as it is now. */
export async function evalCounterFactCase(
  model: GPT2Model,
  rec: CounterFactRecord,
  gen: GenerationOptions | null = null,
): Promise<CounterFactEval> {
  const tNew = spacedTarget(rec.targetNew);
  const tTrue = spacedTarget(rec.targetTrue);
  const prompts = [fillPrompt(rec.prompt, rec.subject), ...rec.paraphrasePrompts, ...rec.neighborhoodPrompts];
  const scores = model.scoreTargets(prompts.flatMap((p) => [{ prompt: p, target: tNew }, { prompt: p, target: tTrue }]));
  const pn: PromptNll[] = prompts.map((_, i) => ({ nllNew: scores[2 * i].nll, nllTrue: scores[2 * i + 1].nll }));
  const np = rec.paraphrasePrompts.length;
  const out: CounterFactEval = { rewrite: pn[0], paraphrase: pn.slice(1, 1 + np), neighborhood: pn.slice(1 + np) };
  if (gen && rec.generationPrompts.length > 0) {
    const texts: string[] = [];
    for (let i = 0; i < rec.generationPrompts.length; i++) {
      // A fixed length, past end-of-text tokens, as the paper's generations: a model trained on one-sentence
      // documents would otherwise stop after a dozen tokens and GE would measure sentence length, not fluency.
      const opts = { maxNewTokens: gen.maxNewTokens ?? 100, topK: gen.topK ?? 5, seed: (gen.seed ?? 0) + i, stopAtEos: false };
      texts.push(await model.generate(rec.generationPrompts[i], opts));
    }
    const ents = texts.map(ngramEntropy);
    let rs: number | null = null;
    let nRef = 0;
    if (gen.references && gen.idf) {
      const refs = gen.references.textsFor(rec.targetNew, rec.relationId, rec.subject);
      nRef = refs.length;
      if (refs.length) rs = tfidfCosine(texts.join(' '), refs.join(' '), gen.idf);
    }
    out.generation = { texts, ngramEntropy: ents.reduce((a, b) => a + b, 0) / ents.length, referenceScore: rs, nReferences: nRef };
  }
  return out;
}
