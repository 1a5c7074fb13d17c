/** Evaluation: CounterFact and zsRE metrics, the edit/evaluate/restore protocol, summaries, the layer sweep. */
export * from './stats.js';
export * from './text.js';
export * from './reference.js';
export * from './methods.js';
export * from './counterfact.js';
export * from './zsre.js';
export * from './runner.js';
export * from './summarize.js';
export * from './sweep.js';
