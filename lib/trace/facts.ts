/** The facts causal tracing averages over: ROME's known-facts set, as TraceFact records. */
import { loadKnownFacts, type LoadKnownFactsOptions } from '../data/knownFacts.js';
import type { TraceFact } from './averageEffects.js';

/** The first `n` known facts (all when n is omitted) as {prompt, subject, attribute, knownId}. */
export async function loadTraceFacts(n?: number, opts: LoadKnownFactsOptions = {}): Promise<TraceFact[]> {
  const facts = await loadKnownFacts(opts);
  return facts.slice(0, n ?? facts.length).map((f) => ({ prompt: f.prompt, subject: f.subject, attribute: f.attribute, knownId: f.knownId }));
}
