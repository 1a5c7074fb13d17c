/**
 * Causal tracing on several cores: WASM is single-threaded, so a trace's restorations are split between the calling
 * thread and worker threads (traceWorker.ts), each holding its own copy of the model's weights — sent once when the
 * pool starts, not per call — and its own copy of the prompt's clean and corrupted runs (recomputed there from the
 * same ids, noise level and seed, so the cached states are the same numbers). Restorations are assigned in groups of
 * the same first token and kind (the incremental engine shares rows within such a group) to balance estimated work.
 *
 * A worker that fails (an exception, an exit, a crash) rejects every pending request with an error naming it; a pool
 * never keeps the process alive while idle.
 */
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import type { GPT2Config } from '../io/config.js';
import type { GPT2Model } from '../model/model.js';
import type { Restoration, TraceStats } from './engine.js';

/** What a trace worker needs to rebuild one prompt's trace session. */
export interface TraceWorkerSetup {
  ids: number[];
  subjectRange: { start: number; end: number };
  samples: number;
  noise: number;
  seed: number;
  answer: number;
}

/** Data a trace worker starts with. */
export interface TraceWorkerData {
  backend: string;
}

/** Messages to a trace worker. */
export type TraceWorkerRequest =
  | { type: 'weights'; name: string; config: GPT2Config; names: string[]; shapes: number[][]; data: Float32Array[] }
  | { type: 'score'; id: number; setup: TraceWorkerSetup; restorations: Restoration[]; maxRows: number }
  | { type: 'keyMoments'; id: number; layer: number; rows: number[][] }
  | { type: 'close' };

/** Messages from a trace worker. */
export type TraceWorkerReply =
  | { type: 'ready' }
  | { type: 'scores'; id: number; scores: number[]; stats: TraceStats }
  | { type: 'keyMoments'; id: number; sum: Float32Array }
  | { type: 'error'; id: number; message: string };

/** Worker threads holding a model's weights, scoring restorations of any prompt of that model. */
export interface TracePool {
  /** Threads including the caller's (workers + 1). */
  readonly threads: number;
  /** The model whose weights the workers hold. */
  readonly model: GPT2Model;
  /** Sends `model`'s weights to the workers unless they already hold these very weights (unchanged since sent). */
  load(model: GPT2Model): Promise<void>;
  /** Whether the workers hold `model`'s current weights. */
  holds(model: GPT2Model): boolean;
  /** Scores `restorations` on worker `worker` (0-based); resolves with their scores and the work done. */
  score(worker: number, setup: TraceWorkerSetup, restorations: readonly Restoration[], maxRows: number): Promise<{ scores: number[]; stats: TraceStats }>;
  /** Σ k kᵀ [n·n] (float32) of the MLP keys of `layer` over the real tokens of `rows` (layerStats' keyMoments), on worker `worker`. */
  keyMoments(worker: number, layer: number, rows: number[][]): Promise<Float32Array>;
  /** Stops the workers; safe to call twice. */
  close(): Promise<void>;
}

function spawnTraceWorker(data: TraceWorkerData): Worker {
  // From dist/ the worker is plain .js; under tsx (tests, benchmarks) it is .ts and needs tsx's loader registered in the
  // worker first (a worker's execArgv does not take --import).
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./traceWorker.js', import.meta.url), { workerData: data });
  const api = import.meta.resolve('tsx/esm/api');
  const target = new URL('./traceWorker.ts', import.meta.url).href;
  const boot = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(target)}); });`;
  return new Worker(boot, { eval: true, workerData: data });
}

/**
 * Starts `threads − 1` trace workers (threads ≥ 2) with copies of `model`'s current weights; see the module comment.
 * Prefer sharedTracePool: Node has crashed (heap corruption) when one process started several WASM workers.
 */
export async function startTracePool(model: GPT2Model, threads: number): Promise<TracePool> {
  if (!Number.isInteger(threads) || threads < 2) throw new Error(`startTracePool: threads must be an integer ≥ 2, got ${threads}`);
  const workers: Worker[] = [];
  const pending = new Map<number, { resolve: (r: TraceWorkerReply) => void; reject: (e: Error) => void; worker: number }>();
  const failed: (Error | null)[] = [];
  const exited: boolean[] = [];
  let closed = false;
  let nextId = 0;
  const refresh = (i: number) => {
    // Referenced only while a request is pending: an idle pool must not keep the process alive.
    const busy = readyWaiters[i] != null || [...pending.values()].some((p) => p.worker === i);
    if (busy) workers[i]?.ref();
    else workers[i]?.unref();
  };
  const fail = (i: number, e: Error) => {
    failed[i] ??= e;
    const waiter = readyWaiters[i];
    readyWaiters[i] = null;
    waiter?.reject(e);
    for (const [id, p] of pending) {
      if (p.worker !== i) continue;
      pending.delete(id);
      p.reject(e);
    }
  };
  // What each worker was last sent: the model and its variables' data ids (an assign replaces a variable's data id,
  // so an edit or a training step since then shows as a changed id).
  let held: { model: GPT2Model; ids: object[] } = { model, ids: [] };
  const weightIds = (m: GPT2Model) => m.params.names().map((n) => m.getParam(n).dataId);
  const sendWeights = (i: number, m: GPT2Model): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const w = workers[i];
      readyWaiters[i] = { resolve, reject };
      const names = m.params.names();
      // Each worker gets its own copy of the weights, transferred, so that copy is the only one made.
      const data = names.map((n) => (m.getParam(n).dataSync() as Float32Array).slice());
      const req: TraceWorkerRequest = { type: 'weights', name: m.name, config: m.config, names, shapes: names.map((n) => m.getParam(n).shape), data };
      w.ref();
      w.postMessage(req, data.map((a) => a.buffer as ArrayBuffer));
    });
  const readyWaiters: ({ resolve: () => void; reject: (e: Error) => void } | null)[] = [];
  try {
    for (let i = 0; i < threads - 1; i++) {
      const w = spawnTraceWorker({ backend: tf.getBackend() });
      workers.push(w);
      failed.push(null);
      readyWaiters.push(null);
      w.on('message', (r: TraceWorkerReply) => {
        if (r.type === 'ready' || (r.type === 'error' && r.id === -1)) {
          const waiter = readyWaiters[i];
          readyWaiters[i] = null;
          refresh(i);
          if (r.type === 'ready') waiter?.resolve();
          else waiter?.reject(new Error(`trace worker ${i} could not load the weights: ${r.message}`));
          return;
        }
        const p = pending.get(r.id);
        if (!p) return;
        pending.delete(r.id);
        refresh(i);
        if (r.type === 'error') p.reject(new Error(`trace worker ${i}: ${r.message}`));
        else p.resolve(r);
      });
      w.on('error', (e) => fail(i, new Error(`trace worker ${i} failed: ${e instanceof Error ? e.message : String(e)}`)));
      w.on('exit', (code) => {
        exited[i] = true;
        fail(i, new Error(closed ? 'trace pool was closed' : `trace worker ${i} exited with code ${code}`));
      });
    }
    await Promise.all(workers.map((_, i) => sendWeights(i, model)));
    held = { model, ids: weightIds(model) };
  } catch (e) {
    closed = true;
    await Promise.all(workers.map((w) => w.terminate()));
    throw e;
  }
  const holds = (m: GPT2Model): boolean => {
    if (m !== held.model) return false;
    const ids = weightIds(m);
    return ids.length === held.ids.length && ids.every((id, k) => id === held.ids[k]);
  };
  const load = async (m: GPT2Model): Promise<void> => {
    if (closed) throw new Error('trace pool was closed');
    if (holds(m)) return;
    const f = failed.find((x) => x);
    if (f) throw f;
    await Promise.all(workers.map((_, i) => sendWeights(i, m)));
    held = { model: m, ids: weightIds(m) };
  };

  // Sends a request to one worker; resolves with its reply (an error reply or a failed worker rejects).
  const request = (worker: number, make: (id: number) => TraceWorkerRequest): Promise<TraceWorkerReply> => {
    if (closed) return Promise.reject(new Error('trace pool was closed'));
    if (!holds(held.model)) return Promise.reject(new Error('trace pool: the model\'s weights changed since they were sent; call load(model) first'));
    const w = workers[worker];
    if (!w) return Promise.reject(new Error(`trace pool has no worker ${worker}`));
    const f = failed[worker];
    if (f) return Promise.reject(f);
    const id = nextId++;
    const p = new Promise<TraceWorkerReply>((resolve, reject) => pending.set(id, { resolve, reject, worker }));
    refresh(worker);
    w.postMessage(make(id));
    return p;
  };
  const score: TracePool['score'] = async (worker, setup, restorations, maxRows) => {
    const r = await request(worker, (id) => ({ type: 'score', id, setup, restorations: restorations.map((x) => x.map((st) => ({ ...st }))), maxRows }));
    if (r.type !== 'scores') throw new Error(`trace worker ${worker}: unexpected reply ${r.type}`);
    return { scores: r.scores, stats: r.stats };
  };
  const keyMoments: TracePool['keyMoments'] = async (worker, layer, rows) => {
    const r = await request(worker, (id) => ({ type: 'keyMoments', id, layer, rows }));
    if (r.type !== 'keyMoments') throw new Error(`trace worker ${worker}: unexpected reply ${r.type}`);
    return r.sum;
  };
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await Promise.all(
      workers.map(
        (w, i) =>
          new Promise<void>((resolve) => {
            if (exited[i]) return resolve();
            // Referenced until it has exited, or the process could end (exit code 13) while close() is awaited.
            w.ref();
            w.once('exit', () => resolve());
            w.postMessage({ type: 'close' } satisfies TraceWorkerRequest);
            setTimeout(() => void w.terminate().then(() => resolve()), 5000).unref();
          }),
      ),
    );
  };
  return {
    threads,
    get model() {
      return held.model;
    },
    load,
    holds,
    score,
    keyMoments,
    close,
  };
}

let shared: Promise<TracePool> | null = null;
let sharedThreads = 0;

/**
 * The process-wide pool of `threads − 1` trace workers, started on first use and kept (idle workers do not keep the
 * process alive), with `model`'s current weights loaded. Workers are started once per process: starting and stopping
 * WASM workers repeatedly has crashed Node here (heap corruption on the third or fourth worker).
 */
export async function sharedTracePool(model: GPT2Model, threads: number): Promise<TracePool> {
  if (shared && sharedThreads !== threads) {
    const old = await shared.catch(() => null);
    shared = null;
    await old?.close();
  }
  if (!shared) {
    sharedThreads = threads;
    shared = startTracePool(model, threads);
    shared.catch(() => (shared = null));
  }
  const pool = await shared;
  try {
    await pool.load(model);
  } catch (e) {
    shared = null;
    await pool.close();
    throw e;
  }
  return pool;
}
