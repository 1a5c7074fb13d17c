/** Causal tracing (paper §2, Figures 1–3): exact, incremental, resumable; plus Vega-Lite figures. */
export {
  TraceSession,
  stateHook,
  windowLayers,
  forwardFlops,
  noiseDraw,
  type StateKind,
  type RestoredState,
  type Restoration,
  type TraceInput,
  type TraceSetupOptions,
  type ScoreOptions,
  type TraceStats,
} from './engine.js';
export {
  causalTrace,
  tracePrompt,
  tableRestorations,
  autoTraceThreads,
  AUTO_THREADS_MIN_GFLOP,
  type ThreadOptions,
  defaultWindow,
  type CausalTraceOptions,
  type CausalTraceResult,
  type TracePromptOptions,
  type TracePromptResult,
} from './causalTrace.js';
export { severedTrace, severedRestorations, type SeveredTraceOptions, type SeveredTraceResult } from './severed.js';
export {
  averageIndirectEffect,
  mergeTraceResults,
  aggregateTraceRecords,
  traceFact,
  bucketRows,
  isKnownAnswer,
  BUCKETS,
  type TraceFact,
  type FactTraceRecord,
  type AverageEffects,
  type AverageEffectsOptions,
  type BucketStats,
  type CurveStats,
} from './averageEffects.js';
export { startTracePool, sharedTracePool, type TracePool } from './parallel.js';
export { loadTraceFacts } from './facts.js';
export { traceClaims, fittingWindow, excludesZero, type TraceClaim, type Estimate } from './claims.js';
export { embeddingNoiseLevel, embeddingStd, resolveNoiseLevel, knownFactSubjects, clearNoiseCache, type NoiseLevelOptions } from './noise.js';
export {
  traceHeatmapSpec,
  tracePanelsSpec,
  aieLineSpec,
  aieHeatmapSpec,
  severedSpec,
  tokenLabels,
  KIND_SCHEME,
  KIND_COLOR,
} from './figures.js';
