// A stand-in for the Hugging Face hub on 127.0.0.1, serving model directories from disk, for offline tests.
import * as http from 'node:http';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';

/** One request the fake hub (or its CDN) received. */
export interface SeenRequest {
  server: 'hub' | 'cdn';
  method: string;
  /** Path without query. */
  path: string;
  /** The file name requested (last path segment). */
  file: string;
  range: string | undefined;
  authorization: string | undefined;
}

/** Behaviour switches for the fake hub. */
export interface FakeHubOptions {
  /** ETag for *.safetensors files: their sha256 (as the hub does), a wrong sha256, or none. Default 'sha256'. */
  etag?: 'sha256' | 'wrong' | 'none';
  /** File names whose first GET sends the headers and half the body, then drops the connection. */
  dropFirst?: string[];
  /** File names whose first GET sends the headers and half the body, then goes silent (connection left open). */
  stallFirst?: string[];
  /** Answer 200 with the whole file even when a Range is asked for. */
  ignoreRange?: boolean;
  /** Redirect *.safetensors to a second server (another origin), putting sha256 and size in X-Linked-* headers. */
  lfsRedirect?: boolean;
}

/** A running fake hub. */
export interface FakeHub {
  /** Base URL to pass as `endpoint`. */
  endpoint: string;
  requests: SeenRequest[];
  close(): Promise<void>;
}

function listen(server: http.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Sends `body` honouring a `bytes=N-` / `bytes=N-M` Range header; `drop` cuts the transfer halfway. */
function sendBytes(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  body: Buffer,
  headers: Record<string, string>,
  opts: { ignoreRange: boolean; drop: boolean; stall?: boolean },
): void {
  const range = req.headers.range;
  let start = 0;
  let end = body.length - 1;
  let status = 200;
  if (range !== undefined && !opts.ignoreRange) {
    const m = /^bytes=(\d+)-(\d*)$/.exec(range);
    if (m === null || Number(m[1]) >= body.length) {
      res.writeHead(416, { ...headers, 'content-range': `bytes */${body.length}` });
      res.end();
      return;
    }
    start = Number(m[1]);
    if (m[2] !== '') end = Math.min(end, Number(m[2]));
    status = 206;
    headers = { ...headers, 'content-range': `bytes ${start}-${end}/${body.length}` };
  }
  const slice = body.subarray(start, end + 1);
  res.writeHead(status, { ...headers, 'content-length': String(slice.length), 'accept-ranges': 'bytes' });
  if (opts.stall === true) {
    res.write(slice.subarray(0, Math.floor(slice.length / 2)));
    return;
  }
  if (opts.drop) {
    // A short pause lets the client take in what was sent before the connection drops.
    res.write(slice.subarray(0, Math.floor(slice.length / 2)), () => setTimeout(() => res.destroy(), 100));
    return;
  }
  res.end(slice);
}

/** Starts a fake hub serving `models` (hub id → local directory) at /<id>/resolve/<revision>/<file>. */
export async function startFakeHub(models: Record<string, string>, opts: FakeHubOptions = {}): Promise<FakeHub> {
  const requests: SeenRequest[] = [];
  const dropped = new Set<string>();
  const record = (server: 'hub' | 'cdn', req: http.IncomingMessage): SeenRequest => {
    const p = new URL(req.url ?? '/', 'http://x').pathname;
    const seen: SeenRequest = {
      server,
      method: req.method ?? 'GET',
      path: p,
      file: decodeURIComponent(p.split('/').pop() ?? ''),
      range: req.headers.range,
      authorization: req.headers.authorization,
    };
    requests.push(seen);
    return seen;
  };
  const load = async (id: string, file: string): Promise<Buffer | null> => {
    const dir = models[id];
    if (dir === undefined || file.includes('/') || file.startsWith('.')) return null;
    try {
      return await fsp.readFile(path.join(dir, file));
    } catch {
      return null;
    }
  };
  const sha = (body: Buffer): string =>
    opts.etag === 'wrong' ? createHash('sha256').update('not this').digest('hex') : createHash('sha256').update(body).digest('hex');
  const firstTime = (list: string[] | undefined, key: string, file: string): boolean => {
    if (!(list ?? []).includes(file) || dropped.has(key)) return false;
    dropped.add(key);
    return true;
  };
  const shouldDrop = (key: string, file: string): boolean => firstTime(opts.dropFirst, key, file);
  const shouldStall = (key: string, file: string): boolean => firstTime(opts.stallFirst, `stall:${key}`, file);

  // The CDN serves /<id>/<file> without any checksum headers, like a signed storage URL.
  const cdn = http.createServer((req, res) => {
    const seen = record('cdn', req);
    const parts = seen.path.split('/').filter(Boolean).map(decodeURIComponent);
    const file = parts.pop() ?? '';
    const id = parts.join('/');
    void load(id, file).then((body) => {
      if (body === null) {
        res.writeHead(404).end();
        return;
      }
      sendBytes(req, res, body, {}, { ignoreRange: opts.ignoreRange === true, drop: shouldDrop(`cdn:${id}/${file}`, file) });
    });
  });
  const cdnPort = await listen(cdn);

  const hub = http.createServer((req, res) => {
    const seen = record('hub', req);
    const m = /^\/(.+)\/resolve\/([^/]+)\/([^/]+)$/.exec(seen.path);
    if (m === null) {
      res.writeHead(404).end('Entry not found');
      return;
    }
    const id = m[1]!;
    const file = decodeURIComponent(m[3]!);
    void load(id, file).then((body) => {
      if (body === null) {
        res.writeHead(404, { 'x-error-code': 'EntryNotFound' }).end('Entry not found');
        return;
      }
      const lfs = file.endsWith('.safetensors');
      if (lfs && opts.lfsRedirect === true) {
        res.writeHead(302, {
          location: `http://127.0.0.1:${cdnPort}/${id}/${encodeURIComponent(file)}`,
          'x-linked-etag': `"${sha(body)}"`,
          'x-linked-size': String(body.length),
          etag: `"${sha(body)}"`,
        });
        res.end();
        return;
      }
      const headers: Record<string, string> = {};
      if (lfs && opts.etag !== 'none') headers['etag'] = `"${sha(body)}"`;
      else headers['etag'] = `"${createHash('sha1').update(body).digest('hex')}"`; // git blob id style: not a sha256
      sendBytes(req, res, body, headers, {
        ignoreRange: opts.ignoreRange === true,
        drop: shouldDrop(`hub:${id}/${file}`, file),
        stall: shouldStall(`hub:${id}/${file}`, file),
      });
    });
  });
  const hubPort = await listen(hub);

  return {
    endpoint: `http://127.0.0.1:${hubPort}`,
    requests,
    async close() {
      await Promise.all([closeServer(hub), closeServer(cdn)]);
    },
  };
}
