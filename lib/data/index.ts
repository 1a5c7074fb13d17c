/** Dataset loaders: known facts, CounterFact, zsRE, text corpora; all read from the data directory at run time. */
export * from './paths.js';
export * from './knownFacts.js';
export * from './counterfact.js';
export * from './zsre.js';
export * from './corpus.js';
export * from './relations.js';
