/**
 * Issue 15: `npm run demo` in a fresh clone with no ../shared data directory and no network. The clone is simulated by
 * copying the sources and the bundled model into a temporary directory (so ../shared does not exist beside it), with
 * an empty cache and a fetch that throws.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

test('demo: runs offline in a fresh clone without ../shared (noise level from the bundled model directory), output readable', (t) => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'rome-ts-clone-'));
  const clone = path.join(root, 'rome-ts');
  mkdirSync(clone);
  for (const f of ['lib', 'scripts', 'hparams', 'package.json', 'tsconfig.json']) cpSync(path.join(repo, f), path.join(clone, f), { recursive: true });
  cpSync(path.join(repo, 'models', 'rome-fact-gpt2'), path.join(clone, 'models', 'rome-fact-gpt2'), { recursive: true });
  symlinkSync(path.join(repo, 'node_modules'), path.join(clone, 'node_modules'));
  const noNet = path.join(root, 'no-network.mjs');
  writeFileSync(noNet, "globalThis.fetch = async (u) => { throw new Error('network disabled in this test: ' + u); };\n");
  const env: NodeJS.ProcessEnv = { ...process.env, ROME_TS_CACHE: path.join(root, 'cache'), HF_ENDPOINT: 'http://127.0.0.1:9' };
  delete env.ROME_TS_DATA;
  delete env.ROME_TS_MODEL;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--import', noNet, 'scripts/demo.ts'], { cwd: clone, env, encoding: 'utf8', timeout: 600_000 });
  t.is(r.status, 0, `exit ${r.status}\n${r.stderr.slice(-2000)}`);
  t.regex(r.stdout, /== causal trace \(MLP/);
  t.regex(r.stdout, /p\* = 0\.\d{3}, corrupted p_low = 0\.\d{3}/);
  t.notRegex(r.stderr, /downloading/);
  const longest = Math.max(...`${r.stdout}\n${r.stderr}`.split('\n').map((l) => l.length));
  t.true(longest < 300, `longest output line has ${longest} characters`);
});

test('demo: an error prints one short readable line, not the WASM module source', (t) => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/demo.ts', path.join(os.tmpdir(), 'no-such-model-dir-rome-ts')], {
    cwd: repo,
    env: { ...process.env, ROME_TS_DEBUG: '' },
    encoding: 'utf8',
    timeout: 600_000,
  });
  t.is(r.status, 1);
  t.regex(r.stderr, /^demo: error: .*no-such-model-dir-rome-ts/m);
  t.true(r.stderr.length < 2000, `stderr is ${r.stderr.length} characters`);
});
