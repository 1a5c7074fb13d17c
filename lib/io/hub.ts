// Fetches a GPT-2 checkpoint from the Hugging Face hub into a local cache, once, with resumable downloads.
import { createReadStream, promises as fsp, type Stats } from 'node:fs';
import { createHash, type Hash } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { SHARD_INDEX_FILE, readShardIndex } from './safetensors.js';
import { parseModelConfig } from './familyConfig.js';
import { formatBytes, progressBar, type ProgressBar } from '../progress.js';

/** Progress of one file download, in bytes (including bytes resumed from an earlier attempt). */
export interface HubProgress {
  file: string;
  bytes: number;
  /** Final size, or null when the server does not say. */
  total: number | null;
}

/** Options for resolveModelSource. */
export interface ResolveModelOptions {
  /** Cache root; default env ROME_TS_CACHE, else $XDG_CACHE_HOME/rome-ts, else ~/.cache/rome-ts. */
  cacheDir?: string;
  /** Hub base URL; default env ROME_TS_HUB_ENDPOINT, else HF_ENDPOINT, else https://huggingface.co. */
  endpoint?: string;
  /** Branch, tag or commit; default 'main'. */
  revision?: string;
  onProgress?: (p: HubProgress) => void;
  fetchImpl?: typeof fetch;
  /** Bearer token; default env HF_TOKEN. Pass null to send none. */
  token?: string | null;
  /** Extra attempts per file after a network failure or truncated transfer (default 3); each resumes. */
  retries?: number;
  /** Delay before the first retry in ms, doubling each time (default 1000). */
  retryDelayMs?: number;
  /** Abort an attempt when no bytes arrive for this long, in ms (default 60000). */
  idleTimeoutMs?: number;
  /**
   * Called with the downloaded config.json's path before any weight is fetched; throwing stops the download (so a
   * model too large for the backend fails in seconds, not after gigabytes). Not called for local directories.
   */
  checkConfig?: (configPath: string) => Promise<void> | void;
}

/** A hub download that failed; the message says what to do about it. */
export class HubError extends Error {
  /** The URL involved, when there is one. */
  readonly url: string | null;
  /** HTTP status, when the server answered. */
  readonly status: number | null;

  constructor(message: string, opts: { url?: string; status?: number; cause?: unknown } = {}) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'HubError';
    this.url = opts.url ?? null;
    this.status = opts.status ?? null;
  }
}

/** Failure worth another attempt (network error, truncated body, 5xx); the .part file is kept for resuming. */
class RetryableError extends Error {
  constructor(
    message: string,
    readonly restart = false,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

class NotFoundError extends Error {
  constructor(readonly url: string) {
    super(`not found: ${url}`);
  }
}

const MARKER_FILE = '.rome-ts-complete.json';
const CONFIG = 'config.json';
const TOKENIZER = 'tokenizer.json';
const WEIGHTS = 'model.safetensors';
const SEGMENT_RE = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/;
const SHA256_RE = /^[0-9a-f]{64}$/;

/** Default cache root: ROME_TS_CACHE, else $XDG_CACHE_HOME/rome-ts, else ~/.cache/rome-ts. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['ROME_TS_CACHE']) return path.resolve(env['ROME_TS_CACHE']);
  if (env['XDG_CACHE_HOME']) return path.join(path.resolve(env['XDG_CACHE_HOME']), 'rome-ts');
  return path.join(os.homedir(), '.cache', 'rome-ts');
}

/** Default hub endpoint: ROME_TS_HUB_ENDPOINT, else HF_ENDPOINT, else https://huggingface.co (no trailing slash). */
export function defaultHubEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  const raw = env['ROME_TS_HUB_ENDPOINT'] || env['HF_ENDPOINT'] || 'https://huggingface.co';
  return raw.replace(/\/+$/, '');
}

/** Whether `source` looks like a hub model id: `name` or `owner/name` with the hub's allowed characters. */
export function isHubId(source: string): boolean {
  const parts = source.split('/');
  if (parts.length < 1 || parts.length > 2) return false;
  return parts.every((p) => p.length <= 96 && SEGMENT_RE.test(p) && !p.includes('--') && !p.includes('..'));
}

/** Cache directory for a hub id: <cacheDir>/models/<owner--name>, with `@<revision>` appended unless it is main. */
export function modelCacheDir(id: string, cacheDir: string, revision = 'main'): string {
  let name = id.replace('/', '--');
  if (revision !== 'main') name += `@${revision.replace(/[^A-Za-z0-9._-]/g, '_')}`;
  return path.join(cacheDir, 'models', name);
}

/** An onProgress callback that draws a progressBar on stderr for each file. */
export function stderrDownloadProgress(): (p: HubProgress) => void {
  let current: { file: string; bar: ProgressBar } | null = null;
  return (p) => {
    if (current === null || current.file !== p.file) {
      current?.bar.done();
      current = { file: p.file, bar: progressBar(`download ${p.file}`, { unit: 'bytes' }) };
    }
    current.bar.update(p.bytes, p.total);
    if (p.total !== null && p.bytes >= p.total) {
      current.bar.done(`done (${formatBytes(p.bytes)})`);
      current = null;
    }
  };
}

async function statOrNull(p: string): Promise<Stats | null> {
  try {
    return await fsp.stat(p);
  } catch {
    return null;
  }
}

interface Marker {
  id: string;
  revision: string;
  files: Record<string, number>;
}

async function cacheIsComplete(dir: string): Promise<boolean> {
  let marker: Marker;
  try {
    marker = JSON.parse(await fsp.readFile(path.join(dir, MARKER_FILE), 'utf8')) as Marker;
  } catch {
    return false;
  }
  if (typeof marker !== 'object' || marker === null || typeof marker.files !== 'object' || marker.files === null) {
    return false;
  }
  const entries = Object.entries(marker.files);
  if (!entries.some(([f]) => f === CONFIG)) return false;
  for (const [file, size] of entries) {
    const st = await statOrNull(path.join(dir, file));
    if (st === null || !st.isFile() || st.size !== size) return false;
  }
  // Caches written before downloads were validated may hold a malformed config: drop it so it is fetched again.
  for (const f of [CONFIG, TOKENIZER] as const) {
    if (!entries.some(([name]) => name === f)) continue;
    const problem = await jsonFileProblem(path.join(dir, f), f);
    if (problem !== null) {
      process.stderr.write(`rome-ts: cached ${path.join(dir, f)} is unusable (${problem}); fetching it again\n`);
      await fsp.rm(path.join(dir, f), { force: true });
      await fsp.rm(path.join(dir, MARKER_FILE), { force: true });
      return false;
    }
  }
  return true;
}

interface Context {
  id: string;
  revision: string;
  endpoint: string;
  endpointOrigin: string;
  dir: string;
  cacheDir: string;
  token: string | null;
  fetchImpl: typeof fetch;
  onProgress: ((p: HubProgress) => void) | undefined;
  retries: number;
  retryDelayMs: number;
  idleTimeoutMs: number;
}

/**
 * Returns a local checkpoint directory for `source`: the directory itself if it exists, else the cache directory
 * of the hub model id `source`, downloading config.json, tokenizer.json and the safetensors weights on first use.
 */
export async function resolveModelSource(source: string, opts: ResolveModelOptions = {}): Promise<string> {
  const st = await statOrNull(source);
  if (st !== null) {
    if (st.isDirectory()) return path.resolve(source);
    throw new HubError(`${source} is a file; pass a checkpoint directory (config.json + model.safetensors) or a hub model id`);
  }
  if (!isHubId(source)) {
    throw new HubError(
      `model source "${source}" is neither an existing directory nor a Hugging Face model id ` +
        '(like gpt2, gpt2-medium or openai-community/gpt2)',
    );
  }
  const endpoint = (opts.endpoint ?? defaultHubEndpoint()).replace(/\/+$/, '');
  let endpointOrigin: string;
  try {
    endpointOrigin = new URL(endpoint).origin;
  } catch {
    throw new HubError(`hub endpoint "${endpoint}" is not a valid URL`);
  }
  const revision = opts.revision ?? 'main';
  const cacheDir = path.resolve(opts.cacheDir ?? defaultCacheDir());
  const dir = modelCacheDir(source, cacheDir, revision);
  if (await cacheIsComplete(dir)) return dir;
  // Two downloads appending to the same .part file would corrupt it; callers in one process share one download.
  const running = inFlight.get(dir);
  if (running !== undefined) return running;
  const job = downloadModel(source, dir, cacheDir, revision, endpoint, endpointOrigin, opts);
  inFlight.set(dir, job);
  try {
    return await job;
  } finally {
    inFlight.delete(dir);
  }
}

/** Downloads in progress in this process, by model cache directory. */
const inFlight = new Map<string, Promise<string>>();

/** Fetches config, tokenizer and weights of hub model `source` into `dir`, then writes the completion marker. */
async function downloadModel(
  source: string,
  dir: string,
  cacheDir: string,
  revision: string,
  endpoint: string,
  endpointOrigin: string,
  opts: ResolveModelOptions,
): Promise<string> {
  const ctx: Context = {
    id: source,
    revision,
    endpoint,
    endpointOrigin,
    dir,
    cacheDir,
    token: opts.token === undefined ? process.env['HF_TOKEN'] || null : opts.token,
    fetchImpl: opts.fetchImpl ?? fetch,
    onProgress: opts.onProgress,
    retries: Math.max(0, opts.retries ?? 3),
    retryDelayMs: Math.max(0, opts.retryDelayMs ?? 1000),
    idleTimeoutMs: Math.max(1, opts.idleTimeoutMs ?? 60_000),
  };
  try {
    await fsp.mkdir(dir, { recursive: true });
  } catch (err) {
    throw new HubError(`cannot create cache directory ${dir} (${(err as Error).message}); set ROME_TS_CACHE or pass cacheDir`, {
      cause: err,
    });
  }

  const files: string[] = [];
  if (!(await fetchFile(ctx, CONFIG))) {
    throw new HubError(`model ${source} not found on the hub at ${fileUrl(ctx, CONFIG)}`, { url: fileUrl(ctx, CONFIG), status: 404 });
  }
  await checkDownloadedJson(ctx, CONFIG);
  files.push(CONFIG);
  if (opts.checkConfig) await opts.checkConfig(path.join(dir, CONFIG));
  if (await fetchFile(ctx, TOKENIZER)) {
    await checkDownloadedJson(ctx, TOKENIZER);
    files.push(TOKENIZER);
  }
  if (await fetchFile(ctx, WEIGHTS)) {
    files.push(WEIGHTS);
  } else if (await fetchFile(ctx, SHARD_INDEX_FILE)) {
    files.push(SHARD_INDEX_FILE);
    let shards: string[];
    try {
      shards = [...new Set((await readShardIndex(path.join(dir, SHARD_INDEX_FILE))).weightMap.values())].sort();
    } catch (err) {
      await fsp.rm(path.join(dir, SHARD_INDEX_FILE), { force: true });
      throw err;
    }
    for (const shard of shards) {
      if (!(await fetchFile(ctx, shard))) {
        throw new HubError(`shard ${shard} listed in ${SHARD_INDEX_FILE} of ${source} is missing on the hub at ${fileUrl(ctx, shard)}`, {
          url: fileUrl(ctx, shard),
          status: 404,
        });
      }
      files.push(shard);
    }
  } else {
    throw new HubError(
      `model ${source} has no ${WEIGHTS} or ${SHARD_INDEX_FILE} at ${fileUrl(ctx, WEIGHTS)} ` +
        '(repositories with only PyTorch .bin weights are not supported)',
      { url: fileUrl(ctx, WEIGHTS), status: 404 },
    );
  }

  const marker: Marker = { id: source, revision, files: {} };
  for (const f of files) marker.files[f] = (await fsp.stat(path.join(dir, f))).size;
  const tmp = path.join(dir, `${MARKER_FILE}.tmp-${process.pid}`);
  await fsp.writeFile(tmp, `${JSON.stringify(marker, null, 2)}\n`);
  await fsp.rename(tmp, path.join(dir, MARKER_FILE));
  return dir;
}

/** Why a downloaded JSON file cannot be used (config.json is validated as a config of a supported family), or null. */
async function jsonFileProblem(file: string, kind: typeof CONFIG | typeof TOKENIZER): Promise<string | null> {
  let json: unknown;
  try {
    json = JSON.parse(await fsp.readFile(file, 'utf8'));
  } catch (err) {
    return `not valid JSON (${(err as Error).message})`;
  }
  if (kind === CONFIG) {
    try {
      parseModelConfig(json, file);
    } catch (err) {
      return (err as Error).message;
    }
  } else if (json === null || typeof json !== 'object') {
    return 'not a JSON object';
  }
  return null;
}

/**
 * A malformed config.json or tokenizer.json must not be cached as part of a complete download (it would never be
 * fetched again): it is deleted and the download fails naming the URL and the problem.
 */
async function checkDownloadedJson(ctx: Context, file: typeof CONFIG | typeof TOKENIZER): Promise<void> {
  const dest = path.join(ctx.dir, file);
  const problem = await jsonFileProblem(dest, file);
  if (problem === null) return;
  await fsp.rm(dest, { force: true });
  throw new HubError(`${file} of model ${ctx.id} from ${fileUrl(ctx, file)} is unusable: ${problem}`, { url: fileUrl(ctx, file) });
}

function fileUrl(ctx: Context, file: string): string {
  return `${ctx.endpoint}/${ctx.id}/resolve/${encodeURIComponent(ctx.revision)}/${file}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Message of an error and its causes (fetch hides the useful part, e.g. ECONNREFUSED, two causes deep). */
function describeError(err: unknown): string {
  const parts: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; depth < 5 && cur !== undefined && cur !== null; depth++) {
    const e = cur as { message?: unknown; code?: unknown; cause?: unknown };
    const msg = typeof e.message === 'string' ? e.message : String(cur);
    const code = typeof e.code === 'string' && !msg.includes(e.code) ? `${e.code} ` : '';
    if (msg !== '' && !parts.includes(code + msg)) parts.push(code + msg);
    cur = e.cause;
  }
  return parts.join(': ');
}

/** Downloads one file into the model directory unless already there; false when the hub has no such file. */
async function fetchFile(ctx: Context, file: string): Promise<boolean> {
  const dest = path.join(ctx.dir, file);
  const st = await statOrNull(dest);
  // Files only get their final name after their size and checksum were verified.
  if (st !== null && st.isFile()) return true;
  const url = fileUrl(ctx, file);
  let restartedForHash = false;
  for (let attempt = 0; ; attempt++) {
    try {
      await attemptDownload(ctx, file, url, dest);
      return true;
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      if (err instanceof HashMismatchError) {
        // A resumed file can mix bytes of two revisions; one clean retry tells that apart from a corrupt upload.
        if (err.resumed && !restartedForHash) {
          restartedForHash = true;
          continue;
        }
        throw new HubError(err.message, { url });
      }
      if (!(err instanceof RetryableError)) throw err;
      if (attempt >= ctx.retries) {
        throw new HubError(
          `could not download ${file} of model ${ctx.id} from ${url}: ${describeError(err)}. ` +
            `Partial downloads are kept in ${ctx.dir} (cache ${ctx.cacheDir}) and resume on the next run. ` +
            'If you are offline, pass a local checkpoint directory (config.json + model.safetensors) instead of a hub id.',
          { url, cause: err },
        );
      }
      if (!err.restart) await sleep(ctx.retryDelayMs * 2 ** attempt);
    }
  }
}

class HashMismatchError extends Error {
  constructor(
    message: string,
    readonly resumed: boolean,
  ) {
    super(message);
  }
}

interface HubMeta {
  etag: string | null;
  linkedSize: number | null;
}

function cleanEtag(raw: string | null): string | null {
  if (raw === null) return null;
  return raw.trim().replace(/^W\//, '').replace(/^"|"$/g, '').toLowerCase();
}

/** GET with manual redirects, so that the hub's X-Linked-Etag survives and the token never leaves the hub. */
async function fetchFollow(
  ctx: Context,
  url: string,
  headers: Record<string, string>,
  signal: AbortSignal,
): Promise<{ res: Response; meta: HubMeta }> {
  const meta: HubMeta = { etag: null, linkedSize: null };
  let current = url;
  for (let hop = 0; hop < 10; hop++) {
    const onHub = new URL(current).origin === ctx.endpointOrigin;
    const h: Record<string, string> = { ...headers };
    if (onHub && ctx.token) h['authorization'] = `Bearer ${ctx.token}`;
    const res = await ctx.fetchImpl(current, { headers: h, redirect: 'manual', signal });
    if (onHub) {
      const etag = cleanEtag(res.headers.get('x-linked-etag') ?? res.headers.get('etag'));
      if (etag !== null) meta.etag = etag;
      const size = res.headers.get('x-linked-size');
      if (size !== null && /^\d+$/.test(size)) meta.linkedSize = Number(size);
    }
    if ([301, 302, 303, 307, 308].includes(res.status)) {
      const location = res.headers.get('location');
      await res.body?.cancel().catch(() => undefined);
      if (location === null) throw new HubError(`redirect without Location from ${current}`, { url: current });
      current = new URL(location, current).toString();
      continue;
    }
    return { res, meta };
  }
  throw new HubError(`too many redirects from ${url}`, { url });
}

async function fileSize(p: string): Promise<number> {
  const st = await statOrNull(p);
  return st !== null && st.isFile() ? st.size : 0;
}

async function hashExisting(hash: Hash, p: string): Promise<void> {
  for await (const chunk of createReadStream(p)) hash.update(chunk as Buffer);
}

/** One GET of `url` into `dest.part`, resuming from its current size; renames to `dest` when complete. */
async function attemptDownload(ctx: Context, file: string, url: string, dest: string): Promise<void> {
  const part = `${dest}.part`;
  let have = await fileSize(part);
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(new Error(`no data for ${ctx.idleTimeoutMs} ms`)), ctx.idleTimeoutMs);
  };
  const headers: Record<string, string> = { 'accept-encoding': 'identity', 'user-agent': 'rome-ts' };
  if (have > 0) headers['range'] = `bytes=${have}-`;

  arm();
  try {
    let res: Response;
    let meta: HubMeta;
    try {
      ({ res, meta } = await fetchFollow(ctx, url, headers, controller.signal));
    } catch (err) {
      if (err instanceof HubError) throw err;
      throw new RetryableError(`request failed`, false, { cause: controller.signal.aborted ? controller.signal.reason : err });
    }

    const status = res.status;
    if (status === 404) {
      await res.body?.cancel().catch(() => undefined);
      throw new NotFoundError(url);
    }
    if (status === 401 || status === 403) {
      await res.body?.cancel().catch(() => undefined);
      throw new HubError(
        `model ${ctx.id} not found on the hub or access denied (HTTP ${status}) at ${url}` +
          (ctx.token ? '' : '; for private or gated models set HF_TOKEN'),
        { url, status },
      );
    }
    if (status === 416 && have > 0) {
      // The part file may already hold the whole file (a crash between download and rename).
      await res.body?.cancel().catch(() => undefined);
      const total = /^bytes \*\/(\d+)$/.exec(res.headers.get('content-range') ?? '');
      if (total !== null && Number(total[1]) === have) {
        await finish(ctx, file, part, dest, have, meta.etag, null, true);
        return;
      }
      await fsp.rm(part, { force: true });
      throw new RetryableError('server refused to resume (HTTP 416); restarting', true);
    }
    if (status >= 500 || status === 429) {
      await res.body?.cancel().catch(() => undefined);
      throw new RetryableError(`server error HTTP ${status}`);
    }
    if (status !== 200 && status !== 206) {
      await res.body?.cancel().catch(() => undefined);
      throw new HubError(`unexpected HTTP ${status} for ${url}`, { url, status });
    }

    let total: number | null = null;
    const encoded = (res.headers.get('content-encoding') ?? 'identity') !== 'identity';
    if (status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
      if (m === null || Number(m[1]) !== have) {
        await res.body?.cancel().catch(() => undefined);
        await fsp.rm(part, { force: true });
        throw new RetryableError('server answered a different byte range; restarting', true);
      }
      if (m[3] !== '*') total = Number(m[3]);
    } else {
      // A 200 to a Range request means the server ignores ranges: start over.
      have = 0;
      const len = res.headers.get('content-length');
      if (len !== null && !encoded && /^\d+$/.test(len)) total = Number(len);
    }
    if (total === null && meta.linkedSize !== null) total = meta.linkedSize;

    const expectedSha = meta.etag !== null && SHA256_RE.test(meta.etag) ? meta.etag : null;
    const hash = expectedSha !== null ? createHash('sha256') : null;
    if (hash !== null && have > 0) await hashExisting(hash, part);

    const fh = await fsp.open(part, have > 0 ? 'a' : 'w');
    let bytes = have;
    try {
      ctx.onProgress?.({ file, bytes, total });
      if (res.body !== null) {
        try {
          for await (const chunk of res.body) {
            arm();
            const buf = chunk as Uint8Array;
            let off = 0;
            while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
            hash?.update(buf);
            bytes += buf.length;
            if (total !== null && bytes > total) break;
            ctx.onProgress?.({ file, bytes, total });
          }
        } catch (err) {
          throw new RetryableError(`connection lost after ${bytes} bytes`, false, {
            cause: controller.signal.aborted ? controller.signal.reason : err,
          });
        }
      }
    } finally {
      await fh.close();
    }
    if (total !== null && bytes > total) {
      await res.body?.cancel().catch(() => undefined);
      await fsp.rm(part, { force: true });
      throw new RetryableError(`received more bytes than announced (${total}); restarting`, true);
    }
    if (total !== null && bytes < total) {
      throw new RetryableError(`transfer ended early: ${bytes} of ${total} bytes`);
    }
    await finish(ctx, file, part, dest, bytes, expectedSha, hash, have > 0);
  } finally {
    clearTimeout(timer);
  }
}

async function finish(
  ctx: Context,
  file: string,
  part: string,
  dest: string,
  size: number,
  etag: string | null,
  hash: Hash | null,
  resumed: boolean,
): Promise<void> {
  const expected = etag !== null && SHA256_RE.test(etag) ? etag : null;
  if (expected !== null) {
    let h = hash;
    if (h === null) {
      h = createHash('sha256');
      await hashExisting(h, part);
    }
    const actual = h.digest('hex');
    if (actual !== expected) {
      await fsp.rm(part, { force: true });
      throw new HashMismatchError(
        `sha256 mismatch for ${file} of model ${ctx.id}: the hub says ${expected}, the download is ${actual} ` +
          `(${size} bytes); the corrupt download was deleted`,
        resumed,
      );
    }
  }
  await fsp.rename(part, dest);
}
