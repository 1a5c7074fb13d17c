import test from 'ava';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CheckpointError,
  bf16BitsToF32,
  f16BitsToF32,
  f32ToF16Bits,
  readSafetensors,
  readSafetensorsHeader,
  readShardedSafetensors,
  writeSafetensors,
} from '../lib/io/safetensors.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const FIXTURE = path.join(here, 'fixtures', 'tiny-gpt2');

async function tmpDir(): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), 'rome-ts-st-'));
}

/** Builds safetensors bytes by hand: u64 LE header length, header text, data. */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0), headerLen?: bigint): Buffer {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const h = Buffer.from(text, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(headerLen ?? BigInt(h.length));
  return Buffer.concat([prefix, h, Buffer.from(data)]);
}

async function writeRaw(name: string, bytes: Uint8Array): Promise<string> {
  const file = path.join(await tmpDir(), name);
  await fsp.writeFile(file, bytes);
  return file;
}

/** Parses the header of a file by hand (independent of the reader under test). */
function parseRaw(bytes: Buffer): { n: number; header: Record<string, { dtype: string; shape: number[]; data_offsets: number[] }> } {
  const n = Number(bytes.readBigUInt64LE(0));
  return { n, header: JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) };
}

async function rejectsCheckpoint(
  t: import('ava').ExecutionContext,
  promise: Promise<unknown>,
  file: string,
  problem: RegExp,
): Promise<void> {
  const err = await t.throwsAsync(promise, { instanceOf: CheckpointError });
  t.true(err!.message.includes(file), `message names the file: ${err!.message}`);
  t.regex(err!.message, problem);
}

// ------------------------------------------------------------------------------------------------------------
// Float16 conversions against hand-computed bit patterns

const F16_CASES: [number, number][] = [
  [1.0, 0x3c00],
  [-2.0, 0xc000],
  [0.5, 0x3800],
  [0.1, 0x2e66], // 0.1 = 1.6 * 2^-4; 0.6 * 1024 = 614.4 → 614 = 0x266
  [1 / 3, 0x3555],
  [65504, 0x7bff], // largest finite half
  [65519, 0x7bff], // below the midpoint to Inf
  [65520, 0x7c00], // midpoint between 65504 (odd mantissa) and 2^16: ties to even → Inf
  [1e6, 0x7c00],
  [2 ** -14, 0x0400], // smallest normal
  [2 ** -24, 0x0001], // smallest subnormal
  [3 * 2 ** -24, 0x0003],
  [2 ** -25, 0x0000], // exact tie between 0 and 2^-24 → even (0)
  [3 * 2 ** -25, 0x0002], // tie between 1 and 2 (×2^-24) → even (2)
  [0.75 * 2 ** -24, 0x0001],
  [2 ** -26, 0x0000],
  [1 + 2 ** -11, 0x3c00], // tie between 0x3C00 and 0x3C01 → even
  [1 + 3 * 2 ** -11, 0x3c02], // tie between 0x3C01 and 0x3C02 → even
  [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie rounds up
  [2 ** -14 - 2 ** -25, 0x0400], // tie between largest subnormal 0x03FF and 0x0400 → even, carries into the exponent
  [0, 0x0000],
  [-0, 0x8000],
  [Infinity, 0x7c00],
  [-Infinity, 0xfc00],
];

test('f32ToF16Bits matches hand-computed bit patterns (round to nearest even)', (t) => {
  for (const [value, bits] of F16_CASES) {
    t.is(f32ToF16Bits(value), bits, `value ${value}`);
  }
  const nan = f32ToF16Bits(NaN);
  t.is(nan & 0x7c00, 0x7c00);
  t.not(nan & 0x3ff, 0);
});

test('f16BitsToF32 decodes hand-computed values', (t) => {
  t.is(f16BitsToF32(0x3c00), 1);
  t.is(f16BitsToF32(0x7bff), 65504);
  t.is(f16BitsToF32(0x0001), 2 ** -24);
  t.is(f16BitsToF32(0x03ff), 1023 * 2 ** -24);
  t.is(f16BitsToF32(0xc000), -2);
  t.is(f16BitsToF32(0x7c00), Infinity);
  t.is(f16BitsToF32(0xfc00), -Infinity);
  t.true(Number.isNaN(f16BitsToF32(0x7e00)));
  t.true(Object.is(f16BitsToF32(0x8000), -0));
  // Every finite half survives a round trip through the encoder.
  let checked = 0;
  for (let bits = 0; bits < 0x10000; bits++) {
    const v = f16BitsToF32(bits);
    if (Number.isNaN(v)) continue;
    checked++;
    if (f32ToF16Bits(v) !== bits) {
      t.fail(`round trip of 0x${bits.toString(16)} gave 0x${f32ToF16Bits(v).toString(16)}`);
      return;
    }
  }
  // 2 * 1023 NaN payloads (exponent all ones, mantissa non-zero) are the only values skipped.
  t.is(checked, 0x10000 - 2 * 1023);
});

test('bf16BitsToF32 decodes hand-computed values', (t) => {
  t.is(bf16BitsToF32(0x3f80), 1);
  t.is(bf16BitsToF32(0xc040), -3);
  t.is(bf16BitsToF32(0x3e4d), 0.2001953125);
  t.is(bf16BitsToF32(0x7f80), Infinity);
});

// ------------------------------------------------------------------------------------------------------------
// Round trips

test('F32 round trip is exact, sorted, 8-byte aligned and deterministic', async (t) => {
  const dir = await tmpDir();
  const a = new Float32Array([1.5, -2.25, 3.125e-20, 7e30, 0, -0, 42, 1 / 3, Math.PI, -1e-40, 65504, 123456.789]);
  const b = new Float32Array([9, 8, 7]);
  const tensors = { 'z.last': { shape: [3], data: b }, 'a.first': { shape: [3, 4], data: a } };
  const file = path.join(dir, 'x.safetensors');
  await writeSafetensors(file, tensors, { metadata: { format: 'pt', note: 'hi' } });

  const bytes = await fsp.readFile(file);
  const { n, header } = parseRaw(bytes);
  t.is((8 + n) % 8, 0);
  t.deepEqual(Object.keys(header), ['__metadata__', 'a.first', 'z.last']);
  t.deepEqual(header['a.first'], { dtype: 'F32', shape: [3, 4], data_offsets: [0, 48] });
  t.deepEqual(header['z.last'], { dtype: 'F32', shape: [3], data_offsets: [48, 60] });
  t.is(bytes.length, 8 + n + 60);
  t.is(bytes.readFloatLE(8 + n + 4), -2.25);

  const back = await readSafetensors(file);
  t.deepEqual(back.metadata, { format: 'pt', note: 'hi' });
  t.deepEqual([...back.tensors.keys()].sort(), ['a.first', 'z.last']);
  const ta = back.tensors.get('a.first')!;
  t.is(ta.dtype, 'F32');
  t.deepEqual(ta.shape, [3, 4]);
  t.deepEqual(ta.data, a);
  t.true(Object.is(ta.data[5], -0));
  t.deepEqual(back.tensors.get('z.last')!.data, b);

  const file2 = path.join(dir, 'y.safetensors');
  await writeSafetensors(file2, { 'a.first': tensors['a.first'], 'z.last': tensors['z.last'] }, {
    metadata: { note: 'hi', format: 'pt' },
  });
  t.true(bytes.equals(await fsp.readFile(file2)));
  // No temp files are left behind.
  t.deepEqual((await fsp.readdir(dir)).sort(), ['x.safetensors', 'y.safetensors']);
});

test('F16 writing stores hand-computed bit patterns and reads back as their values', async (t) => {
  const dir = await tmpDir();
  const values = new Float32Array(F16_CASES.map(([v]) => v));
  const file = path.join(dir, 'h.safetensors');
  await writeSafetensors(file, new Map([['w', { shape: [values.length], data: values }]]), { dtype: 'F16' });

  const bytes = await fsp.readFile(file);
  const { n, header } = parseRaw(bytes);
  t.deepEqual(header['w'], { dtype: 'F16', shape: [values.length], data_offsets: [0, 2 * values.length] });
  F16_CASES.forEach(([value, bits], i) => {
    // Values that are not float32-representable get rounded twice (f64 → f32 → f16) and are checked elsewhere.
    if (Math.fround(value) !== value) return;
    t.is(bytes.readUInt16LE(8 + n + 2 * i), bits, `stored bits for ${value}`);
  });

  const back = (await readSafetensors(file)).tensors.get('w')!;
  t.is(back.dtype, 'F16');
  t.is(back.data[0], 1);
  t.is(back.data[5], 65504);
  t.is(back.data[7], Infinity);
  t.is(back.data[10], 2 ** -24);
  t.is(back.data[12], 0);
  t.is(back.data[16], 1);
  t.is(back.data[17], 1 + 2 ** -9);
});

test('BF16 tensors written by hand are upcast', async (t) => {
  const data = Buffer.alloc(8);
  [0x3f80, 0xc040, 0x3e4d, 0xff80].forEach((b, i) => data.writeUInt16LE(b, 2 * i));
  const file = await writeRaw('bf.safetensors', rawFile({ b: { dtype: 'BF16', shape: [2, 2], data_offsets: [0, 8] } }, data));
  const t0 = (await readSafetensors(file)).tensors.get('b')!;
  t.is(t0.dtype, 'BF16');
  t.deepEqual(t0.shape, [2, 2]);
  t.deepEqual([...t0.data], [1, -3, 0.2001953125, -Infinity]);
});

test('reading a subset, header only, gaps and empty tensors', async (t) => {
  const data = Buffer.alloc(24);
  data.writeFloatLE(1, 0);
  data.writeFloatLE(2, 4);
  data.writeFloatLE(5, 16); // bytes 8..16 are a gap
  const file = await writeRaw(
    'sub.safetensors',
    rawFile({
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      empty: { dtype: 'F32', shape: [0, 3], data_offsets: [8, 8] },
      c: { dtype: 'F32', shape: [1, 1], data_offsets: [16, 20] },
    }, data),
  );
  const header = await readSafetensorsHeader(file);
  t.deepEqual([...header.entries.keys()], ['a', 'empty', 'c']);
  t.deepEqual(header.entries.get('c')!.dataOffsets, [16, 20]);

  const sub = await readSafetensors(file, { names: ['c', 'empty'] });
  t.deepEqual([...sub.tensors.keys()].sort(), ['c', 'empty']);
  t.deepEqual([...sub.tensors.get('c')!.data], [5]);
  t.is(sub.tensors.get('empty')!.data.length, 0);

  await rejectsCheckpoint(t, readSafetensors(file, { names: ['nope'] }), file, /tensor "nope" is not in this file/);
});

// ------------------------------------------------------------------------------------------------------------
// Malformed files

const ok = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };

test('missing file', async (t) => {
  const file = path.join(await tmpDir(), 'absent.safetensors');
  await rejectsCheckpoint(t, readSafetensors(file), file, /file not found/);
});

test('file shorter than 8 bytes', async (t) => {
  const file = await writeRaw('short.safetensors', Buffer.from([1, 2, 3]));
  await rejectsCheckpoint(t, readSafetensors(file), file, /too short/);
});

test('header length past EOF, including absurd lengths', async (t) => {
  const file = await writeRaw('len.safetensors', rawFile({ a: ok }, Buffer.alloc(8), 1000n));
  await rejectsCheckpoint(t, readSafetensors(file), file, /header length 1000 runs past the end of the file/);
  const huge = await writeRaw('huge.safetensors', rawFile({ a: ok }, Buffer.alloc(8), 2n ** 63n));
  await rejectsCheckpoint(t, readSafetensorsHeader(huge), huge, /header length 9223372036854775808 runs past/);
});

test('header that is not JSON or not an object', async (t) => {
  const bad = await writeRaw('bad.safetensors', rawFile('{"a": {"dtype": ', Buffer.alloc(8)));
  await rejectsCheckpoint(t, readSafetensors(bad), bad, /header is not valid JSON/);
  const arr = await writeRaw('arr.safetensors', rawFile('[1,2]'));
  await rejectsCheckpoint(t, readSafetensors(arr), arr, /must be a JSON object/);
  const utf = await writeRaw('utf.safetensors', rawFile(Buffer.from([0x7b, 0xff, 0x7d]).toString('latin1')));
  await t.throwsAsync(readSafetensors(utf), { instanceOf: CheckpointError });
});

test('unsupported dtype', async (t) => {
  const file = await writeRaw('i64.safetensors', rawFile({ ids: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, Buffer.alloc(8)));
  await rejectsCheckpoint(t, readSafetensors(file), file, /unsupported dtype I64 for tensor "ids"/);
  const i8 = await writeRaw('i8.safetensors', rawFile({ q: { dtype: 'I8', shape: [8], data_offsets: [0, 8] } }, Buffer.alloc(8)));
  await rejectsCheckpoint(t, readSafetensors(i8), i8, /unsupported dtype I8 for tensor "q"/);
});

test('bad shapes and offsets', async (t) => {
  for (const shape of [[-1], [1.5], '2', [2, null]]) {
    const file = await writeRaw('shape.safetensors', rawFile({ a: { ...ok, shape } }, Buffer.alloc(8)));
    await rejectsCheckpoint(t, readSafetensors(file), file, /shape of tensor "a" must be an array of non-negative integers/);
  }
  for (const data_offsets of [[8, 0], [0], [0, 8, 9], ['0', '8'], [-8, 0]]) {
    const file = await writeRaw('off.safetensors', rawFile({ a: { ...ok, data_offsets } }, Buffer.alloc(8)));
    await rejectsCheckpoint(t, readSafetensors(file), file, /data_offsets of tensor "a" must be two integers/);
  }
});

test('truncated file (tensor ends past the buffer)', async (t) => {
  const full = rawFile({ a: ok, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }, Buffer.alloc(16));
  const file = await writeRaw('trunc.safetensors', full.subarray(0, full.length - 3));
  await rejectsCheckpoint(t, readSafetensors(file), file, /truncated file: tensor "b" ends at byte 16 .* only 13 bytes/);
});

test('byte size mismatch', async (t) => {
  const file = await writeRaw('size.safetensors', rawFile({ a: { dtype: 'F16', shape: [2, 3], data_offsets: [0, 8] } }, Buffer.alloc(8)));
  await rejectsCheckpoint(t, readSafetensors(file), file, /byte size mismatch for tensor "a".*8 bytes.*needs 12 bytes/);
});

test('overlapping tensors', async (t) => {
  const file = await writeRaw(
    'overlap.safetensors',
    rawFile({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 12] }, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }, Buffer.alloc(16)),
  );
  await rejectsCheckpoint(t, readSafetensors(file), file, /overlapping tensors: "a" \[0, 12\] and "b" \[8, 16\]/);
});

test('metadata must be strings', async (t) => {
  const file = await writeRaw('meta.safetensors', rawFile({ __metadata__: { total: 3 }, a: ok }, Buffer.alloc(8)));
  await rejectsCheckpoint(t, readSafetensors(file), file, /"__metadata__" value for "total" must be a string/);
});

test('writer rejects data that does not match the shape, and leaves nothing behind', async (t) => {
  const dir = await tmpDir();
  const file = path.join(dir, 'w.safetensors');
  await rejectsCheckpoint(t, writeSafetensors(file, { a: { shape: [2, 2], data: new Float32Array(3) } }), file, /has 3 values but shape \[2, 2\] needs 4/);
  t.deepEqual(await fsp.readdir(dir), []);
});

// ------------------------------------------------------------------------------------------------------------
// Sharded files

test('sharded checkpoints: all, subset, bad index', async (t) => {
  const dir = await tmpDir();
  await writeSafetensors(path.join(dir, 'model-00001-of-00002.safetensors'), { a: { shape: [2], data: new Float32Array([1, 2]) } });
  await writeSafetensors(path.join(dir, 'model-00002-of-00002.safetensors'), {
    b: { shape: [1], data: new Float32Array([3]) },
    c: { shape: [1], data: new Float32Array([4]) },
  }, { dtype: 'F16' });
  await fsp.writeFile(
    path.join(dir, 'model.safetensors.index.json'),
    JSON.stringify({
      metadata: { total_size: 12 },
      weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors', c: 'model-00002-of-00002.safetensors' },
    }),
  );
  const all = await readShardedSafetensors(dir);
  t.deepEqual([...all.tensors.keys()].sort(), ['a', 'b', 'c']);
  t.deepEqual([...all.tensors.get('a')!.data], [1, 2]);
  t.is(all.tensors.get('c')!.dtype, 'F16');
  t.deepEqual([...all.tensors.get('c')!.data], [4]);
  t.is(all.metadata['total_size'], '12');

  const sub = await readShardedSafetensors(dir, { names: ['b'] });
  t.deepEqual([...sub.tensors.keys()], ['b']);

  const evil = await tmpDir();
  const index = path.join(evil, 'model.safetensors.index.json');
  await fsp.writeFile(index, JSON.stringify({ weight_map: { a: '../model-00001-of-00002.safetensors' } }));
  await rejectsCheckpoint(t, readShardedSafetensors(evil), index, /must be a file name in the same directory/);
});

// ------------------------------------------------------------------------------------------------------------
// Fixture

test('tiny-gpt2 fixture: names and shapes follow its config, values match raw bytes', async (t) => {
  const config = JSON.parse(await fsp.readFile(path.join(FIXTURE, 'config.json'), 'utf8')) as Record<string, number>;
  const d = config['n_embd']!;
  const inner = 4 * d;
  const expected = new Map<string, number[]>([
    ['transformer.wte.weight', [config['vocab_size']!, d]],
    ['transformer.wpe.weight', [config['n_positions']!, d]],
    ['transformer.ln_f.weight', [d]],
    ['transformer.ln_f.bias', [d]],
  ]);
  for (let i = 0; i < config['n_layer']!; i++) {
    const p = `transformer.h.${i}.`;
    for (const [n, s] of [
      ['ln_1.weight', [d]], ['ln_1.bias', [d]], ['attn.c_attn.weight', [d, 3 * d]], ['attn.c_attn.bias', [3 * d]],
      ['attn.c_proj.weight', [d, d]], ['attn.c_proj.bias', [d]], ['ln_2.weight', [d]], ['ln_2.bias', [d]],
      ['mlp.c_fc.weight', [d, inner]], ['mlp.c_fc.bias', [inner]], ['mlp.c_proj.weight', [inner, d]], ['mlp.c_proj.bias', [d]],
    ] as [string, number[]][]) {
      expected.set(p + n, s);
    }
  }
  const file = path.join(FIXTURE, 'model.safetensors');
  const st = await readSafetensors(file);
  t.is(st.tensors.size, expected.size);
  for (const [name, shape] of expected) {
    const tensor = st.tensors.get(name);
    t.truthy(tensor, name);
    t.deepEqual(tensor!.shape, shape, name);
    t.is(tensor!.data.length, shape.reduce((a, b) => a * b, 1));
  }
  const bytes = await fsp.readFile(file);
  const { n, header } = parseRaw(bytes);
  const entry = header['transformer.h.1.mlp.c_fc.weight']!;
  const probe = st.tensors.get('transformer.h.1.mlp.c_fc.weight')!.data;
  for (const i of [0, 1, 777, probe.length - 1]) {
    t.is(probe[i], bytes.readFloatLE(8 + n + entry.data_offsets[0]! + 4 * i));
  }
});
