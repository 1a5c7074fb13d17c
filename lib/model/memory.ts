/**
 * Will a model fit the backend? The WASM backend keeps every tensor in one WebAssembly memory, which cannot grow
 * past 4 GiB (32-bit addresses), so a model whose float32 weights do not fit must be refused at load, with the
 * arithmetic, instead of failing with an allocation error halfway through.
 */
import type { GPT2Config } from '../io/config.js';
import { paramBytes } from './family.js';

/** Largest WebAssembly memory (4 GiB). */
export const WASM_HEAP_BYTES = 4 * 1024 ** 3;

/** Working room kept free beside the weights: activations of a trace or edit batch, and the kernels' scratch. */
export const WASM_WORKING_BYTES = 512 * 1024 ** 2;

/** Bytes a loaded model holds on the backend and how they add up (all float32). */
export interface LoadEstimate {
  /** Scalar parameters. */
  params: number;
  /** params × 4. */
  weightBytes: number;
  /** The transposed copy of the output head [d, V] that the unembedding keeps. */
  headCacheBytes: number;
  /** weightBytes + headCacheBytes + WASM_WORKING_BYTES. */
  totalBytes: number;
}

/** The load-time memory of a config (weights, the cached head, working room). */
export function estimateLoad(cfg: GPT2Config): LoadEstimate {
  const weightBytes = paramBytes(cfg);
  const headCacheBytes = 4 * cfg.vocabSize * cfg.nEmbd;
  return {
    params: weightBytes / 4,
    weightBytes,
    headCacheBytes,
    totalBytes: weightBytes + headCacheBytes + WASM_WORKING_BYTES,
  };
}

function gb(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

/** Throws, naming the sizes and the alternative, when `backend` is 'wasm' and the model cannot fit its heap. */
export function checkFitsBackend(cfg: GPT2Config, backend: string, source: string): void {
  if (backend !== 'wasm') return;
  const e = estimateLoad(cfg);
  if (e.totalBytes <= WASM_HEAP_BYTES) return;
  throw new Error(
    `${source}: this ${cfg.modelType} model needs about ${gb(e.totalBytes)} on the backend ` +
      `(${(e.params / 1e6).toFixed(0)}M parameters × 4 bytes = ${gb(e.weightBytes)} of float32 weights, ` +
      `+ ${gb(e.headCacheBytes)} for the cached output head, + ${gb(WASM_WORKING_BYTES)} working room), ` +
      `but the WASM backend's heap cannot exceed ${gb(WASM_HEAP_BYTES)}. Install @tensorflow/tfjs-node ` +
      `(or @tensorflow/tfjs-node-gpu with CUDA); rome-ts picks it up automatically (or set ROME_TS_BACKEND=tensorflow).`,
  );
}
