/**
 * The rome-ts Jupyter kernel: `node dist/kernel/launcher.js <connection_file>` (the kernel spec's argv, written by
 * `rome-ts kernel install`). Puts the notebook globals on globalThis, then starts tslab's TypeScript kernel.
 *
 * Globals (typed for cells by the `@types/rome-ts-kernel-globals` package that `kernel install` writes):
 * - `model`: the default GPT2Model (see modelSource.ts for which). It loads in the background; the first cell
 *   waits for it (see modelGlobal.ts and executeGate.ts). `modelReady` is the load's promise.
 * - `tokenizer`: `model.tokenizer` (null when the model has none).
 * - `romets`: the whole library (`import * as romets from 'rome-ts'`); `tf`: @tensorflow/tfjs-core with the
 *   backend initialised; `plot`: Vega-Lite spec builders; `display`: multi-MIME notebook outputs.
 *
 * Interrupts: Jupyter sends SIGINT. tslab then rejects the running cell's promise ("Interrupted asynchronously")
 * and the kernel stays usable, but work already started keeps running in the background until it next yields
 * and finishes; a synchronous loop in the cell body itself is stopped (breakOnSigint).
 */
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import * as romets from '../lib/index.js';
import { initBackend } from '../lib/backend.js';
import { display, plot } from '../lib/display/index.js';
import { installErrorReplies, installExecuteGate, type TslabJupyterInternals } from './executeGate.js';
import { KernelModel } from './modelGlobal.js';
import { resolveModelSource } from './modelSource.js';
import { packageRoot } from './packageRoot.js';

interface TslabMain {
  startKernel(opts: { configPath?: string; enableFindLocal?: boolean; jsKernel?: boolean; globalVersion?: string }): void;
}

const connectionFile = process.argv[2];
if (!connectionFile) {
  process.stderr.write('usage: node dist/kernel/launcher.js <connection_file>\n(started by Jupyter through the rome-ts kernel spec)\n');
  process.exit(2);
}

// Resolved from rome-ts's own node_modules: the same tslab instance lib/display talks to.
const require = createRequire(import.meta.url);
const tslabMain = require('tslab/dist/main.js') as TslabMain;
const tslabJupyter = require('tslab/dist/jupyter.js') as TslabJupyterInternals;

const g = globalThis as unknown as { [key: string]: unknown };
g.romets = romets;
g.tf = tf;
g.plot = plot;
g.display = display;

const source = resolveModelSource(packageRoot());
const backendReady = initBackend();
backendReady.catch(() => {});
const kernelModel = new KernelModel(source, async (src) => {
  await backendReady;
  return romets.loadModel(src);
});
const settledAll = Promise.allSettled([backendReady, kernelModel.ready]).then(() => undefined);
let backendSettled = false;
void settledAll.then(() => (backendSettled = true));

const gated = installExecuteGate(tslabJupyter, {
  settled: () => backendSettled && kernelModel.settled,
  whenSettled: () => settledAll,
  waitingMessage: () => `rome-ts: waiting for the model to load from ${source.source ?? '(none)'}...\n`,
  notice: (waited) => {
    const notes: string[] = [];
    const modelNote = kernelModel.takeNotice(waited);
    if (modelNote) notes.push(modelNote);
    return notes.length ? notes.join('') : null;
  },
});
if (!gated) {
  process.stderr.write('rome-ts: tslab internals differ from 1.0.22; cells are not held for the model: run `await modelReady` first\n');
}

installErrorReplies(tslabJupyter);

tslabMain.startKernel({ configPath: connectionFile, enableFindLocal: false });
// Start the load after startKernel has set up the sockets, so the kernel answers kernel_info straight away.
setTimeout(() => kernelModel.start(), 0);
