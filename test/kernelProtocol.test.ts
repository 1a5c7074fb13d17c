/**
 * Jupyter's own kernel conformance suite (jupyter_kernel_test, from Debian's python3-jupyter-kernel-test) against
 * the rome-ts kernel, started in an empty temporary directory outside the checkout (as a workshop's folder would
 * be). The samples and the reasons for the skipped tests are in test/kernel_conformance.py.
 * Needs `npm run build` and Debian's jupyter-client + python3-jupyter-kernel-test.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runKernelCommand } from '../lib/cli/kernelCommand.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PYTHON = process.env.PYTHON ?? '/usr/bin/python3';
const FIXTURE = join(ROOT, 'test', 'fixtures', 'tiny-gpt2');
const jupyterData = mkdtempSync(join(tmpdir(), 'rome-ts-jupyter-conformance-'));
process.env.JUPYTER_DATA_DIR = jupyterData;

/** The suite's tests that may be skipped, each for a stated reason (see kernel_conformance.py). */
const ALLOWED_SKIPS = new Set(['test_pager', 'test_clear_output', 'test_history']);

test.after.always(() => {
  rmSync(jupyterData, { recursive: true, force: true });
});

test('the kernel passes jupyter_kernel_test when started outside the checkout', async (t) => {
  if (!existsSync(join(ROOT, 'dist', 'kernel', 'launcher.js'))) throw new Error('run `npm run build` before the kernel tests');
  if (spawnSync(PYTHON, ['-c', 'import jupyter_kernel_test'], { stdio: 'ignore' }).status !== 0) {
    throw new Error(`${PYTHON} cannot import jupyter_kernel_test: apt-get install -y python3-jupyter-kernel-test`);
  }
  t.is(await runKernelCommand(['install', '--user', '--python', PYTHON]), 0);
  const empty = mkdtempSync(join(tmpdir(), 'rome-ts-conformance-cwd-'));
  const reportFile = join(jupyterData, 'conformance.json');
  try {
    const r = spawnSync(PYTHON, [join(ROOT, 'test', 'kernel_conformance.py'), '-v'], {
      cwd: empty,
      encoding: 'utf8',
      env: { ...process.env, ROME_TS_MODEL: FIXTURE, PYDEVD_DISABLE_FILE_VALIDATION: '1', ROME_TS_CONFORMANCE_REPORT: reportFile },
      timeout: 600_000,
    });
    const log = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    t.is(r.status, 0, `jupyter_kernel_test failed:\n${log}`);
    // Outcome per test, from the suite's JSON report (test name -> ok | skipped | fail | error).
    const outcomes = new Map(Object.entries(JSON.parse(readFileSync(reportFile, 'utf8')) as Record<string, string>));
    t.true(outcomes.size >= 12, `expected the suite's 12 tests, saw ${outcomes.size}:\n${log}`);
    for (const [name, outcome] of outcomes) {
      if (ALLOWED_SKIPS.has(name)) continue;
      t.is(outcome, 'ok', `${name}: ${outcome}`);
    }
    for (const required of ['test_kernel_info', 'test_execute_result', 'test_completion', 'test_is_complete', 'test_inspect', 'test_error', 'test_display_data', 'test_execute_stdout', 'test_execute_stderr']) {
      t.is(outcomes.get(required), 'ok', `${required} must run and pass`);
    }
    t.regex(log, /^OK \(skipped=\d+\)$/m);
    t.deepEqual(readdirSync(empty), [], 'the kernel must not write into its working directory');
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});
