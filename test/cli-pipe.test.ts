/**
 * Issue 15: machine-readable output must arrive whole through a real pipe (it was cut at 64 KiB when the process
 * exited before stdout drained), and a reader that closes the pipe early must not produce an EPIPE crash.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gpt2VocabModelDir } from './helpers/cliModels.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sh = (cmd: string) => spawnSync('bash', ['-c', `set -o pipefail; ${cmd}`], { cwd: repo, encoding: 'utf8', timeout: 600_000, env: { ...process.env, ROME_TS_QUIET: '1' } });

test('pipe: inspect --json with a full GPT-2 vocabulary arrives whole through a pipe (~1 MB, all 50257 logits)', async (t) => {
  const dir = await gpt2VocabModelDir();
  const reader = `node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const j=JSON.parse(s);console.log(s.length, j.logits.length)})"`;
  const r = sh(`node --import tsx lib/cli/main.ts inspect ${dir} --prompt "Hello world" --json | ${reader}`);
  t.is(r.status, 0, r.stderr);
  const [bytes, n] = r.stdout.trim().split(' ').map(Number);
  t.is(n, 50257);
  t.true(bytes > 65536 * 4, `${bytes} bytes`);
});

test('pipe: a reader that closes early (| head -c 100) ends the command quietly with exit 0', async (t) => {
  const dir = await gpt2VocabModelDir();
  const r = sh(`node --import tsx lib/cli/main.ts inspect ${dir} --prompt "Hello world" --json | head -c 100 > /dev/null`);
  t.is(r.status, 0, r.stderr.slice(0, 500));
  t.is(r.stderr, '');
});
