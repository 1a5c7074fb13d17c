// Child-process scenario for test/trace-parallel-failure.test.ts: injects trace-worker failures and prints what the
// caller saw, one JSON line per check. Run in its own process because Node has crashed intermittently (SIGSEGV /
// SIGTRAP in a worker's environment teardown) after a worker failed; the parent test checks the reports.
import * as tf from '@tensorflow/tfjs-core';
import { randomTextModel } from './traceModels.js';
import { startTracePool, tracePrompt } from '../../lib/trace/index.js';

const PROMPT = 'The Eiffel Tower is located in the city of';
const SUBJECT = 'Eiffel Tower';
const report = (check: string, value: unknown) => process.stdout.write(`${JSON.stringify({ check, value })}\n`);
const message = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
    return 'no error';
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
};

const m = await randomTextModel({ nLayer: 4, nEmbd: 32, scale: 60, seed: 1 });
// A failure at start runs only when asked: starting a second worker in the same process after one has failed is
// where Node crashed (free(): invalid pointer), so the default run checks one failure per process.
if (process.argv.includes('--start')) {
  process.env.ROME_TS_TRACE_WORKER_FAIL = 'start';
  report('start', await message(startTracePool(m, 2)));
  report('done', true);
  process.exit(0);
}
process.env.ROME_TS_TRACE_WORKER_FAIL = 'score';
const pool = await startTracePool(m, 2);
delete process.env.ROME_TS_TRACE_WORKER_FAIL;
// Warm-up on one thread: the first trace of a shape caches its causal masks.
await tracePrompt(m, { prompt: PROMPT, subject: SUBJECT, noise: 3, samples: 3, threads: 1 });
const before = tf.memory().numTensors;
report('score', await message(tracePrompt(m, { prompt: PROMPT, subject: SUBJECT, noise: 3, samples: 3, pool })));
report('tensors', tf.memory().numTensors - before);
await pool.close();
report('closed', await message(pool.score(0, { ids: [1], subjectRange: { start: 0, end: 1 }, samples: 1, noise: 1, seed: 0, answer: 0 }, [], 10)));
report('done', true);
