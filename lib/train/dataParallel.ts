/**
 * Data-parallel gradients over worker threads: each step the batch is split into equal row shares, the calling
 * thread computes the first share while each worker (gradWorker.ts, sent the current weights) computes another,
 * and the mean of the share gradients is the full batch's gradient (every share has the same number of tokens).
 * The WASM backend is single-threaded, so this is how training uses a second core. Results equal a one-thread
 * step to float rounding (tested); the share order is fixed, so runs stay deterministic.
 */
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import type { GPT2Params } from '../model/params.js';
import type { Batch } from './data.js';
import { batchLoss } from './trainLoop.js';

/** What a worker is started with. */
export interface GradWorkerData {
  config: unknown;
  backend: string;
}

/** One gradient request to a worker: the weights (in params.names() order) and its share of the batch. */
export interface GradRequest {
  type: 'step';
  id: number;
  weights: Float32Array[];
  batch: Batch;
}

/** A worker's answer: the share's mean loss and gradients (params.names() order), or an error. */
export type GradReply =
  | { type: 'grads'; id: number; loss: number; grads: Float32Array[] }
  | { type: 'error'; id: number; message: string };

/** A gradient function over the live parameters; call close() when done. */
export interface ParallelGrads {
  /** Mean loss and gradients by parameter name (the caller disposes them) of the whole batch. */
  step(batch: Batch): Promise<{ loss: number; grads: Map<string, tf.Tensor> }>;
  readonly threads: number;
  close(): Promise<void>;
}

/** Rows [from, to) of a batch. */
export function batchRows(b: Batch, from: number, to: number): Batch {
  const T = b.seqLen;
  const rows: Batch = { inputs: b.inputs.slice(from * T, to * T), targets: b.targets.slice(from * T, to * T), batch: to - from, seqLen: T };
  if (b.weights) rows.weights = b.weights.slice(from * T, to * T);
  if (b.knockout) {
    rows.knockout = { ...b.knockout, cutFrom: b.knockout.cutFrom.slice(from * T, to * T), cutTo: b.knockout.cutTo.slice(from * T, to * T) };
    if (b.knockout.readTarget) rows.knockout.readTarget = b.knockout.readTarget.slice(from * T, to * T);
    if (b.knockout.extractFrom) rows.knockout.extractFrom = b.knockout.extractFrom.slice(from * T, to * T);
    if (b.knockout.innerFrom) rows.knockout.innerFrom = b.knockout.innerFrom.slice(from * T, to * T);
  }
  if (b.dropout) rows.dropout = { rate: b.dropout.rate, rowSeeds: b.dropout.rowSeeds.slice(from, to) };
  return rows;
}

function spawnWorker(data: GradWorkerData): Worker {
  // From dist/ the worker is plain .js; under tsx (tests, scripts) it is .ts and needs tsx's loader registered in the
  // worker first (a worker's execArgv does not take --import).
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./gradWorker.js', import.meta.url), { workerData: data });
  const api = import.meta.resolve('tsx/esm/api');
  const target = new URL('./gradWorker.ts', import.meta.url).href;
  const boot = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(target)}); });`;
  return new Worker(boot, { eval: true, workerData: data });
}

/** Starts `threads − 1` workers (threads ≥ 2) holding copies of `params`' shapes; see the module comment. */
export async function startParallelGrads(params: GPT2Params, threads: number): Promise<ParallelGrads> {
  if (!Number.isInteger(threads) || threads < 2) throw new Error(`startParallelGrads: threads must be an integer ≥ 2, got ${threads}`);
  const names = params.names();
  const byVarName = new Map(names.map((n) => [params.get(n).name, n]));
  const vars = params.variables();
  const workers: Worker[] = [];
  const pending = new Map<number, { resolve: (r: GradReply) => void; reject: (e: Error) => void }>();
  let nextId = 0;
  let failed: Error | null = null;
  const fail = (e: Error): void => {
    failed ??= e;
    for (const p of pending.values()) p.reject(e);
    pending.clear();
  };
  try {
    for (let i = 1; i < threads; i++) {
      const data: GradWorkerData = { config: params.config, backend: tf.getBackend() };
      const w = spawnWorker(data);
      await new Promise<void>((resolve, reject) => {
        const onMsg = (m: { type: string }) => {
          if (m.type === 'ready') {
            w.off('message', onMsg);
            resolve();
          }
        };
        w.on('message', onMsg);
        w.once('error', reject);
        w.once('exit', (code) => reject(new Error(`gradient worker exited with code ${code} before it was ready`)));
      });
      w.removeAllListeners('error');
      w.removeAllListeners('exit');
      w.on('message', (r: GradReply) => {
        const p = pending.get(r.id);
        if (!p) return;
        pending.delete(r.id);
        if (r.type === 'error') p.reject(new Error(`gradient worker: ${r.message}`));
        else p.resolve(r);
      });
      w.on('error', (e) => fail(e instanceof Error ? e : new Error(String(e))));
      w.on('exit', (code) => {
        if (code !== 0) fail(new Error(`gradient worker exited with code ${code}`));
      });
      workers.push(w);
    }
  } catch (e) {
    await Promise.all(workers.map((w) => w.terminate()));
    throw e;
  }

  const step = async (batch: Batch): Promise<{ loss: number; grads: Map<string, tf.Tensor> }> => {
    if (failed) throw failed;
    if (batch.batch % threads !== 0) throw new Error(`data-parallel training: batch ${batch.batch} is not a multiple of ${threads} threads`);
    const share = batch.batch / threads;
    // Each worker gets its own copy of the weights (transferred, so the copy is the only one made).
    const replies = workers.map((w, i) => {
      const weights = names.map((n) => (params.get(n).dataSync() as Float32Array).slice());
      const id = nextId++;
      const req: GradRequest = { type: 'step', id, weights, batch: batchRows(batch, (i + 1) * share, (i + 2) * share) };
      const p = new Promise<GradReply>((resolve, reject) => pending.set(id, { resolve, reject }));
      w.postMessage(req, weights.map((a) => a.buffer as ArrayBuffer));
      return p;
    });
    const { value, grads } = tf.variableGrads(() => batchLoss(params, batchRows(batch, 0, share)), vars);
    let loss = value.dataSync()[0] as number;
    value.dispose();
    let others: GradReply[];
    try {
      others = await Promise.all(replies);
    } catch (e) {
      tf.dispose(Object.values(grads));
      throw e;
    }
    const out = new Map<string, tf.Tensor>();
    for (const [k, g] of Object.entries(grads)) {
      const name = byVarName.get(k) ?? k;
      const i = names.indexOf(name);
      out.set(
        name,
        tf.tidy(() => {
          let sum: tf.Tensor = g;
          for (const r of others) sum = tf.add(sum, tf.tensor((r as { grads: Float32Array[] }).grads[i] as Float32Array, g.shape, 'float32'));
          return tf.div(sum, threads);
        }),
      );
      g.dispose();
    }
    for (const r of others) loss += (r as { loss: number }).loss;
    return { loss: loss / threads, grads: out };
  };

  const close = async (): Promise<void> => {
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            w.once('exit', () => resolve());
            w.postMessage({ type: 'close' });
            setTimeout(() => void w.terminate().then(() => resolve()), 5000).unref();
          }),
      ),
    );
  };
  return { step, threads, close };
}
