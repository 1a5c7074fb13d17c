/**
 * Kernel overrides for the tfjs WASM backend.
 *
 * Why: the WASM BatchMatMul kernel is 10-13x slower when a transpose flag is set than an explicit Transpose
 * followed by a plain matmul, and autograd of matMul always sets those flags; and the WASM backend has no
 * UnsortedSegmentSum kernel, which the gradient of `gather` (embedding lookup) needs. Fixing both here, once,
 * keeps every call site (forward, training, ROME's value optimisation) free of backend-specific tricks.
 */
import * as tf from '@tensorflow/tfjs-core';

type KernelArgs = Parameters<tf.KernelFunc>[0];
interface WasmBackendLike {
  disposeData(dataId: object): boolean;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  readSync(dataId: object): ArrayLike<number>;
}

let installed = false;
let enabled = true;

/** Whether the WASM overrides are active (they can be toggled off for baseline benchmarks). */
export function wasmOverridesEnabled(): boolean {
  return installed && enabled;
}

/** Turns the WASM overrides on or off at run time (for benchmarks that compare against the tfjs default). */
export function setWasmOverrides(on: boolean): void {
  enabled = on;
}

function transposeLast2(
  transposeKernel: tf.KernelConfig,
  x: tf.TensorInfo,
  backend: KernelArgs['backend'],
): tf.TensorInfo {
  const rank = x.shape.length;
  const perm = [...Array(rank).keys()];
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return transposeKernel.kernelFunc({ inputs: { x }, backend, attrs: { perm } }) as tf.TensorInfo;
}

/** Registers the WASM kernel overrides; call after the wasm backend is active. Idempotent. */
export function installWasmOverrides(): void {
  if (installed) return;
  const original = tf.getKernel('BatchMatMul', 'wasm');
  const transposeKernel = tf.getKernel('Transpose', 'wasm');
  if (!original || !transposeKernel) return;
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({
    kernelName: 'BatchMatMul',
    backendName: 'wasm',
    kernelFunc: (args: KernelArgs) => {
      const attrs = args.attrs as { transposeA: boolean; transposeB: boolean };
      if (!enabled || (!attrs.transposeA && !attrs.transposeB)) return original.kernelFunc(args);
      const backend = args.backend as unknown as WasmBackendLike;
      const inputs = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      const a = attrs.transposeA ? transposeLast2(transposeKernel, inputs.a, args.backend) : inputs.a;
      const b = attrs.transposeB ? transposeLast2(transposeKernel, inputs.b, args.backend) : inputs.b;
      const out = original.kernelFunc({
        inputs: { a, b },
        backend: args.backend,
        attrs: { ...attrs, transposeA: false, transposeB: false },
      });
      if (a !== inputs.a) backend.disposeData(a.dataId);
      if (b !== inputs.b) backend.disposeData(b.dataId);
      return out;
    },
  });

  if (!tf.getKernel('UnsortedSegmentSum', 'wasm')) {
    tf.registerKernel({
      kernelName: 'UnsortedSegmentSum',
      backendName: 'wasm',
      kernelFunc: (args: KernelArgs) => {
        // Plain JS scatter-add: O(size of x), only used by gather's gradient (embedding rows).
        const backend = args.backend as unknown as WasmBackendLike;
        const { x, segmentIds } = args.inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
        const { numSegments } = args.attrs as { numSegments: number };
        if (x.dtype !== 'float32') throw new Error(`UnsortedSegmentSum (wasm override): float32 only, got ${x.dtype}`);
        const xs = backend.readSync(x.dataId);
        const ids = backend.readSync(segmentIds.dataId);
        const inner = x.shape.slice(segmentIds.shape.length).reduce((p, q) => p * q, 1);
        const outShape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
        const out = backend.makeOutput(outShape, 'float32');
        const o = backend.typedArrayFromHeap(out) as Float32Array;
        o.fill(0);
        for (let i = 0; i < ids.length; i++) {
          const s = ids[i];
          if (s < 0 || s >= numSegments) continue;
          const ob = s * inner;
          const ib = i * inner;
          for (let j = 0; j < inner; j++) o[ob + j] += xs[ib + j];
        }
        return out;
      },
    });
  }
  installed = true;
}
