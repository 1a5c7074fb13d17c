/**
 * The rome-ts Jupyter kernel end to end: `kernel install` / `uninstall` into a temporary Jupyter data dir, then
 * real kernels driven over ZeroMQ by test/kernel_driver.py (jupyter_client, through /usr/bin/python3).
 * Needs `npm run build` (the kernel spec runs dist/kernel/launcher.js) and Debian's jupyter-client package.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runKernelCommand } from '../lib/cli/kernelCommand.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PYTHON = process.env.PYTHON ?? '/usr/bin/python3';
const FIXTURE = join(ROOT, 'test', 'fixtures', 'tiny-gpt2');
const jupyterData = mkdtempSync(join(tmpdir(), 'rome-ts-jupyter-'));
// Everything below (our Python subprocesses, the kernels) sees only this kernels dir as the per-user one.
process.env.JUPYTER_DATA_DIR = jupyterData;

interface CellResult {
  status: 'ok' | 'error' | 'abort' | 'timeout';
  stdout: string;
  stderr: string;
  /** text/plain of the execute_result (the last expression's value), or null. */
  result: string | null;
  /** `ename: evalue` of each `error` IOPub message. */
  errors: string[];
  input_count: number | null;
  reply_count: number | null;
  displays: { mimes: string[]; display_id: string | null; update: boolean; text: string | null; vegalite_is_object: boolean }[];
  seconds: number;
  ename: string | null;
  evalue: string | null;
}
interface Cell {
  code: string;
  interrupt_after?: number;
  timeout?: number;
}

function python(args: string[], input?: string, opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(PYTHON, args, { input, encoding: 'utf8', cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, timeout: 300_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

function kernelSpecs(): Record<string, { resource_dir: string; spec: { argv: string[]; display_name: string; language: string } }> {
  const r = python(['-m', 'jupyter', 'kernelspec', 'list', '--json']);
  if (r.status !== 0) throw new Error(`jupyter kernelspec list failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { kernelspecs: ReturnType<typeof kernelSpecs> }).kernelspecs;
}

function runCells(cells: Cell[], env: NodeJS.ProcessEnv, cwd = join(ROOT, 'notebooks')): { results: CellResult[]; alive_at_end: boolean } {
  // Default cwd notebooks/: where Jupyter starts kernels for the project's notebooks. The kernel inherits it.
  const r = python([join(ROOT, 'test', 'kernel_driver.py'), 'rome-ts'], JSON.stringify(cells), { cwd, env });
  if (r.status !== 0) throw new Error(`kernel driver failed (exit ${r.status}):\n${r.stderr}`);
  return JSON.parse(r.stdout) as { results: CellResult[]; alive_at_end: boolean };
}

/** Whether node_modules holds globals' typings that an older `kernel install` wrote for THIS checkout. */
function legacyTypingsOfThisCheckout(): boolean {
  const dir = join(ROOT, 'node_modules', '@types', 'rome-ts-kernel-globals');
  const dts = join(dir, 'index.d.ts');
  if (!existsSync(dts)) return false;
  const target = /import\('([^']+)'\)/.exec(readFileSync(dts, 'utf8'))?.[1];
  return target !== undefined && realpathSync(resolve(realpathSync(dir), target)) === realpathSync(join(ROOT, 'dist', 'lib', 'index.js'));
}

test.before(() => {
  const launcher = join(ROOT, 'dist', 'kernel', 'launcher.js');
  if (!existsSync(launcher)) throw new Error(`${launcher} is missing: run \`npm run build\` before the kernel tests`);
  if (python(['-c', 'import jupyter_client, jupyter_core']).status !== 0) {
    throw new Error(`${PYTHON} cannot import jupyter_client: apt-get install -y jupyter-client jupyter-nbconvert python3-nbclient`);
  }
});

test.after.always(() => {
  rmSync(jupyterData, { recursive: true, force: true });
});

test.serial('kernel install registers "rome-ts" and is idempotent', async (t) => {
  t.is(await runKernelCommand(['install', '--user', '--python', PYTHON]), 0);
  t.is(await runKernelCommand(['install', '--python', PYTHON]), 0);
  const specs = kernelSpecs();
  t.truthy(specs['rome-ts'], 'jupyter kernelspec list does not show rome-ts');
  const { resource_dir, spec } = specs['rome-ts']!;
  t.true(resource_dir.startsWith(jupyterData));
  t.is(spec.display_name, 'TypeScript (rome-ts)');
  t.is(spec.language, 'typescript');
  t.deepEqual(spec.argv.slice(1), [join(ROOT, 'dist', 'kernel', 'launcher.js'), '{connection_file}']);
  // The globals are typed in memory by the kernel: install writes nothing into node_modules (a copy there may
  // belong to another checkout sharing node_modules, written by an older install; it must not be this one's).
  t.false(legacyTypingsOfThisCheckout());
  t.is(await runKernelCommand(['install', '--bogus']), 2);
});

test.serial('a failing cell reports a clear error and the kernel stays usable', (t) => {
  const nLayer = (JSON.parse(readFileSync(join(FIXTURE, 'config.json'), 'utf8')) as { n_layer: number }).n_layer;
  const cells: Cell[] = [
    { code: 'model.config.nLayer + 1' }, // typed global, no import
    { code: "throw new Error('boom')" },
    { code: "await Promise.reject(new Error('rejected promise'))" },
    { code: 'tf.matMul(tf.ones([2, 3]), tf.ones([4, 5]))' },
    { code: "model.run([[1, 2, 3]], { patch: [{ hook: 'blocks.0', value: tf.ones([7]) }] })" },
    { code: "let n: number = 'text'" },
    { code: 'await model.generate("The Eiffel Tower is located in")' },
    { code: '(await model.generateIds([1, 2, 3], { maxNewTokens: 2, stopAtEos: false })).length' },
    { code: "import * as r from 'rome-ts';\nr.GPT2Model === romets.GPT2Model && model instanceof r.GPT2Model" },
    { code: 'await display.heatmap([[1, 2], [3, 4]], { title: "hm" })' },
    { code: "const p = display.progress({ label: 'work', total: 3, minIntervalMs: 0 });\nfor (let i = 1; i <= 3; i++) p.update(i);\np.done()" },
    { code: 'await new Promise((r) => setTimeout(r, 120000))', interrupt_after: 1.5, timeout: 60 },
    { code: 'let spins = 0;\nwhile (true) spins++;', interrupt_after: 1.5, timeout: 60 },
    { code: '1 + 1' },
    { code: 'model.config.nLayerz' }, // the globals are really typed, not `any`
    { code: 'tf.ones([2, 3]).shape.length + (tokenizer === null ? 10 : 20)' },
  ];
  const { results: r, alive_at_end } = runCells(cells, { ROME_TS_MODEL: FIXTURE });
  t.is(r.length, cells.length);
  const show = (i: number): string => `cell ${i} (${cells[i]!.code}): ${JSON.stringify(r[i])}`;
  t.is(r[0]!.status, 'ok', show(0));
  t.is(r[0]!.result, String(nLayer + 1), 'the last expression must come back as an execute_result');
  t.is(r[0]!.stdout, '');
  t.regex(r[0]!.stderr, /has no tokenizer/, 'the first cell should note that the fixture model has no tokenizer');
  t.is(r[1]!.status, 'error', show(1));
  t.deepEqual(r[1]!.errors, ['Error: boom'], 'a failure is one error message (not stderr text)');
  t.is(r[1]!.stderr, '');
  t.is(r[1]!.evalue, 'boom', 'the execute_reply must carry the error (nbconvert reports it from there)');
  t.is(r[2]!.status, 'error', show(2));
  t.regex(r[2]!.errors.join('\n'), /rejected promise/);
  t.is(r[3]!.status, 'error', show(3));
  t.regex(r[3]!.errors.join('\n'), /inner shapes \(3\) and \(4\)/);
  t.is(r[4]!.status, 'error', show(4));
  t.is(r[5]!.status, 'error', show(5));
  t.regex(r[5]!.errors.join('\n'), /Type 'string' is not assignable to type 'number'/);
  t.is(r[5]!.ename, 'TypeScriptError');
  t.is(r[6]!.status, 'error', show(6));
  t.regex(r[6]!.errors.join('\n'), /no tokenizer/);
  t.is(r[7]!.status, 'ok', show(7));
  t.is(r[7]!.result, '2');
  t.is(r[8]!.status, 'ok', show(8));
  t.is(r[8]!.result, 'true', 'a cell importing rome-ts must get the same module as the romets global');
  t.is(r[9]!.status, 'ok', show(9));
  t.is(r[9]!.displays.length, 1);
  t.deepEqual(r[9]!.displays[0]!.mimes, ['application/vnd.vegalite.v5+json', 'image/svg+xml', 'text/plain']);
  t.true(r[9]!.displays[0]!.vegalite_is_object);
  t.is(r[10]!.status, 'ok', show(10));
  const prog = r[10]!.displays;
  t.true(prog.length >= 2);
  t.false(prog[0]!.update);
  t.true(prog.slice(1).every((d) => d.update && d.display_id === prog[0]!.display_id));
  t.regex(prog.at(-1)!.text ?? '', /100% 3\/3/);
  for (const i of [11, 12]) {
    t.is(r[i]!.status, 'error', show(i));
    t.true(r[i]!.seconds < 30, `interrupt did not stop cell ${i}: ${show(i)}`);
  }
  t.regex(r[11]!.errors.join('\n'), /Interrupted/);
  t.is(r[13]!.status, 'ok', show(13));
  t.is(r[13]!.result, '2');
  t.is(r[14]!.status, 'error', show(14));
  t.regex(r[14]!.errors.join('\n'), /Property 'nLayerz' does not exist/);
  t.is(r[15]!.status, 'ok', show(15));
  t.is(r[15]!.result, '12');
  // In [n] / Out[n]: every request (failed ones included) gets the next count, in execute_input and the reply.
  t.deepEqual(r.map((c) => c.input_count), r.map((_, i) => i + 1));
  t.deepEqual(r.map((c) => c.reply_count), r.map((_, i) => i + 1));
  t.true(alive_at_end);
});

test.serial('a kernel started in an empty directory outside the checkout has the typed globals and rome-ts', (t) => {
  const empty = mkdtempSync(join(tmpdir(), 'rome-ts-workshop-'));
  try {
    const cells: Cell[] = [
      // model, display, plot and romets in one cell, type-checked (a wrong type would fail the cell).
      { code: "const n: number = model.config.nLayer;\nawait display.vegaLite(plot.line([1, 2, n]));\ntypeof romets.loadModel + ' ' + n" },
      { code: "import { GPT2Model, loadModel } from 'rome-ts';\nconst same: boolean = model instanceof GPT2Model && loadModel === romets.loadModel;\nsame" },
      { code: "import type { CausalTraceResult } from 'rome-ts';\nconst k: CausalTraceResult['kind'] = 'mlp';\nk" },
      { code: "const wrong: string = model.config.nLayer" }, // still typed, not `any`
    ];
    const { results: r, alive_at_end } = runCells(cells, { ROME_TS_MODEL: FIXTURE }, empty);
    const show = (i: number): string => `cell ${i}: ${JSON.stringify(r[i])}`;
    const nLayer = (JSON.parse(readFileSync(join(FIXTURE, 'config.json'), 'utf8')) as { n_layer: number }).n_layer;
    t.is(r[0]!.status, 'ok', show(0));
    t.is(r[0]!.result, `'function ${nLayer}'`, show(0));
    t.is(r[0]!.displays.length, 1);
    t.is(r[1]!.status, 'ok', show(1));
    t.is(r[1]!.result, 'true', show(1));
    t.is(r[2]!.status, 'ok', show(2));
    t.is(r[2]!.result, "'mlp'");
    t.is(r[3]!.status, 'error', show(3));
    t.regex(r[3]!.evalue ?? '', /Type 'number' is not assignable to type 'string'/);
    t.deepEqual(readdirSync(empty), [], 'the kernel must not write into the working directory');
    t.true(alive_at_end);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});

test.serial('a model that fails to load is reported in the first cell that uses it; the kernel keeps working', (t) => {
  const notAModel = mkdtempSync(join(tmpdir(), 'rome-ts-not-a-model-'));
  try {
    const { results: r, alive_at_end } = runCells(
      [{ code: '1 + 1' }, { code: 'model.config.nLayer' }, { code: 'await model.generate("x")' }, { code: '2 + 2' }],
      { ROME_TS_MODEL: notAModel },
    );
    t.is(r[0]!.status, 'ok');
    t.is(r[0]!.result, '2');
    t.true(r[0]!.stderr.includes(`loading "${notAModel}" (from ROME_TS_MODEL) failed`), r[0]!.stderr);
    for (const i of [1, 2]) {
      t.is(r[i]!.status, 'error');
      t.true(r[i]!.evalue?.includes('`model` is not available'), JSON.stringify(r[i]));
      t.regex(r[i]!.errors.join('\n'), /romets\.loadModel/);
    }
    t.is(r[3]!.result, '4');
    t.true(alive_at_end);
  } finally {
    rmSync(notAModel, { recursive: true, force: true });
  }
});

test.serial('kernel uninstall removes the spec (and install restores it)', async (t) => {
  // --user: only the (temporary) per-user dir; a rome-ts spec installed elsewhere on this machine is left alone.
  const ours = (): boolean => kernelSpecs()['rome-ts']?.resource_dir.startsWith(jupyterData) === true;
  t.true(ours());
  t.is(await runKernelCommand(['uninstall', '--user', '--python', PYTHON]), 0);
  t.false(ours());
  t.false(legacyTypingsOfThisCheckout());
  t.is(await runKernelCommand(['uninstall', '--user', '--python', PYTHON]), 0, 'uninstalling twice is harmless');
  // Leave the shared node_modules as the rest of the suite (and scripts/run-notebooks.sh) expects it.
  t.is(await runKernelCommand(['install', '--python', PYTHON]), 0);
  t.true(ours());
});
