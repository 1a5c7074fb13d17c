/**
 * TensorFlow.js backend selection, in one place.
 *
 * Order: `ROME_TS_BACKEND` if set; else tfjs-node-gpu, then tfjs-node (optional accelerators the user may have
 * installed; never dependencies, since their install downloads libtensorflow); else WASM; else the pure-JS CPU
 * backend. The choice is reported once.
 */
import * as tf from '@tensorflow/tfjs-core';
// Autograd needs the gradient registry; only the union package's Node bundle registers it on the shared core.
import '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import { installWasmOverrides } from './wasmKernels.js';

export type BackendChoice = 'tensorflow' | 'wasm' | 'cpu';

let ready: Promise<BackendChoice> | null = null;
let reported = false;

async function tryImport(spec: string): Promise<boolean> {
  const require = createRequire(import.meta.url);
  try {
    require.resolve(spec);
  } catch {
    return false;
  }
  try {
    await import(spec);
    return true;
  } catch (e) {
    process.emitWarning(`rome-ts: ${spec} is installed but failed to load: ${(e as Error).message}`);
    return false;
  }
}

type ProcessEvent = 'uncaughtException' | 'unhandledRejection';
const PROCESS_EVENTS: readonly ProcessEvent[] = ['uncaughtException', 'unhandledRejection'];

/**
 * Runs `fn` and then removes the process-level error listeners it added. The Emscripten module inside
 * tfjs-backend-wasm registers listeners that only re-throw; Node then prints the re-throwing source line, the whole
 * ~100 KB minified module, before any message. Without them Node's own handling (or the program's) applies.
 */
async function withoutAddedErrorListeners<T>(fn: () => Promise<T>): Promise<T> {
  type Listener = (...args: unknown[]) => void;
  const list = (e: ProcessEvent) => process.listeners(e as 'uncaughtException') as unknown as Listener[];
  const before = new Map(PROCESS_EVENTS.map((e) => [e, new Set(list(e))]));
  try {
    return await fn();
  } finally {
    for (const e of PROCESS_EVENTS) {
      for (const l of list(e)) if (!before.get(e)!.has(l)) process.removeListener(e as 'uncaughtException', l);
    }
  }
}

async function activate(name: BackendChoice): Promise<boolean> {
  if (name === 'wasm') return withoutAddedErrorListeners(() => activateOne(name));
  return activateOne(name);
}

async function activateOne(name: BackendChoice): Promise<boolean> {
  if (name === 'tensorflow') {
    const ok = (await tryImport('@tensorflow/tfjs-node-gpu')) || (await tryImport('@tensorflow/tfjs-node'));
    if (!ok || !tf.findBackendFactory('tensorflow')) return false;
  } else if (name === 'wasm') {
    if (!(await tryImport('@tensorflow/tfjs-backend-wasm'))) return false;
  } else {
    if (!(await tryImport('@tensorflow/tfjs-backend-cpu'))) return false;
  }
  try {
    if (!(await tf.setBackend(name))) return false;
    await tf.ready();
  } catch {
    return false;
  }
  if (name === 'wasm') installWasmOverrides();
  return true;
}

/** Picks and activates the backend (once per process); returns its name. */
export function initBackend(opts: { prefer?: BackendChoice; quiet?: boolean } = {}): Promise<BackendChoice> {
  if (ready) return ready;
  ready = (async () => {
    const env = (opts.prefer ?? process.env.ROME_TS_BACKEND) as string | undefined;
    const order: BackendChoice[] = ['tensorflow', 'wasm', 'cpu'];
    if (env) {
      const wanted = env === 'node' || env === 'tfjs-node' ? 'tensorflow' : env;
      if (!order.includes(wanted as BackendChoice)) {
        throw new Error(`ROME_TS_BACKEND="${env}" is not one of: tensorflow (tfjs-node[-gpu]), wasm, cpu`);
      }
      if (!(await activate(wanted as BackendChoice))) {
        throw new Error(`rome-ts: backend "${env}" was requested (ROME_TS_BACKEND) but could not be loaded`);
      }
      report(wanted as BackendChoice, opts.quiet);
      return wanted as BackendChoice;
    }
    for (const name of order) {
      if (await activate(name)) {
        report(name, opts.quiet);
        return name;
      }
    }
    throw new Error('rome-ts: no TensorFlow.js backend could be loaded (tried tfjs-node-gpu, tfjs-node, wasm, cpu)');
  })();
  ready.catch(() => {
    ready = null;
  });
  return ready;
}

function report(name: BackendChoice, quiet?: boolean): void {
  if (reported || quiet || process.env.ROME_TS_QUIET) return;
  reported = true;
  process.stderr.write(`rome-ts: TensorFlow.js backend "${name}"\n`);
}
