/**
 * Worker thread of data-parallel training (dataParallel.ts): holds a copy of the parameters and, per message, loads
 * the weights it is sent, computes the gradient of the mean loss of its share of the batch, and sends it back.
 * WASM is single-threaded, so a second thread on a second core is the only way to use it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, type BackendChoice } from '../backend.js';
import type { GPT2Config } from '../io/config.js';
import { GPT2Params, paramShapes } from '../model/params.js';
import { batchLoss } from './trainLoop.js';
import type { GradRequest, GradReply, GradWorkerData } from './dataParallel.js';

const data = workerData as GradWorkerData;
const port = parentPort;
if (!port) throw new Error('gradWorker: must run as a worker thread');

await initBackend({ prefer: data.backend as BackendChoice, quiet: true });
const config = data.config as GPT2Config;
const zeros = new Map<string, { shape: number[]; data: Float32Array }>();
for (const [name, shape] of paramShapes(config)) zeros.set(name, { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
const params = new GPT2Params(config, zeros);
params.training = true;
const names = params.names();
const byVarName = new Map(names.map((n) => [params.get(n).name, n]));
const vars = params.variables();

port.on('message', (msg: GradRequest | { type: 'close' }) => {
  if (msg.type === 'close') {
    params.dispose();
    port.close();
    return;
  }
  try {
    msg.weights.forEach((w, i) => {
      const t = tf.tensor(w, params.get(names[i] as string).shape, 'float32');
      params.get(names[i] as string).assign(t);
      t.dispose();
    });
    const { value, grads } = tf.variableGrads(() => batchLoss(params, msg.batch), vars);
    const loss = value.dataSync()[0] as number;
    const out: Float32Array[] = new Array(names.length);
    for (const [k, g] of Object.entries(grads)) {
      const i = names.indexOf(byVarName.get(k) ?? k);
      const d = g.dataSync() as Float32Array;
      out[i] = d.byteLength === d.buffer.byteLength ? d : d.slice();
    }
    value.dispose();
    tf.dispose(Object.values(grads));
    const reply: GradReply = { type: 'grads', id: msg.id, loss, grads: out };
    port.postMessage(reply, out.map((a) => a.buffer as ArrayBuffer));
  } catch (e) {
    const reply: GradReply = { type: 'error', id: msg.id, message: e instanceof Error ? (e.stack ?? e.message) : String(e) };
    port.postMessage(reply);
  }
});
port.postMessage({ type: 'ready' });
