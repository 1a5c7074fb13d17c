// Dev checks' shared input: the first N known_1000 prompts whose subject's tokens align, with the subject's token range.
import { promises as fsp } from 'node:fs';
import type { GPT2Model } from '../../lib/model/model.js';
import { subjectTokenSpan } from '../../lib/train/subjectKnockout.js';

/** Known prompt ids, subject range [s0, s1) and the attribute's first token id. */
export interface KnownPrompt {
  ids: number[];
  s0: number;
  s1: number;
  target: number;
}

/** The first `n` known_1000 facts (../shared/data) encoded for `model`; facts whose subject does not align are skipped. */
export async function knownPrompts(model: GPT2Model, n: number): Promise<KnownPrompt[]> {
  const known = JSON.parse(await fsp.readFile('../shared/data/known_1000.json', 'utf8')) as { prompt: string; subject: string; attribute: string }[];
  const tok = model.tokenizer!;
  const out: KnownPrompt[] = [];
  for (const k of known.slice(0, n)) {
    const span = subjectTokenSpan(tok, k.prompt, k.subject);
    if (!span) continue;
    out.push({ ids: tok.encode(k.prompt).ids, s0: span.start, s1: span.end, target: tok.encode(' ' + k.attribute).ids[0]! });
  }
  return out;
}
