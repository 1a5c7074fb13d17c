/**
 * Worker thread of parallel causal tracing (parallel.ts): receives the model's weights once, then scores the
 * restorations it is sent with its own trace session of the prompt (the clean and corrupted runs recomputed here
 * from the same ids, noise level, seed and answer, kept while the same prompt comes back). It also computes batches
 * of layerStats' key moments, so the statistics use the same worker (one WASM worker per process).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend, type BackendChoice } from '../backend.js';
import { modelFromWeights } from '../loadModel.js';
import type { GPT2Model } from '../model/model.js';
import { keyMoments } from '../rome/layerStats.js';
import { TraceSession } from './engine.js';
import type { TraceWorkerData, TraceWorkerReply, TraceWorkerRequest, TraceWorkerSetup } from './parallel.js';

const data = workerData as TraceWorkerData;
const port = parentPort;
if (!port) throw new Error('traceWorker: must run as a worker thread');
// Lets tests check that a failing worker gives an error instead of a hang.
const failMode = process.env.ROME_TS_TRACE_WORKER_FAIL;
if (failMode === 'start') throw new Error('ROME_TS_TRACE_WORKER_FAIL=start');

await initBackend({ prefer: data.backend as BackendChoice, quiet: true });
let model: GPT2Model | null = null;
let session: { key: string; s: TraceSession } | null = null;

async function sessionFor(setup: TraceWorkerSetup): Promise<TraceSession> {
  const key = JSON.stringify(setup);
  if (session?.key === key) return session.s;
  session?.s.dispose();
  session = null;
  const s = await TraceSession.create(model!, { ids: setup.ids, subjectRange: setup.subjectRange }, {
    samples: setup.samples,
    noise: setup.noise,
    seed: setup.seed,
    answer: setup.answer,
  });
  session = { key, s };
  return s;
}

// Requests are handled one at a time, in order.
let queue: Promise<void> = Promise.resolve();
port.on('message', (msg: TraceWorkerRequest) => {
  queue = queue.then(() => handle(msg));
});

async function handle(msg: TraceWorkerRequest): Promise<void> {
  if (msg.type === 'close') {
    session?.s.dispose();
    model?.dispose();
    port!.close();
    return;
  }
  if (msg.type === 'weights') {
    try {
      session?.s.dispose();
      session = null;
      model?.dispose();
      model = null;
      const weights = new Map(msg.names.map((n, i) => [n, { shape: msg.shapes[i], data: msg.data[i] }]));
      model = await modelFromWeights(msg.name, msg.config, weights);
      port!.postMessage({ type: 'ready' } satisfies TraceWorkerReply);
    } catch (e) {
      port!.postMessage({ type: 'error', id: -1, message: e instanceof Error ? (e.stack ?? e.message) : String(e) } satisfies TraceWorkerReply);
    }
    return;
  }
  if (failMode === 'score') process.exit(3);
  if (msg.type === 'keyMoments') {
    try {
      if (!model) throw new Error('no weights received');
      const sum = keyMoments(model, msg.layer, msg.rows);
      port!.postMessage({ type: 'keyMoments', id: msg.id, sum } satisfies TraceWorkerReply, [sum.buffer as ArrayBuffer]);
    } catch (e) {
      port!.postMessage({ type: 'error', id: msg.id, message: e instanceof Error ? (e.stack ?? e.message) : String(e) } satisfies TraceWorkerReply);
    }
    return;
  }
  try {
    if (!model) throw new Error('no weights received');
    const s = await sessionFor(msg.setup);
    const before = { ...s.stats };
    const scores = await s.score(msg.restorations, { method: 'incremental', maxRows: msg.maxRows });
    const stats = { forwardCalls: s.stats.forwardCalls - before.forwardCalls, rows: s.stats.rows - before.rows, flops: s.stats.flops - before.flops };
    port!.postMessage({ type: 'scores', id: msg.id, scores, stats } satisfies TraceWorkerReply);
  } catch (e) {
    port!.postMessage({ type: 'error', id: msg.id, message: e instanceof Error ? (e.stack ?? e.message) : String(e) } satisfies TraceWorkerReply);
  }
}
