/** rome-ts: locate and edit factual associations in GPT models. */
export { initBackend, type BackendChoice } from './backend.js';
export { setWasmOverrides, wasmOverridesEnabled } from './wasmKernels.js';
export { hookNames, checkHookName, type HookContext, type HookFn, type HookSet } from './hooks.js';
export { forward, logitLens, unembed, layerNorm, rmsNorm, finalNorm, disposeKV, type ForwardOptions, type ForwardOutput, type KVCache } from './model/forward.js';
export { dropoutMask, applyDropout, type DropoutSpec } from './model/dropout.js';
export { GPT2Params, paramShapes, type ParamSnapshot } from './model/params.js';
export { TensorHandle, type NestedNumbers } from './model/handle.js';
export { type Patch, type PatchValue } from './model/patch.js';
export {
  GPT2Model,
  type RunInput,
  type RunOptions,
  type RunResult,
  type GenerateOptions,
  type TargetScore,
  type TopToken,
} from './model/model.js';
export { loadModel, modelFromWeights, type LoadModelOptions } from './loadModel.js';
export { Tokenizer, type Encoding, type TokenRange } from './tokenizer/tokenizer.js';
export { type GPT2Config, type ArchSpec, type ArchFamily, type Activation, parseGPT2Config, toHFConfig } from './io/config.js';
export { parseModelConfig, SUPPORTED_MODEL_TYPES } from './io/familyConfig.js';
export { embedParam, headParam, headBiasParam, finalNormParams, mlpOutParams, paramBytes } from './model/family.js';
export { estimateLoad, checkFitsBackend, WASM_HEAP_BYTES, type LoadEstimate } from './model/memory.js';
export { readCheckpoint, writeCheckpoint, type Checkpoint } from './io/checkpoint.js';
export { readSafetensors, writeSafetensors } from './io/safetensors.js';
export { CheckpointError } from './io/errors.js';
export * from './trace/index.js';
export * as rome from './rome/index.js';
export { edit as romeEdit, applyEdit } from './rome/index.js';
export * as baselines from './baselines/index.js';
export * as evaluation from './eval/index.js';
export * as data from './data/index.js';
export { display, plot } from './display/index.js';
export { createRng, type Rng } from './rng.js';
export const VERSION = '0.1.0';
