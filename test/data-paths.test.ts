import test from 'ava';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  cacheDir,
  dataDir,
  dataDirCandidates,
  DataFileNotFoundError,
  downloadTarget,
  knownDownloadUrl,
  repoRoot,
  requireDataFile,
  type FetchLike,
} from '../lib/data/paths.js';
import { loadKnownFacts } from '../lib/data/knownFacts.js';

// These tests change ROME_TS_DATA / ROME_TS_CACHE, so they run serially and restore the environment.
function withEnv<T>(env: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved: Record<string, string | undefined> = {};
  for (const k of Object.keys(env)) {
    saved[k] = process.env[k];
    if (env[k] === undefined) delete process.env[k];
    else process.env[k] = env[k];
  }
  return fn().finally(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
}

const made: string[] = [];
const tmp = (tag: string): string => {
  const d = mkdtempSync(path.join(os.tmpdir(), `rome-ts-${tag}-`));
  made.push(d);
  return d;
};
test.after.always(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** A local server: GET /dsets/<name> serves `files[name]`, counting hits; anything else is 404. */
async function serve(files: Record<string, Buffer>): Promise<{ base: string; hits: Map<string, number>; close: () => Promise<void> }> {
  const hits = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const name = (req.url ?? '').replace(/^\/dsets\//, '');
    hits.set(name, (hits.get(name) ?? 0) + 1);
    const body = files[name];
    if (!body) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    base: `http://127.0.0.1:${port}/dsets/`,
    hits,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

test.serial('repoRoot finds this checkout and the lookup order is env, ../shared/data, cwd, cache', async (t) => {
  const root = repoRoot();
  t.truthy(root);
  t.true(existsSync(path.join(root as string, 'package.json')));
  t.is(JSON.parse(readFileSync(path.join(root as string, 'package.json'), 'utf8')).name, 'rome-ts');
  const envDir = tmp('env');
  const cache = tmp('cache');
  await withEnv({ ROME_TS_DATA: envDir, ROME_TS_CACHE: cache }, async () => {
    const c = dataDirCandidates();
    t.is(c[0], path.resolve(envDir));
    t.is(c[1], path.resolve(root as string, '..', 'shared', 'data'));
    t.is(c[c.length - 1], path.join(cache, 'data'));
    t.is(cacheDir(), path.resolve(cache));
    t.is(dataDir(), path.resolve(envDir), 'an existing ROME_TS_DATA wins');
  });
  await withEnv({ ROME_TS_DATA: path.join(envDir, 'does-not-exist'), ROME_TS_CACHE: cache }, async () => {
    t.not(dataDir(), path.join(envDir, 'does-not-exist'), 'a missing ROME_TS_DATA is skipped');
  });
  await withEnv({ ROME_TS_CACHE: undefined }, async () => {
    t.is(cacheDir(), path.join(os.homedir(), '.cache', 'rome-ts'));
  });
});

test.serial('a missing file without a download URL throws an error naming the places and ROME_TS_DATA', async (t) => {
  const empty = tmp('empty');
  const cache = tmp('cache');
  await withEnv({ ROME_TS_DATA: undefined, ROME_TS_CACHE: cache }, async () => {
    const err = await t.throwsAsync(() => requireDataFile('counterfact/nope.json', { dataDir: empty, downloadUrl: null }), {
      instanceOf: DataFileNotFoundError,
    });
    t.truthy(err);
    const e = err as DataFileNotFoundError;
    t.deepEqual(e.searched, [path.join(empty, 'counterfact/nope.json'), path.join(cache, 'data', 'counterfact/nope.json')]);
    for (const p of e.searched) t.true(e.message.includes(p));
    t.true(e.message.includes('ROME_TS_DATA'));
    t.true(e.message.includes('counterfact/nope.json'));
    // The standard lookup lists every candidate directory.
    const err2 = await t.throwsAsync(() => requireDataFile('no/such/file.bin', { downloadUrl: null }));
    for (const d of dataDirCandidates()) t.true((err2 as Error).message.includes(path.join(d, 'no/such/file.bin')));
  });
});

test.serial('a loader pointed at an empty data dir with downloads off gives the clear error', async (t) => {
  const empty = tmp('empty');
  await withEnv({ ROME_TS_CACHE: tmp('cache') }, async () => {
    const err = await t.throwsAsync(() => loadKnownFacts({ dataDir: empty, download: false }), { instanceOf: DataFileNotFoundError });
    t.regex((err as Error).message, /known_1000\.json/);
    t.regex((err as Error).message, /ROME_TS_DATA/);
  });
});

test.serial('known ROME files map to rome.baulab.info URLs', (t) => {
  t.is(knownDownloadUrl('known_1000.json'), 'https://rome.baulab.info/data/dsets/known_1000.json');
  t.is(knownDownloadUrl('sub/dir/idf.npy'), 'https://rome.baulab.info/data/dsets/idf.npy');
  t.is(knownDownloadUrl('counterfact/easyedit-counterfact-edit.json'), null);
});

test.serial('download on demand: fetched once from a local server into the cache, atomically', async (t) => {
  const payload = Buffer.from(JSON.stringify([{ hello: 'world' }]));
  const srv = await serve({ 'thing.json': payload });
  const cache = tmp('cache');
  const empty = tmp('empty');
  try {
    await withEnv({ ROME_TS_CACHE: cache }, async () => {
      const logs: string[] = [];
      const opts = { dataDir: empty, downloadUrl: srv.base + 'thing.json', log: (m: string) => logs.push(m) };
      // Two concurrent requests share one download.
      const [a, b] = await Promise.all([requireDataFile('dl/thing.json', opts), requireDataFile('dl/thing.json', opts)]);
      t.is(a, downloadTarget('dl/thing.json'));
      t.is(a, path.join(cache, 'data', 'dl', 'thing.json'));
      t.is(b, a);
      t.deepEqual(readFileSync(a), payload);
      t.is(srv.hits.get('thing.json'), 1);
      // Present now: no second request.
      t.is(await requireDataFile('dl/thing.json', opts), a);
      t.is(srv.hits.get('thing.json'), 1);
      t.deepEqual(readdirSync(path.dirname(a)), ['thing.json'], 'no temp files left behind');
      const sha = createHash('sha256').update(payload).digest('hex');
      t.true(logs.some((l) => l.includes(sha.slice(0, 16))));
    });
  } finally {
    await srv.close();
  }
});

test.serial('download failure (404) throws the clear error and leaves nothing in the cache', async (t) => {
  const srv = await serve({});
  const cache = tmp('cache');
  try {
    await withEnv({ ROME_TS_CACHE: cache }, async () => {
      const err = await t.throwsAsync(
        () => requireDataFile('missing.json', { dataDir: tmp('empty'), downloadUrl: srv.base + 'missing.json', log: () => undefined }),
        { instanceOf: DataFileNotFoundError },
      );
      t.regex((err as Error).message, /HTTP 404/);
      t.regex((err as Error).message, /ROME_TS_DATA/);
      t.false(existsSync(path.join(cache, 'data', 'missing.json')));
      const left = existsSync(path.join(cache, 'data')) ? readdirSync(path.join(cache, 'data')) : [];
      t.deepEqual(left, []);
    });
  } finally {
    await srv.close();
  }
});

test.serial('loaders download a ROME file via an injected fetch when it is absent', async (t) => {
  const record = {
    known_id: 0,
    subject: 'Vinson Massif',
    attribute: 'Antarctica',
    template: '{} is located in the continent',
    prediction: ' of Antarctica.',
    prompt: 'Vinson Massif is located in the continent of',
    relation_id: 'P30',
  };
  const urls: string[] = [];
  const fakeFetch: FetchLike = async (url) => {
    urls.push(url);
    const buf = Buffer.from(JSON.stringify([record]));
    return { ok: true, status: 200, arrayBuffer: async () => buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer };
  };
  const cache = tmp('cache');
  await withEnv({ ROME_TS_CACHE: cache }, async () => {
    const facts = await loadKnownFacts({ dataDir: tmp('empty'), fetch: fakeFetch });
    t.deepEqual(urls, ['https://rome.baulab.info/data/dsets/known_1000.json']);
    t.is(facts.length, 1);
    t.is(facts[0]?.relationId, 'P30');
    t.true(existsSync(path.join(cache, 'data', 'known_1000.json')));
  });
});

test.serial('a file in ROME_TS_DATA is found before the shared data dir', async (t) => {
  const dir = tmp('data');
  mkdirSync(path.join(dir, 'x'), { recursive: true });
  writeFileSync(path.join(dir, 'x', 'y.txt'), 'hi');
  await withEnv({ ROME_TS_DATA: dir }, async () => {
    t.is(await requireDataFile('x/y.txt', { downloadUrl: null }), path.join(dir, 'x', 'y.txt'));
  });
});
