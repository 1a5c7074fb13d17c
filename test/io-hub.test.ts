import test from 'ava';
import { promises as fsp } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readCheckpoint, writeCheckpoint } from '../lib/io/checkpoint.js';
import {
  HubError,
  defaultCacheDir,
  defaultHubEndpoint,
  isHubId,
  resolveModelSource,
  type HubProgress,
} from '../lib/io/hub.js';
import { writeSafetensors } from '../lib/io/safetensors.js';
import { startFakeHub, type FakeHub } from './helpers/server.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const FIXTURE = path.join(here, 'fixtures', 'tiny-gpt2');
const TOKENIZER = JSON.stringify({ version: '1.0', model: { type: 'BPE', vocab: { a: 0 }, merges: [] } });

async function tmpDir(): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), 'rome-ts-hub-'));
}

/** A checkpoint directory written by writeCheckpoint (what the fake hub serves). */
async function makeModel(): Promise<string> {
  const ref = await readCheckpoint(FIXTURE);
  const dir = await tmpDir();
  await writeCheckpoint(dir, ref.config, ref.weights, { tokenizerJson: TOKENIZER });
  return dir;
}

const MODEL_DIR = await makeModel();
const FILES = ['config.json', 'model.safetensors', 'tokenizer.json'];

async function sameFiles(t: import('ava').ExecutionContext, a: string, b: string, files = FILES): Promise<void> {
  for (const f of files) {
    const [x, y] = await Promise.all([fsp.readFile(path.join(a, f)), fsp.readFile(path.join(b, f))]);
    t.true(x.equals(y), `${f} is byte-identical`);
  }
}

async function withHub(
  t: import('ava').ExecutionContext,
  models: Record<string, string>,
  opts: Parameters<typeof startFakeHub>[1],
): Promise<FakeHub> {
  const hub = await startFakeHub(models, opts);
  t.teardown(() => hub.close());
  return hub;
}

const quick = { retryDelayMs: 0, token: null } as const;

test('downloads a model once; the second call makes no request', async (t) => {
  const hub = await withHub(t, { 'tiny/gpt2': MODEL_DIR }, {});
  const cacheDir = await tmpDir();
  const progress: HubProgress[] = [];
  const dir = await resolveModelSource('tiny/gpt2', { ...quick, endpoint: hub.endpoint, cacheDir, onProgress: (p) => progress.push(p) });
  t.is(dir, path.join(cacheDir, 'models', 'tiny--gpt2'));
  await sameFiles(t, MODEL_DIR, dir);
  const ckpt = await readCheckpoint(dir);
  t.is(ckpt.tokenizerPath, path.join(dir, 'tokenizer.json'));
  t.true(hub.requests.every((r) => r.range === undefined && r.authorization === undefined));
  t.deepEqual(hub.requests.map((r) => r.path), [
    '/tiny/gpt2/resolve/main/config.json',
    '/tiny/gpt2/resolve/main/tokenizer.json',
    '/tiny/gpt2/resolve/main/model.safetensors',
  ]);
  const size = (await fsp.stat(path.join(dir, 'model.safetensors'))).size;
  const last = progress.filter((p) => p.file === 'model.safetensors').pop();
  t.deepEqual(last, { file: 'model.safetensors', bytes: size, total: size });

  const before = hub.requests.length;
  t.is(await resolveModelSource('tiny/gpt2', { ...quick, endpoint: hub.endpoint, cacheDir }), dir);
  t.is(hub.requests.length, before, 'no request when the cache is complete');
  t.false((await fsp.readdir(dir)).some((f) => f.endsWith('.part')));
});

test('a dropped connection is resumed with a Range request and gives an identical file', async (t) => {
  const hub = await withHub(t, { 'tiny/gpt2': MODEL_DIR }, { dropFirst: ['model.safetensors'] });
  const cacheDir = await tmpDir();
  const dir = await resolveModelSource('tiny/gpt2', { ...quick, endpoint: hub.endpoint, cacheDir });
  const weights = hub.requests.filter((r) => r.file === 'model.safetensors');
  t.is(weights.length, 2);
  t.is(weights[0]!.range, undefined);
  const size = (await fsp.stat(path.join(MODEL_DIR, 'model.safetensors'))).size;
  // The server sent half the file; the client resumes from however much of it reached the disk.
  const resumedAt = Number(/^bytes=(\d+)-$/.exec(weights[1]!.range ?? '')?.[1] ?? NaN);
  t.true(resumedAt > 0 && resumedAt <= Math.floor(size / 2), `resumed at ${resumedAt}`);
  await sameFiles(t, MODEL_DIR, dir);
});

test('without retries the failure is clear, the partial file stays, and the next run resumes it', async (t) => {
  const hub = await withHub(t, { 'tiny/gpt2': MODEL_DIR }, { dropFirst: ['model.safetensors'] });
  const cacheDir = await tmpDir();
  const opts = { ...quick, endpoint: hub.endpoint, cacheDir, retries: 0 };
  const err = await t.throwsAsync(resolveModelSource('tiny/gpt2', opts), { instanceOf: HubError });
  t.regex(err!.message, /could not download model\.safetensors of model tiny\/gpt2/);
  t.true(err!.message.includes(cacheDir), 'mentions the cache dir');
  t.regex(err!.message, /offline, pass a local checkpoint directory/);
  const dir = path.join(cacheDir, 'models', 'tiny--gpt2');
  const partSize = (await fsp.stat(path.join(dir, 'model.safetensors.part'))).size;
  t.true(partSize > 0);

  await resolveModelSource('tiny/gpt2', opts);
  const last = hub.requests[hub.requests.length - 1]!;
  t.is(last.file, 'model.safetensors');
  t.is(last.range, `bytes=${partSize}-`);
  // config.json and tokenizer.json were complete already and are not fetched again.
  t.is(hub.requests.filter((r) => r.file === 'config.json').length, 1);
  await sameFiles(t, MODEL_DIR, dir);
});

test('a stalled transfer times out and resumes', async (t) => {
  const hub = await withHub(t, { 'tiny/gpt2': MODEL_DIR }, { stallFirst: ['model.safetensors'] });
  const cacheDir = await tmpDir();
  // 2.5 s, not less: on a loaded machine the client may not have stored the first bytes before a shorter timer fires.
  const dir = await resolveModelSource('tiny/gpt2', { ...quick, endpoint: hub.endpoint, cacheDir, idleTimeoutMs: 2500 });
  const weights = hub.requests.filter((r) => r.file === 'model.safetensors');
  t.true(weights.length >= 2);
  t.regex(weights[1]!.range ?? '', /^bytes=\d+-$/);
  await sameFiles(t, MODEL_DIR, dir);
});

test('concurrent calls for the same model share one download', async (t) => {
  const hub = await withHub(t, { 'tiny/gpt2': MODEL_DIR }, {});
  const cacheDir = await tmpDir();
  const opts = { ...quick, endpoint: hub.endpoint, cacheDir };
  const [a, b] = await Promise.all([resolveModelSource('tiny/gpt2', opts), resolveModelSource('tiny/gpt2', opts)]);
  t.is(a, b);
  t.is(hub.requests.filter((r) => r.file === 'model.safetensors').length, 1);
  await sameFiles(t, MODEL_DIR, a);
});

test('a server that ignores Range (200) makes the download restart cleanly', async (t) => {
  const hub = await withHub(t, { 'tiny/gpt2': MODEL_DIR }, { dropFirst: ['model.safetensors'], ignoreRange: true });
  const cacheDir = await tmpDir();
  const dir = await resolveModelSource('tiny/gpt2', { ...quick, endpoint: hub.endpoint, cacheDir });
  t.truthy(hub.requests.filter((r) => r.file === 'model.safetensors')[1]!.range);
  await sameFiles(t, MODEL_DIR, dir);
});

test('a model the hub does not have gives a clear error', async (t) => {
  const hub = await withHub(t, { 'tiny/gpt2': MODEL_DIR }, {});
  const err = await t.throwsAsync(resolveModelSource('nobody/missing', { ...quick, endpoint: hub.endpoint, cacheDir: await tmpDir() }), {
    instanceOf: HubError,
  });
  t.is(err!.message, `model nobody/missing not found on the hub at ${hub.endpoint}/nobody/missing/resolve/main/config.json`);
  t.is(hub.requests.length, 1);
});

test('a wrong sha256 etag is detected and the download discarded', async (t) => {
  const hub = await withHub(t, { 'tiny/gpt2': MODEL_DIR }, { etag: 'wrong' });
  const cacheDir = await tmpDir();
  const err = await t.throwsAsync(resolveModelSource('tiny/gpt2', { ...quick, endpoint: hub.endpoint, cacheDir }), { instanceOf: HubError });
  t.regex(err!.message, /sha256 mismatch for model\.safetensors of model tiny\/gpt2: the hub says [0-9a-f]{64}, the download is [0-9a-f]{64}/);
  const left = await fsp.readdir(path.join(cacheDir, 'models', 'tiny--gpt2'));
  t.false(left.includes('model.safetensors'));
  t.false(left.includes('model.safetensors.part'));
});

test('LFS-style redirect: X-Linked-Etag is checked and the token is not sent to the other origin', async (t) => {
  const good = await withHub(t, { 'tiny/gpt2': MODEL_DIR }, { lfsRedirect: true, dropFirst: ['model.safetensors'] });
  const cacheDir = await tmpDir();
  const dir = await resolveModelSource('tiny/gpt2', { ...quick, token: 'hf_secret', endpoint: good.endpoint, cacheDir });
  await sameFiles(t, MODEL_DIR, dir);
  const hubSide = good.requests.filter((r) => r.server === 'hub');
  const cdnSide = good.requests.filter((r) => r.server === 'cdn');
  t.true(hubSide.length >= 4);
  t.true(hubSide.every((r) => r.authorization === 'Bearer hf_secret'));
  t.is(cdnSide.length, 2);
  t.true(cdnSide.every((r) => r.authorization === undefined));
  t.truthy(cdnSide[1]!.range);

  const bad = await withHub(t, { 'tiny/gpt2': MODEL_DIR }, { lfsRedirect: true, etag: 'wrong' });
  await t.throwsAsync(resolveModelSource('tiny/gpt2', { ...quick, endpoint: bad.endpoint, cacheDir: await tmpDir() }), {
    instanceOf: HubError,
    message: /sha256 mismatch/,
  });
});

test('HF_TOKEN from the environment is sent as a bearer token', async (t) => {
  const hub = await withHub(t, { 'tiny/gpt2': MODEL_DIR }, {});
  const saved = process.env['HF_TOKEN'];
  process.env['HF_TOKEN'] = 'hf_from_env';
  try {
    await resolveModelSource('tiny/gpt2', { retryDelayMs: 0, endpoint: hub.endpoint, cacheDir: await tmpDir() });
  } finally {
    if (saved === undefined) delete process.env['HF_TOKEN'];
    else process.env['HF_TOKEN'] = saved;
  }
  t.true(hub.requests.length > 0);
  t.true(hub.requests.every((r) => r.authorization === 'Bearer hf_from_env'));
});

test('sharded models on the hub download index and shards', async (t) => {
  const src = await tmpDir();
  await fsp.copyFile(path.join(MODEL_DIR, 'config.json'), path.join(src, 'config.json'));
  const ref = await readCheckpoint(MODEL_DIR);
  const names = [...ref.weights.keys()];
  const weightMap: Record<string, string> = {};
  for (const [i, shard] of ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'].entries()) {
    const part = new Map(names.filter((_, j) => j % 2 === i).map((n) => [`transformer.${n}`, ref.weights.get(n)!]));
    await writeSafetensors(path.join(src, shard), part);
    for (const n of part.keys()) weightMap[n] = shard;
  }
  await fsp.writeFile(path.join(src, 'model.safetensors.index.json'), JSON.stringify({ weight_map: weightMap }));
  const hub = await withHub(t, { 'user/sharded': src }, {});
  const cacheDir = await tmpDir();
  const dir = await resolveModelSource('user/sharded', { ...quick, endpoint: hub.endpoint, cacheDir });
  const ckpt = await readCheckpoint(dir);
  t.is(ckpt.tokenizerPath, null);
  for (const [name, tensor] of ref.weights) t.deepEqual(ckpt.weights.get(name)!.data, tensor.data);
  const before = hub.requests.length;
  await resolveModelSource('user/sharded', { ...quick, endpoint: hub.endpoint, cacheDir });
  t.is(hub.requests.length, before);
});

test('network failure names the cache dir and the offline alternative', async (t) => {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const cacheDir = await tmpDir();
  const err = await t.throwsAsync(
    resolveModelSource('gpt2', { ...quick, endpoint: `http://127.0.0.1:${port}`, cacheDir, retries: 1 }),
    { instanceOf: HubError },
  );
  t.regex(err!.message, /could not download config\.json of model gpt2 from http:\/\/127\.0\.0\.1:\d+\/gpt2\/resolve\/main\/config\.json/);
  t.true(err!.message.includes(cacheDir));
  t.regex(err!.message, /ECONNREFUSED/);
  t.regex(err!.message, /pass a local checkpoint directory/);
});

test('local directories are returned as they are; implausible sources are rejected', async (t) => {
  let called = 0;
  const fetchImpl: typeof fetch = async () => {
    called++;
    throw new Error('no network in this test');
  };
  t.is(await resolveModelSource(MODEL_DIR, { fetchImpl }), MODEL_DIR);
  await t.throwsAsync(resolveModelSource('./missing-dir', { fetchImpl }), {
    instanceOf: HubError,
    message: /"\.\/missing-dir" is neither an existing directory nor a Hugging Face model id/,
  });
  await t.throwsAsync(resolveModelSource(path.join(MODEL_DIR, 'config.json'), { fetchImpl }), {
    instanceOf: HubError,
    message: /is a file/,
  });
  t.is(called, 0);
});

test('ids, cache and endpoint defaults', (t) => {
  for (const id of ['gpt2', 'gpt2-medium', 'openai-community/gpt2', 'user/name.v2', 'EleutherAI/gpt-neo-125M']) t.true(isHubId(id), id);
  for (const id of ['./missing-dir', '/abs/path', 'a/b/c', '', '../x', 'a--b/c', 'user/', '~/models', 'x y']) t.false(isHubId(id), id);
  t.is(defaultCacheDir({ ROME_TS_CACHE: '/tmp/rc', XDG_CACHE_HOME: '/tmp/xdg' }), '/tmp/rc');
  t.is(defaultCacheDir({ XDG_CACHE_HOME: '/tmp/xdg' }), '/tmp/xdg/rome-ts');
  t.is(defaultCacheDir({}), path.join(os.homedir(), '.cache', 'rome-ts'));
  t.is(defaultHubEndpoint({ ROME_TS_HUB_ENDPOINT: 'http://a/', HF_ENDPOINT: 'http://b' }), 'http://a');
  t.is(defaultHubEndpoint({ HF_ENDPOINT: 'http://b' }), 'http://b');
  t.is(defaultHubEndpoint({}), 'https://huggingface.co');
});
