import { createHash, randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { logLine } from '../log.js';

/** Base URL where the ROME authors publish their evaluation datasets. */
export const ROME_DSETS_URL = 'https://rome.baulab.info/data/dsets/';

/** Files published at {@link ROME_DSETS_URL}, keyed by file name. */
export const ROME_DATASET_FILES: readonly string[] = [
  'counterfact.json',
  'known_1000.json',
  'zsre_mem_eval.json',
  'attribute_snippets.json',
  'idf.npy',
  'tfidf_vocab.json',
];

/** Minimal fetch signature used for downloads, so tests can inject their own. */
export type FetchLike = (url: string) => Promise<{
  ok: boolean;
  status: number;
  statusText?: string;
  arrayBuffer(): Promise<ArrayBuffer>;
}>;

/** Thrown when a data file is neither present in any data directory nor downloadable. */
export class DataFileNotFoundError extends Error {
  /** Relative path that was requested. */
  readonly relPath: string;
  /** Absolute paths that were checked, in order. */
  readonly searched: string[];
  constructor(relPath: string, searched: string[], extra?: string) {
    const lines = [
      `rome-ts: data file "${relPath}" not found.`,
      'Looked in:',
      ...searched.map((p) => `  - ${p}`),
      'Set ROME_TS_DATA to a directory that contains it (e.g. `export ROME_TS_DATA=/path/to/data`),',
      'or place it under the cache directory (ROME_TS_CACHE, default ~/.cache/rome-ts) in data/.',
    ];
    if (extra) lines.push(extra);
    super(lines.join('\n'));
    this.name = 'DataFileNotFoundError';
    this.relPath = relPath;
    this.searched = searched;
  }
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Directory of the rome-ts checkout/package that holds this module (walks up to its package.json). */
export function repoRoot(): string | null {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

/** Cache directory: `ROME_TS_CACHE`, else `~/.cache/rome-ts`. */
export function cacheDir(): string {
  const env = process.env['ROME_TS_CACHE'];
  if (env && env.length > 0) return path.resolve(env);
  return path.join(homedir(), '.cache', 'rome-ts');
}

/**
 * Candidate data directories in lookup order (existing or not): `ROME_TS_DATA`, `<repo>/../shared/data`,
 * `<cwd>/../shared/data`, `<cache>/data`. Duplicates are removed.
 */
export function dataDirCandidates(): string[] {
  const out: string[] = [];
  const env = process.env['ROME_TS_DATA'];
  if (env && env.length > 0) out.push(path.resolve(env));
  const root = repoRoot();
  if (root) out.push(path.resolve(root, '..', 'shared', 'data'));
  out.push(path.resolve(process.cwd(), '..', 'shared', 'data'));
  out.push(path.join(cacheDir(), 'data'));
  return [...new Set(out)];
}

/** The first existing data directory among {@link dataDirCandidates}, or null when none exists. */
export function dataDir(): string | null {
  for (const d of dataDirCandidates()) if (isDir(d)) return d;
  return null;
}

/** Where a downloaded file lives: `<cache>/data/<relPath>`. */
export function downloadTarget(relPath: string): string {
  return path.join(cacheDir(), 'data', relPath);
}

/** The canonical download URL for a file published by ROME (matched on its base name), or null. */
export function knownDownloadUrl(relPath: string): string | null {
  const base = path.posix.basename(relPath.replace(/\\/g, '/'));
  return ROME_DATASET_FILES.includes(base) ? ROME_DSETS_URL + base : null;
}

/** Options for {@link requireDataFile}. */
export interface RequireDataFileOptions {
  /** URL to download from when the file is missing; `null` disables downloading; default: {@link knownDownloadUrl}. */
  downloadUrl?: string | null;
  /** Explicit data directory: searched instead of the standard lookup (the download cache is still checked). */
  dataDir?: string;
  /** Fetch implementation (default: global fetch). */
  fetch?: FetchLike;
  /** Progress/log sink for download messages (default: stderr). */
  log?: (msg: string) => void;
}

/**
 * Paths that would be checked for `relPath`, in order. With an explicit directory only it and the download cache
 * are checked (an explicit choice should not silently fall back to another copy).
 */
export function dataFileCandidates(relPath: string, explicitDir?: string): string[] {
  const dirs = explicitDir ? [path.resolve(explicitDir), path.join(cacheDir(), 'data')] : dataDirCandidates();
  return [...new Set(dirs.map((d) => path.join(d, relPath)))];
}

/** Returns the path of `relPath` in the first data dir that has it, or null. */
export function findDataFile(relPath: string, explicitDir?: string): string | null {
  for (const p of dataFileCandidates(relPath, explicitDir)) if (existsSync(p)) return p;
  return null;
}

const inflight = new Map<string, Promise<string>>();

/**
 * Absolute path of a data file (relative to a data dir). When absent everywhere and a URL is known, downloads it
 * once into `<cache>/data/<relPath>` (temp file + rename); otherwise throws {@link DataFileNotFoundError}.
 */
export async function requireDataFile(relPath: string, opts: RequireDataFileOptions = {}): Promise<string> {
  const found = findDataFile(relPath, opts.dataDir);
  if (found) return found;
  const url = opts.downloadUrl === undefined ? knownDownloadUrl(relPath) : opts.downloadUrl;
  const searched = dataFileCandidates(relPath, opts.dataDir);
  if (!url) throw new DataFileNotFoundError(relPath, searched, 'No download URL is known for this file.');
  const target = downloadTarget(relPath);
  const pending = inflight.get(target);
  if (pending) return pending;
  const job = download(url, target, opts).catch((err: unknown) => {
    const msg = err instanceof Error ? err.message : String(err);
    throw new DataFileNotFoundError(relPath, searched, `Download from ${url} failed: ${msg}`);
  });
  inflight.set(target, job);
  try {
    return await job;
  } finally {
    inflight.delete(target);
  }
}

async function download(url: string, target: string, opts: RequireDataFileOptions): Promise<string> {
  const log = opts.log ?? logLine;
  const doFetch: FetchLike = opts.fetch ?? ((u: string) => fetch(u));
  log(`rome-ts: downloading ${url} -> ${target}`);
  const res = await doFetch(url);
  if (!res.ok) throw new Error(`HTTP ${res.status}${res.statusText ? ' ' + res.statusText : ''}`);
  const body = Buffer.from(await res.arrayBuffer());
  await mkdir(path.dirname(target), { recursive: true });
  // A unique temp name in the same directory makes the final rename atomic and lets concurrent processes race safely.
  const tmp = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, body);
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const sha = createHash('sha256').update(body).digest('hex');
  log(`rome-ts: saved ${body.length} bytes (sha256 ${sha.slice(0, 16)}…)`);
  return target;
}
