/**
 * The rome-ts Jupyter kernel: `node dist/kernel/launcher.js <connection_file>` (the kernel spec's argv, written by
 * `rome-ts kernel install`). Puts the notebook globals on globalThis, then starts tslab's TypeScript kernel.
 *
 * Globals (typed for cells from any working directory: see typedGlobals.ts):
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
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as romets from '../lib/index.js';
import { initBackend } from '../lib/backend.js';
import { display, plot } from '../lib/display/index.js';
import { installExecuteGate, type TslabJupyterInternals } from './executeGate.js';
import { KernelModel } from './modelGlobal.js';
import { resolveModelSource } from './modelSource.js';
import { packageRoot } from './packageRoot.js';
import { executorConsole, installProtocol, type TslabProtocolInternals } from './protocol.js';
import { globalsTypesFiles, installVirtualModules, type TsSys } from './typedGlobals.js';

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
const tslabJupyter = require('tslab/dist/jupyter.js') as TslabJupyterInternals & TslabProtocolInternals;
// The TypeScript instance tslab type-checks cells with (its own fork, resolved from tslab's location).
const tslabRequire = createRequire(require.resolve('tslab/package.json'));
const tslabTs = tslabRequire('@tslab/typescript-for-tslab') as { sys: TsSys & { getCurrentDirectory(): string }; version: string };
const root = packageRoot();
const version = (require(join(root, 'package.json')) as { version: string }).version;

const g = globalThis as unknown as { [key: string]: unknown };
g.romets = romets;
g.tf = tf;
g.plot = plot;
g.display = display;

const source = resolveModelSource(root);
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
    const text = kernelModel.takeNotice(waited);
    if (!text) return null;
    // "model loaded in 1.0s" is information (stdout); a failed load or a missing tokenizer is a warning (stderr).
    return { text, stream: kernelModel.state.status === 'ready' && !/\bnote:/.test(text) ? 'stdout' : 'stderr' };
  },
});
if (!gated) {
  process.stderr.write('rome-ts: tslab internals differ from 1.0.22; cells are not held for the model: run `await modelReady` first\n');
}

// Typed globals and `import ... from 'rome-ts'` for cells, whatever the working directory (see typedGlobals.ts).
installVirtualModules(tslabTs.sys, { cwd: tslabTs.sys.getCurrentDirectory(), packageRoot: root, globalsFiles: globalsTypesFiles(root) });

const tslabVersion = (tslabRequire('./package.json') as { version: string }).version;
const protocolOk = installProtocol(tslabJupyter, {
  implementation: 'rome-ts',
  implementationVersion: version,
  languageVersion: tslabTs.version,
  banner: `rome-ts ${version}: TypeScript ${tslabTs.version} through tslab ${tslabVersion}; globals model, tokenizer, romets, plot, display, tf`,
});
if (!protocolOk) process.stderr.write('rome-ts: tslab internals differ from 1.0.22; kernel messages are tslab\'s own\n');

// tslab's executor keeps the console.log / console.error it sees at start for last values and errors: give it
// the protocol's pair for that moment only, so cells' own console calls stay plain streams.
const plainConsole = { log: console.log, error: console.error };
const forExecutor = executorConsole(plainConsole);
console.log = forExecutor.log;
console.error = forExecutor.error;
try {
  tslabMain.startKernel({ configPath: connectionFile, enableFindLocal: false });
} finally {
  console.log = plainConsole.log;
  console.error = plainConsole.error;
}

// `import ... from 'rome-ts'` in a cell gets this kernel's own module (the `romets` global), not whatever the
// working directory's node_modules holds (usually nothing). tslab passes __tslab__.require to every cell.
const tslabGlobal = (globalThis as unknown as { __tslab__?: { require: NodeJS.Require } }).__tslab__;
if (tslabGlobal) {
  const cellRequire = tslabGlobal.require;
  tslabGlobal.require = new Proxy(cellRequire, {
    apply(target, thisArg, args: unknown[]) {
      if (args.length === 1 && args[0] === 'rome-ts') return romets;
      return Reflect.apply(target, thisArg, args);
    },
  });
}
// Start the load after startKernel has set up the sockets, so the kernel answers kernel_info straight away.
setTimeout(() => kernelModel.start(), 0);
