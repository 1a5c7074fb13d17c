// Reader and writer for the safetensors format:
//   [u64 little-endian N][N bytes of JSON header][byte buffer]
// The header maps tensor names to {dtype, shape, data_offsets: [begin, end]} with offsets relative to the start of
// the byte buffer, plus an optional "__metadata__" map of strings. Everything read from the file is validated
// before any allocation that depends on it, so a corrupt or hostile file gives a CheckpointError, never a crash.
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { CheckpointError } from './errors.js';

export { CheckpointError } from './errors.js';

/** Element types this reader understands; F16 and BF16 are upcast to Float32 on read. */
export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';

/** Element types the writer can produce. */
export type SafetensorsWriteDtype = 'F32' | 'F16';

/** Largest JSON header accepted, in bytes (real headers are well under 1 MB even for sharded 100B models). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** Name of the index file of a sharded checkpoint. */
export const SHARD_INDEX_FILE = 'model.safetensors.index.json';

const DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = { F32: 4, F16: 2, BF16: 2 };
/**
 * Other safetensors dtypes: their headers are accepted (so that a checkpoint carrying BOOL causal-mask buffers, as
 * converted Pythia and GPT-J files do, can load its float weights), but their data cannot be read.
 */
const OTHER_DTYPE_BYTES: Readonly<Record<string, number>> = { BOOL: 1, U8: 1, I8: 1, I16: 2, U16: 2, I32: 4, U32: 4, I64: 8, U64: 8, F64: 8 };
const METADATA_KEY = '__metadata__';
const LITTLE_ENDIAN = os.endianness() === 'LE';
/** Elements converted per read for 16-bit dtypes, so the temporary buffer stays small (8 MB). */
const CONVERT_CHUNK = 1 << 22;
/** Largest single positioned read, in bytes (Node refuses reads above 2 GB). */
const MAX_READ = 1 << 30;

/** One tensor's header entry, already validated against the file. */
export interface SafetensorsEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  /** [begin, end) in bytes, relative to the start of the byte buffer. */
  dataOffsets: [number, number];
}

/** The validated header of a safetensors file. */
export interface SafetensorsHeader {
  path: string;
  /** Total file size in bytes. */
  fileSize: number;
  /** N, the JSON header length in bytes. */
  headerLength: number;
  /** Absolute file offset of the byte buffer (8 + N). */
  dataStart: number;
  metadata: Record<string, string>;
  /** Tensors in header order. */
  entries: Map<string, SafetensorsEntry>;
  /** Tensors of dtypes this reader cannot convert (BOOL, integers, F64) → their dtype; never loaded. */
  unreadable: Map<string, string>;
}

/** One tensor read from a file, as Float32 whatever its stored dtype. */
export interface SafetensorsTensor {
  /** Stored dtype (before upcasting). */
  dtype: SafetensorsDtype;
  shape: number[];
  /** Row-major values, length product(shape). */
  data: Float32Array;
}

/** A whole (or partially) read safetensors file. */
export interface SafetensorsFile {
  metadata: Record<string, string>;
  tensors: Map<string, SafetensorsTensor>;
}

/** Options for reading tensors. */
export interface SafetensorsReadOptions {
  /** Read only these tensors; a name that is not in the file is an error. Default: all tensors. */
  names?: Iterable<string>;
}

/** A tensor to write: row-major Float32 values of the given shape. */
export interface SafetensorsWriteTensor {
  shape: readonly number[];
  data: Float32Array;
}

/** Options for writing a safetensors file. */
export interface SafetensorsWriteOptions {
  /** Stored element type; F16 rounds to nearest, ties to even. Default F32. */
  dtype?: SafetensorsWriteDtype;
  /** String metadata stored under "__metadata__". */
  metadata?: Record<string, string>;
}

// ---------------------------------------------------------------------------------------------------------------
// Float16 / BFloat16 bit conversions

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);
let f16Table: Float32Array | null = null;

/** IEEE binary16 bit pattern (0..0xFFFF) of a number, rounding to nearest with ties to even; overflow gives ±Inf. */
export function f32ToF16Bits(value: number): number {
  f32Scratch[0] = value;
  const bits = u32Scratch[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half: the value is m * 2^-24 with m = full >> shift; anything below 2^-25 rounds to zero.
    if (e < -10) return sign;
    const full = mant | 0x800000;
    const shift = 14 - e;
    const rem = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    let m = full >>> shift;
    if (rem > half || (rem === half && (m & 1) === 1)) m += 1;
    return sign | m;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (and reaches Inf at the top).
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h += 1;
  return sign | h;
}

/** Number encoded by an IEEE binary16 bit pattern (0..0xFFFF). */
export function f16BitsToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Number encoded by a bfloat16 bit pattern (the top 16 bits of a float32). */
export function bf16BitsToF32(bits: number): number {
  u32Scratch[0] = (bits & 0xffff) << 16;
  return f32Scratch[0]!;
}

function halfTable(): Float32Array {
  if (f16Table === null) {
    f16Table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) f16Table[i] = f16BitsToF32(i);
  }
  return f16Table;
}

// ---------------------------------------------------------------------------------------------------------------
// Header validation

function describe(value: unknown): string {
  const s = JSON.stringify(value);
  if (s === undefined) return String(value);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isNonNegativeInt(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Validates the decoded JSON header against the buffer size; throws CheckpointError on the first problem. */
function parseHeaderJson(
  file: string,
  headerBytes: Uint8Array,
  bufferSize: number,
): { metadata: Record<string, string>; entries: Map<string, SafetensorsEntry>; unreadable: Map<string, string> } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new CheckpointError(file, 'safetensors header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(file, `safetensors header is not valid JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(json)) {
    throw new CheckpointError(file, `safetensors header must be a JSON object, got ${describe(json)}`);
  }

  const metadata: Record<string, string> = {};
  const entries = new Map<string, SafetensorsEntry>();
  const unreadable = new Map<string, string>();
  // Unreadable entries take part in the offset checks under their real width, then move to `unreadable`.
  const otherWidth = new Map<string, number>();
  for (const [name, raw] of Object.entries(json)) {
    if (name === METADATA_KEY) {
      if (!isPlainObject(raw)) throw new CheckpointError(file, `"${METADATA_KEY}" must be an object of strings`);
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== 'string') {
          throw new CheckpointError(file, `"${METADATA_KEY}" value for "${k}" must be a string, got ${describe(v)}`);
        }
        metadata[k] = v;
      }
      continue;
    }
    if (!isPlainObject(raw)) {
      throw new CheckpointError(file, `header entry for tensor "${name}" must be an object, got ${describe(raw)}`);
    }
    const { dtype, shape, data_offsets: offsets } = raw;
    if (typeof dtype !== 'string') {
      throw new CheckpointError(file, `missing or non-string dtype for tensor "${name}"`);
    }
    if (!(dtype in DTYPE_BYTES) && !(dtype in OTHER_DTYPE_BYTES)) {
      throw new CheckpointError(file, `unsupported dtype ${dtype} for tensor "${name}" (supported: F32, F16, BF16)`);
    }
    if (dtype in OTHER_DTYPE_BYTES) {
      unreadable.set(name, dtype);
      otherWidth.set(name, OTHER_DTYPE_BYTES[dtype]!);
    }
    const dt = dtype as SafetensorsDtype;
    if (!Array.isArray(shape) || !shape.every(isNonNegativeInt)) {
      throw new CheckpointError(
        file,
        `shape of tensor "${name}" must be an array of non-negative integers, got ${describe(shape)}`,
      );
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !isNonNegativeInt(offsets[0]) ||
      !isNonNegativeInt(offsets[1]) ||
      offsets[0] > offsets[1]
    ) {
      throw new CheckpointError(
        file,
        `data_offsets of tensor "${name}" must be two integers [begin, end] with 0 <= begin <= end, got ${describe(offsets)}`,
      );
    }
    const begin = offsets[0] as number;
    const end = offsets[1] as number;
    let count = 1;
    for (const d of shape as number[]) count *= d;
    const expected = count * (otherWidth.get(name) ?? DTYPE_BYTES[dt]);
    if (!Number.isSafeInteger(expected)) {
      throw new CheckpointError(file, `shape ${describe(shape)} of tensor "${name}" is too large`);
    }
    if (end - begin !== expected) {
      throw new CheckpointError(
        file,
        `byte size mismatch for tensor "${name}": data_offsets [${begin}, ${end}] span ${end - begin} bytes but ` +
          `shape [${(shape as number[]).join(', ')}] of ${dt} needs ${expected} bytes`,
      );
    }
    if (end > bufferSize) {
      throw new CheckpointError(
        file,
        `truncated file: tensor "${name}" ends at byte ${end} of the data buffer but the buffer has only ` +
          `${bufferSize} bytes`,
      );
    }
    entries.set(name, { dtype: dt, shape: [...(shape as number[])], dataOffsets: [begin, end] });
  }

  // Overlaps make in-place edits of one tensor silently change another, so they are rejected.
  const ranges = [...entries].filter(([, e]) => e.dataOffsets[1] > e.dataOffsets[0]);
  ranges.sort((a, b) => a[1].dataOffsets[0] - b[1].dataOffsets[0] || a[1].dataOffsets[1] - b[1].dataOffsets[1]);
  let furthest: [string, SafetensorsEntry] | null = null;
  for (const cur of ranges) {
    if (furthest !== null && cur[1].dataOffsets[0] < furthest[1].dataOffsets[1]) {
      throw new CheckpointError(
        file,
        `overlapping tensors: "${furthest[0]}" [${furthest[1].dataOffsets.join(', ')}] and ` +
          `"${cur[0]}" [${cur[1].dataOffsets.join(', ')}]`,
      );
    }
    if (furthest === null || cur[1].dataOffsets[1] > furthest[1].dataOffsets[1]) furthest = cur;
  }
  for (const name of unreadable.keys()) entries.delete(name);
  return { metadata, entries, unreadable };
}

// ---------------------------------------------------------------------------------------------------------------
// Reading

async function openForRead(file: string): Promise<{ fh: FileHandle; size: number }> {
  let fh: FileHandle;
  try {
    fh = await fsp.open(file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CheckpointError(file, 'file not found', { cause: err });
    throw new CheckpointError(file, `cannot open file (${(err as Error).message})`, { cause: err });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new CheckpointError(file, 'not a regular file');
    return { fh, size: st.size };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

async function readFully(file: string, fh: FileHandle, target: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < target.length) {
    const len = Math.min(target.length - done, MAX_READ);
    const { bytesRead } = await fh.read(target, done, len, position + done);
    if (bytesRead === 0) {
      throw new CheckpointError(
        file,
        `unexpected end of file at byte ${position + done} (was the file changed while reading?)`,
      );
    }
    done += bytesRead;
  }
}

async function readHeaderFrom(file: string, fh: FileHandle, size: number): Promise<SafetensorsHeader> {
  if (size < 8) {
    throw new CheckpointError(file, `file is ${size} bytes, too short for a safetensors header (needs at least 8)`);
  }
  const lenBytes = new Uint8Array(8);
  await readFully(file, fh, lenBytes, 0);
  const n = new DataView(lenBytes.buffer).getBigUint64(0, true);
  if (n > BigInt(size - 8)) {
    throw new CheckpointError(
      file,
      `header length ${n} runs past the end of the file (file is ${size} bytes); not a safetensors file or truncated`,
    );
  }
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new CheckpointError(file, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const headerLength = Number(n);
  const headerBytes = new Uint8Array(headerLength);
  await readFully(file, fh, headerBytes, 8);
  const dataStart = 8 + headerLength;
  const { metadata, entries, unreadable } = parseHeaderJson(file, headerBytes, size - dataStart);
  return { path: file, fileSize: size, headerLength, dataStart, metadata, entries, unreadable };
}

function swapBytes(bytes: Uint8Array, width: number): void {
  for (let i = 0; i + width <= bytes.length; i += width) {
    for (let a = i, b = i + width - 1; a < b; a++, b--) {
      const t = bytes[a]!;
      bytes[a] = bytes[b]!;
      bytes[b] = t;
    }
  }
}

async function readTensor(
  file: string,
  fh: FileHandle,
  dataStart: number,
  entry: SafetensorsEntry,
): Promise<Float32Array> {
  const [begin, end] = entry.dataOffsets;
  const count = (end - begin) / DTYPE_BYTES[entry.dtype];
  const out = new Float32Array(count);
  const position = dataStart + begin;
  if (entry.dtype === 'F32') {
    const bytes = new Uint8Array(out.buffer);
    await readFully(file, fh, bytes, position);
    if (!LITTLE_ENDIAN) swapBytes(bytes, 4);
    return out;
  }
  const chunk = new Uint16Array(Math.min(count, CONVERT_CHUNK));
  const chunkBytes = new Uint8Array(chunk.buffer);
  const outBits = new Uint32Array(out.buffer);
  const table = entry.dtype === 'F16' ? halfTable() : null;
  for (let start = 0; start < count; start += chunk.length) {
    const n = Math.min(chunk.length, count - start);
    const view = chunkBytes.subarray(0, n * 2);
    await readFully(file, fh, view, position + start * 2);
    if (!LITTLE_ENDIAN) swapBytes(view, 2);
    if (table !== null) {
      for (let i = 0; i < n; i++) out[start + i] = table[chunk[i]!]!;
    } else {
      for (let i = 0; i < n; i++) outBits[start + i] = chunk[i]! << 16;
    }
  }
  return out;
}

/** Reads and validates only the header of a safetensors file (cheap: no tensor data is read). */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  const { fh, size } = await openForRead(file);
  try {
    return await readHeaderFrom(file, fh, size);
  } finally {
    await fh.close();
  }
}

/** Reads a safetensors file (or the `names` subset of it), one tensor at a time, upcasting F16/BF16 to Float32. */
export async function readSafetensors(file: string, opts: SafetensorsReadOptions = {}): Promise<SafetensorsFile> {
  const { fh, size } = await openForRead(file);
  try {
    const header = await readHeaderFrom(file, fh, size);
    const refuse = (name: string): never => {
      throw new CheckpointError(file, `unsupported dtype ${header.unreadable.get(name)} for tensor "${name}" (supported: F32, F16, BF16)`);
    };
    let wanted: [string, SafetensorsEntry][];
    if (opts.names === undefined) {
      const first = header.unreadable.keys().next();
      if (!first.done) refuse(first.value);
      wanted = [...header.entries];
    } else {
      wanted = [];
      for (const name of new Set(opts.names)) {
        if (header.unreadable.has(name)) refuse(name);
        const entry = header.entries.get(name);
        if (entry === undefined) throw new CheckpointError(file, `tensor "${name}" is not in this file`);
        wanted.push([name, entry]);
      }
    }
    // Reading in file order keeps the disk access sequential.
    wanted.sort((a, b) => a[1].dataOffsets[0] - b[1].dataOffsets[0]);
    const tensors = new Map<string, SafetensorsTensor>();
    for (const [name, entry] of wanted) {
      const data = await readTensor(file, fh, header.dataStart, entry);
      tensors.set(name, { dtype: entry.dtype, shape: [...entry.shape], data });
    }
    return { metadata: { ...header.metadata }, tensors };
  } finally {
    await fh.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Writing

/** Writes `tensors` to `file` atomically (temp file + rename), names sorted, header padded to 8 bytes. */
export async function writeSafetensors(
  file: string,
  tensors: Record<string, SafetensorsWriteTensor> | ReadonlyMap<string, SafetensorsWriteTensor>,
  opts: SafetensorsWriteOptions = {},
): Promise<void> {
  const dtype: SafetensorsWriteDtype = opts.dtype ?? 'F32';
  if (dtype !== 'F32' && dtype !== 'F16') throw new CheckpointError(file, `cannot write dtype ${String(dtype)}`);
  const width = DTYPE_BYTES[dtype];
  const source: [string, SafetensorsWriteTensor][] =
    tensors instanceof Map ? [...tensors] : Object.entries(tensors as Record<string, SafetensorsWriteTensor>);
  const sorted = source.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));

  const header: Record<string, unknown> = {};
  if (opts.metadata !== undefined && Object.keys(opts.metadata).length > 0) {
    const meta: Record<string, string> = {};
    for (const k of Object.keys(opts.metadata).sort()) {
      const v = opts.metadata[k];
      if (typeof v !== 'string') throw new CheckpointError(file, `metadata value for "${k}" must be a string`);
      meta[k] = v;
    }
    header[METADATA_KEY] = meta;
  }
  let offset = 0;
  for (const [name, t] of sorted) {
    if (name === '' || name === METADATA_KEY) throw new CheckpointError(file, `invalid tensor name "${name}"`);
    if (!Array.isArray(t.shape) || !t.shape.every(isNonNegativeInt)) {
      throw new CheckpointError(file, `shape of tensor "${name}" must be non-negative integers, got ${describe(t.shape)}`);
    }
    if (!(t.data instanceof Float32Array)) throw new CheckpointError(file, `data of tensor "${name}" must be a Float32Array`);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) {
      throw new CheckpointError(
        file,
        `tensor "${name}" has ${t.data.length} values but shape [${t.shape.join(', ')}] needs ${count}`,
      );
    }
    const nbytes = count * width;
    header[name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + nbytes] };
    offset += nbytes;
  }

  let json = JSON.stringify(header);
  // Padding with spaces keeps the buffer 8-byte aligned, which mmap-based readers rely on.
  const rawLen = Buffer.byteLength(json, 'utf8');
  json += ' '.repeat((8 - ((8 + rawLen) % 8)) % 8);
  const headerBuf = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBuf.length), 0);

  await fsp.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await fsp.open(tmp, 'w');
  try {
    await writeAll(fh, prefix);
    await writeAll(fh, headerBuf);
    for (const [, t] of sorted) {
      if (dtype === 'F32') {
        let bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
        if (!LITTLE_ENDIAN) {
          bytes = bytes.slice();
          swapBytes(bytes, 4);
        }
        await writeAll(fh, bytes);
      } else {
        const n = t.data.length;
        const chunk = new Uint16Array(Math.min(Math.max(n, 1), CONVERT_CHUNK));
        const chunkBytes = new Uint8Array(chunk.buffer);
        for (let start = 0; start < n; start += chunk.length) {
          const m = Math.min(chunk.length, n - start);
          for (let i = 0; i < m; i++) chunk[i] = f32ToF16Bits(t.data[start + i]!);
          const view = chunkBytes.subarray(0, m * 2);
          if (!LITTLE_ENDIAN) swapBytes(view, 2);
          await writeAll(fh, view);
        }
      }
    }
    await fh.sync();
    await fh.close();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  try {
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw new CheckpointError(file, `cannot move finished file into place (${(err as Error).message})`, { cause: err });
  }
}

async function writeAll(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const len = Math.min(bytes.length - done, MAX_READ);
    const { bytesWritten } = await fh.write(bytes, done, len);
    done += bytesWritten;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Sharded checkpoints

/** The parsed `model.safetensors.index.json` of a sharded checkpoint. */
export interface ShardIndex {
  /** Path of the index file. */
  path: string;
  /** Index metadata (e.g. total_size), values as strings. */
  metadata: Record<string, string>;
  /** Tensor name → shard file name (relative to the index's directory). */
  weightMap: Map<string, string>;
}

function indexPathOf(dirOrIndex: string): string {
  return dirOrIndex.endsWith('.json') ? dirOrIndex : path.join(dirOrIndex, SHARD_INDEX_FILE);
}

/** Reads and validates a shard index; accepts the directory or the index file path. */
export async function readShardIndex(dirOrIndex: string): Promise<ShardIndex> {
  const indexPath = indexPathOf(dirOrIndex);
  let text: string;
  try {
    text = await fsp.readFile(indexPath, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CheckpointError(indexPath, code === 'ENOENT' ? 'file not found' : `cannot read (${(err as Error).message})`, {
      cause: err,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(indexPath, `not valid JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(json) || !isPlainObject(json['weight_map'])) {
    throw new CheckpointError(indexPath, 'expected an object with a "weight_map" object of tensor name → shard file');
  }
  const weightMap = new Map<string, string>();
  for (const [name, shard] of Object.entries(json['weight_map'])) {
    // Shards live next to the index; anything else could read arbitrary files.
    if (
      typeof shard !== 'string' ||
      shard === '' ||
      shard.includes('/') ||
      shard.includes('\\') ||
      shard === '.' ||
      shard === '..'
    ) {
      throw new CheckpointError(indexPath, `weight_map entry for "${name}" must be a file name in the same directory, got ${describe(shard)}`);
    }
    weightMap.set(name, shard);
  }
  const metadata: Record<string, string> = {};
  const rawMeta = json['metadata'];
  if (isPlainObject(rawMeta)) {
    for (const [k, v] of Object.entries(rawMeta)) metadata[k] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  return { path: indexPath, metadata, weightMap };
}

/** Reads a sharded checkpoint (directory holding model.safetensors.index.json, or the index path), or a subset. */
export async function readShardedSafetensors(
  dirOrIndex: string,
  opts: SafetensorsReadOptions = {},
): Promise<SafetensorsFile> {
  const index = await readShardIndex(dirOrIndex);
  const dir = path.dirname(index.path);
  const names = opts.names === undefined ? [...index.weightMap.keys()] : [...new Set(opts.names)];
  const byShard = new Map<string, string[]>();
  for (const name of names) {
    const shard = index.weightMap.get(name);
    if (shard === undefined) throw new CheckpointError(index.path, `tensor "${name}" is not in the weight_map`);
    const list = byShard.get(shard) ?? [];
    list.push(name);
    byShard.set(shard, list);
  }
  const tensors = new Map<string, SafetensorsTensor>();
  const metadata: Record<string, string> = {};
  for (const shard of [...byShard.keys()].sort()) {
    const part = await readSafetensors(path.join(dir, shard), { names: byShard.get(shard)! });
    for (const [k, v] of Object.entries(part.metadata)) if (!(k in metadata)) metadata[k] = v;
    for (const [name, t] of part.tensors) tensors.set(name, t);
  }
  Object.assign(metadata, index.metadata);
  return { metadata, tensors };
}
