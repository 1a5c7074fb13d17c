import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { randomTextModel } from './helpers/traceModels.js';
import { startTracePool, tracePrompt } from '../lib/trace/index.js';

// A file of its own (ava runs each file in its own process): these start and kill extra WASM workers, and Node has
// crashed (heap corruption) when a process started several WASM workers next to the shared trace workers.
const PROMPT = 'The Eiffel Tower is located in the city of';
const SUBJECT = 'Eiffel Tower';

test.serial('a worker that fails to start or dies while scoring gives a clear error, not a hang', async (t) => {
  const m = await randomTextModel({ nLayer: 4, nEmbd: 32, scale: 60, seed: 1 });
  process.env.ROME_TS_TRACE_WORKER_FAIL = 'start';
  try {
    await t.throwsAsync(startTracePool(m, 2), { message: /trace worker 0/ });
  } finally {
    delete process.env.ROME_TS_TRACE_WORKER_FAIL;
  }
  process.env.ROME_TS_TRACE_WORKER_FAIL = 'score';
  let pool;
  try {
    pool = await startTracePool(m, 2);
  } finally {
    delete process.env.ROME_TS_TRACE_WORKER_FAIL;
  }
  // Warm-up on one thread: the first trace of a shape caches its causal masks.
  await tracePrompt(m, { prompt: PROMPT, subject: SUBJECT, noise: 3, samples: 3, threads: 1 });
  const before = tf.memory().numTensors;
  await t.throwsAsync(tracePrompt(m, { prompt: PROMPT, subject: SUBJECT, noise: 3, samples: 3, pool }), { message: /trace worker 0 exited with code 3/ });
  t.is(tf.memory().numTensors, before);
  await pool.close();
  await t.throwsAsync(pool.score(0, { ids: [1], subjectRange: { start: 0, end: 1 }, samples: 1, noise: 1, seed: 0, answer: 0 }, [], 10), { message: /closed|exited/ });
});
