import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { KernelModel, unavailableModel } from '../kernel/modelGlobal.js';
import { resolveModelSource } from '../kernel/modelSource.js';
import { errorFields, executorConsole, formatResult } from '../kernel/protocol.js';

function fakeRoot(withBundled: boolean, withFixture: boolean): string {
  const root = mkdtempSync(join(tmpdir(), 'rome-ts-root-'));
  if (withBundled) {
    mkdirSync(join(root, 'models', 'rome-fact-gpt2'), { recursive: true });
    writeFileSync(join(root, 'models', 'rome-fact-gpt2', 'config.json'), '{}');
  }
  if (withFixture) {
    mkdirSync(join(root, 'test', 'fixtures', 'tiny-gpt2'), { recursive: true });
    writeFileSync(join(root, 'test', 'fixtures', 'tiny-gpt2', 'config.json'), '{}');
  }
  return root;
}

test('model source: ROME_TS_MODEL, then the bundled model, then the test fixture', (t) => {
  const root = fakeRoot(true, true);
  try {
    t.deepEqual(resolveModelSource(root, { ROME_TS_MODEL: 'gpt2' }, root), { source: 'gpt2', origin: 'ROME_TS_MODEL' });
    t.deepEqual(resolveModelSource(root, { ROME_TS_MODEL: 'models' }, root), { source: join(root, 'models'), origin: 'ROME_TS_MODEL' });
    t.deepEqual(resolveModelSource(root, { ROME_TS_MODEL: 'None' }, root), { source: null, origin: 'disabled' });
    t.deepEqual(resolveModelSource(root, {}, root), { source: join(root, 'models', 'rome-fact-gpt2'), origin: 'bundled' });
    rmSync(join(root, 'models'), { recursive: true });
    t.deepEqual(resolveModelSource(root, {}, root), { source: join(root, 'test', 'fixtures', 'tiny-gpt2'), origin: 'test fixture' });
    rmSync(join(root, 'test'), { recursive: true });
    t.is(resolveModelSource(root, {}, root).source, null);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('an unavailable model throws its reason on use, but can be printed and awaited', async (t) => {
  const m = unavailableModel<{ config: unknown; generate(): Promise<string> }>('no model: because');
  t.throws(() => m.config, { message: 'no model: because' });
  t.throws(() => m.generate(), { message: 'no model: because' });
  t.is(await Promise.resolve(m), m);
  t.regex(inspect(m), /no model: because/);
});

test('KernelModel publishes globals on success and a clear stand-in on failure', async (t) => {
  const ok: { [k: string]: unknown } = {};
  const model = { name: 'm', tokenizer: null, config: { nLayer: 2 } };
  const km = new KernelModel({ source: '/models/m', origin: 'bundled' }, async () => model, ok);
  t.false(km.settled);
  t.throws(() => (ok.model as { config: unknown }).config, { message: /still loading/ });
  km.start();
  t.is(await km.ready, model);
  t.true(km.settled);
  t.is(ok.model, model);
  t.is(ok.tokenizer, null);
  t.regex(km.takeNotice(0) ?? '', /has no tokenizer/);
  t.is(km.takeNotice(0), null, 'the notice is shown once');

  const bad: { [k: string]: unknown } = {};
  const failing = new KernelModel({ source: '/nope', origin: 'ROME_TS_MODEL' }, async () => {
    throw new Error('config.json not found');
  }, bad);
  failing.start();
  await t.throwsAsync(failing.ready, { message: /loading "\/nope" \(from ROME_TS_MODEL\) failed: config\.json not found/ });
  t.throws(() => (bad.model as { config: unknown }).config, { message: /`model` is not available[\s\S]*romets\.loadModel/ });
  t.regex(failing.takeNotice(0) ?? '', /failed: config\.json not found/);
});

test('failed cells: ename/evalue/traceback from what the executor reported', (t) => {
  const thrown = errorFields([{ kind: 'thrown', value: new RangeError('boom') }])!;
  t.is(thrown.ename, 'RangeError');
  t.is(thrown.evalue, 'boom');
  t.true(thrown.traceback.length > 1 && thrown.traceback[0]!.startsWith('RangeError: boom'));
  const diag = errorFields([
    { kind: 'diagnostic', text: "1:5 - Type 'string' is not assignable to type 'number'." },
    { kind: 'diagnostic', text: "2:1 - Cannot find name 'x'." },
  ])!;
  t.deepEqual(diag, {
    ename: 'TypeScriptError',
    evalue: "Type 'string' is not assignable to type 'number'.",
    traceback: ["1:5 - Type 'string' is not assignable to type 'number'.", "2:1 - Cannot find name 'x'."],
  });
  t.is(errorFields([{ kind: 'thrown', value: 'text' }])!.evalue, "thrown value: 'text'");
  t.is(errorFields([]), null);
});

test('the executor console falls back to plain output outside a cell; last values are shown as the REPL does', (t) => {
  const seen: unknown[][] = [];
  const c = executorConsole({ log: (...a) => seen.push(['log', ...a]), error: (...a) => seen.push(['error', ...a]) });
  c.log(42);
  c.error('%s%d:%d - %s', '', 1, 2, 'msg');
  t.deepEqual(seen, [['log', 42], ['error', '%s%d:%d - %s', '', 1, 2, 'msg']]);
  t.is(formatResult('a'), "'a'");
  t.is(formatResult(6 * 7), '42');
  t.is(formatResult([1, 2]), '[ 1, 2 ]');
});
