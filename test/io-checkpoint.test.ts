import test from 'ava';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CheckpointError,
  lmHeadWeight,
  readCheckpoint,
  writeCheckpoint,
  type CheckpointTensor,
} from '../lib/io/checkpoint.js';
import { parseGPT2Config, toHFConfig, type GPT2Config } from '../lib/io/config.js';
import {
  f16BitsToF32,
  f32ToF16Bits,
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
  type SafetensorsWriteTensor,
} from '../lib/io/safetensors.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const FIXTURE = path.join(here, 'fixtures', 'tiny-gpt2');
const FIXTURE_CONFIG = JSON.parse(await fsp.readFile(path.join(FIXTURE, 'config.json'), 'utf8')) as Record<string, unknown>;
/** The fixture's tensors as stored (with the `transformer.` prefix), read once. */
const FIXTURE_TENSORS = (await readSafetensors(path.join(FIXTURE, 'model.safetensors'))).tensors;

async function tmpDir(): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), 'rome-ts-ckpt-'));
}

/** Writes a checkpoint directory by hand: config object + raw tensors (no validation on the way in). */
async function handMade(
  config: Record<string, unknown>,
  tensors: Map<string, SafetensorsWriteTensor>,
): Promise<string> {
  const dir = await tmpDir();
  await fsp.writeFile(path.join(dir, 'config.json'), JSON.stringify(config));
  await writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  return dir;
}

function fixtureTensors(): Map<string, SafetensorsWriteTensor> {
  return new Map([...FIXTURE_TENSORS].map(([n, t]) => [n, { shape: t.shape, data: t.data }]));
}

function withoutPrefix(m: Map<string, SafetensorsWriteTensor>): Map<string, SafetensorsWriteTensor> {
  return new Map([...m].map(([n, t]) => [n.replace(/^transformer\./, ''), t]));
}

async function rejects(
  t: import('ava').ExecutionContext,
  promise: Promise<unknown>,
  pathPart: string,
  problem: RegExp,
): Promise<void> {
  const err = await t.throwsAsync(promise, { instanceOf: CheckpointError });
  t.true(err!.message.includes(pathPart), `message names ${pathPart}: ${err!.message}`);
  t.regex(err!.message, problem);
}

// ------------------------------------------------------------------------------------------------------------
// config.json

test('parseGPT2Config reads the fixture config and fills defaults', (t) => {
  const cfg = parseGPT2Config(FIXTURE_CONFIG, 'fixture/config.json');
  t.deepEqual(cfg, {
    modelType: 'gpt2',
    nLayer: 3,
    nEmbd: 48,
    nHead: 4,
    nPositions: 32,
    nInner: 192,
    layerNormEpsilon: 1e-5,
    activationFunction: 'gelu_new',
    vocabSize: 97,
    bosTokenId: 96,
    eosTokenId: 96,
    tieWordEmbeddings: true,
  });
  const minimal = parseGPT2Config({ n_layer: 2, n_embd: 8, n_head: 2, n_ctx: 16, vocab_size: 10, n_inner: 20 }, 'c.json');
  t.is(minimal.nPositions, 16);
  t.is(minimal.nInner, 20);
  t.is(minimal.layerNormEpsilon, 1e-5);
  t.is(minimal.activationFunction, 'gelu_new');
  t.is(minimal.bosTokenId, null);
  t.true(minimal.tieWordEmbeddings);
  t.deepEqual(parseGPT2Config(toHFConfig(cfg), 'x'), cfg);
});

test('parseGPT2Config errors name the file and the field', (t) => {
  const base = { ...FIXTURE_CONFIG };
  const bad = (patch: Record<string, unknown>, re: RegExp): void => {
    const json: Record<string, unknown> = { ...base, ...patch };
    for (const [k, v] of Object.entries(patch)) if (v === undefined) delete json[k];
    const err = t.throws(() => parseGPT2Config(json, '/some/dir/config.json'), { instanceOf: CheckpointError });
    t.true(err!.message.startsWith('/some/dir/config.json: '), err!.message);
    t.regex(err!.message, re);
  };
  bad({ n_head: undefined }, /"n_head" is missing/);
  bad({ n_layer: '3' }, /"n_layer" must be a positive integer/);
  bad({ n_positions: undefined, n_ctx: undefined }, /"n_positions" is missing \(and so is "n_ctx"\)/);
  bad({ n_head: 5 }, /"n_embd" \(48\) must be divisible by n_head \(5\)/);
  bad({ activation_function: 'swish' }, /"activation_function" has unsupported value "swish"/);
  bad({ model_type: 'llama' }, /"model_type" must be "gpt2"/);
  bad({ tie_word_embeddings: 'yes' }, /"tie_word_embeddings" must be true or false/);
  bad({ layer_norm_epsilon: -1 }, /"layer_norm_epsilon" must be a positive number/);
  t.throws(() => parseGPT2Config([1], 'c.json'), { instanceOf: CheckpointError, message: /must be a JSON object/ });
});

// ------------------------------------------------------------------------------------------------------------
// Reading

test('the tiny-gpt2 fixture loads with canonical names and tied head', async (t) => {
  const ckpt = await readCheckpoint(FIXTURE);
  t.is(ckpt.dir, path.resolve(FIXTURE));
  t.is(ckpt.config.nLayer, 3);
  t.is(ckpt.tokenizerPath, null);
  t.is(ckpt.weights.size, 2 + 12 * 3 + 2);
  t.false(ckpt.weights.has('lm_head.weight'));
  t.deepEqual(ckpt.weights.get('wte.weight')!.shape, [97, 48]);
  t.deepEqual(ckpt.weights.get('h.2.attn.c_attn.weight')!.shape, [48, 144]);
  t.deepEqual(ckpt.weights.get('h.0.mlp.c_proj.weight')!.shape, [192, 48]);
  t.is(lmHeadWeight(ckpt), ckpt.weights.get('wte.weight')!);
  for (const [name, tensor] of ckpt.weights) {
    t.deepEqual(tensor.data, FIXTURE_TENSORS.get(`transformer.${name}`)!.data, name);
  }
});

test('missing tensor', async (t) => {
  const tensors = fixtureTensors();
  tensors.delete('transformer.h.1.attn.c_proj.weight');
  const dir = await handMade(FIXTURE_CONFIG, tensors);
  await rejects(t, readCheckpoint(dir), path.join(dir, 'model.safetensors'), /missing tensor "h\.1\.attn\.c_proj\.weight" \(expected shape \[48, 48\]\)/);
});

test('wrong shape', async (t) => {
  const tensors = fixtureTensors();
  tensors.set('transformer.h.1.mlp.c_fc.weight', { shape: [48, 100], data: new Float32Array(4800) });
  const dir = await handMade(FIXTURE_CONFIG, tensors);
  await rejects(t, readCheckpoint(dir), dir, /tensor "h\.1\.mlp\.c_fc\.weight" has shape \[48, 100\] but the config expects \[48, 192\]/);
});

test('config missing a field', async (t) => {
  const config = { ...FIXTURE_CONFIG };
  delete config['n_head'];
  const dir = await handMade(config, fixtureTensors());
  await rejects(t, readCheckpoint(dir), path.join(dir, 'config.json'), /"n_head" is missing/);
});

test('config.json that is not JSON, missing directory, no weights', async (t) => {
  const dir = await tmpDir();
  await fsp.writeFile(path.join(dir, 'config.json'), '{ n_layer: 3');
  await rejects(t, readCheckpoint(dir), path.join(dir, 'config.json'), /not valid JSON/);
  await rejects(t, readCheckpoint(path.join(dir, 'nope')), 'nope', /checkpoint directory not found/);
  await fsp.writeFile(path.join(dir, 'config.json'), JSON.stringify(FIXTURE_CONFIG));
  await fsp.writeFile(path.join(dir, 'pytorch_model.bin'), 'x');
  await rejects(t, readCheckpoint(dir), dir, /no model\.safetensors or model\.safetensors\.index\.json.*pytorch_model\.bin/);
});

test('names with and without the transformer. prefix load the same; buffers and unknown tensors are ignored', async (t) => {
  const plain = withoutPrefix(fixtureTensors());
  plain.set('h.0.attn.bias', { shape: [1, 1, 32, 32], data: new Float32Array(1024) });
  plain.set('h.0.attn.masked_bias', { shape: [], data: new Float32Array([-1e4]) });
  plain.set('score.extra', { shape: [2], data: new Float32Array(2) });
  const ckpt = await readCheckpoint(await handMade(FIXTURE_CONFIG, plain));
  const ref = await readCheckpoint(FIXTURE);
  t.deepEqual([...ckpt.weights.keys()].sort(), [...ref.weights.keys()].sort());
  for (const [name, tensor] of ref.weights) t.deepEqual(ckpt.weights.get(name)!.data, tensor.data);

  const both = fixtureTensors();
  both.set('ln_f.bias', both.get('transformer.ln_f.bias')!);
  await rejects(t, readCheckpoint(await handMade(FIXTURE_CONFIG, both)), 'model.safetensors', /stored twice, as "(transformer\.)?ln_f\.bias" and "(transformer\.)?ln_f\.bias"/);
});

test('weights of layers beyond n_layer are an error that names them', async (t) => {
  const tensors = fixtureTensors();
  tensors.set('transformer.h.3.ln_1.weight', { shape: [48], data: new Float32Array(48) });
  tensors.set('transformer.h.3.ln_1.bias', { shape: [48], data: new Float32Array(48) });
  const dir = await handMade(FIXTURE_CONFIG, tensors);
  await rejects(t, readCheckpoint(dir), dir, /layers >= n_layer \(3\).*transformer\.h\.3\.ln_1\.weight/);
});

test('tied vs separate lm_head', async (t) => {
  const head = new Float32Array(97 * 48).map((_, i) => Math.sin(i));
  const withHead = fixtureTensors();
  withHead.set('lm_head.weight', { shape: [97, 48], data: head });

  // Untied config: the separate head is loaded and used.
  const untied = await readCheckpoint(await handMade({ ...FIXTURE_CONFIG, tie_word_embeddings: false }, withHead));
  t.false(untied.config.tieWordEmbeddings);
  t.deepEqual(untied.weights.get('lm_head.weight')!.data, head);
  t.is(lmHeadWeight(untied), untied.weights.get('lm_head.weight')!);

  // Tied config (default): the stored head is not used, wte is.
  const tied = await readCheckpoint(await handMade(FIXTURE_CONFIG, withHead));
  t.false(tied.weights.has('lm_head.weight'));
  t.is(lmHeadWeight(tied), tied.weights.get('wte.weight')!);

  // Untied config without a head: falls back to wte.
  const fallback = await readCheckpoint(await handMade({ ...FIXTURE_CONFIG, tie_word_embeddings: false }, fixtureTensors()));
  t.is(lmHeadWeight(fallback), fallback.weights.get('wte.weight')!);

  const badHead = fixtureTensors();
  badHead.set('lm_head.weight', { shape: [96, 48], data: new Float32Array(96 * 48) });
  const dir = await handMade({ ...FIXTURE_CONFIG, tie_word_embeddings: false }, badHead);
  await rejects(t, readCheckpoint(dir), dir, /"lm_head\.weight" has shape \[96, 48\] but the config expects \[97, 48\]/);
});

test('sharded checkpoint directory', async (t) => {
  const dir = await tmpDir();
  await fsp.writeFile(path.join(dir, 'config.json'), JSON.stringify(FIXTURE_CONFIG));
  const all = fixtureTensors();
  const names = [...all.keys()];
  const weightMap: Record<string, string> = {};
  for (const [i, shard] of ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'].entries()) {
    const part = new Map(names.filter((_, j) => j % 2 === i).map((n) => [n, all.get(n)!]));
    await writeSafetensors(path.join(dir, shard), part);
    for (const n of part.keys()) weightMap[n] = shard;
  }
  await fsp.writeFile(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  const ckpt = await readCheckpoint(dir);
  const ref = await readCheckpoint(FIXTURE);
  t.is(ckpt.weights.size, ref.weights.size);
  for (const [name, tensor] of ref.weights) t.deepEqual(ckpt.weights.get(name)!.data, tensor.data);
});

// ------------------------------------------------------------------------------------------------------------
// Writing

test('writeCheckpoint → readCheckpoint round trip (F32 exact, HF names, tokenizer, extra files)', async (t) => {
  const ref = await readCheckpoint(FIXTURE);
  const dir = path.join(await tmpDir(), 'out');
  const tokenizer = { model: { type: 'BPE' }, added_tokens: [] };
  await writeCheckpoint(dir, ref.config, ref.weights, { tokenizerJson: tokenizer, extraFiles: { 'README.md': '# tiny\n' } });
  const back = await readCheckpoint(dir);
  t.deepEqual(back.config, ref.config);
  t.is(back.tokenizerPath, path.join(dir, 'tokenizer.json'));
  t.deepEqual(JSON.parse(await fsp.readFile(back.tokenizerPath!, 'utf8')), tokenizer);
  t.is(await fsp.readFile(path.join(dir, 'README.md'), 'utf8'), '# tiny\n');
  t.is(back.weights.size, ref.weights.size);
  for (const [name, tensor] of ref.weights) t.deepEqual(back.weights.get(name)!.data, tensor.data, name);

  // Stored the way Hugging Face's GPT2LMHeadModel saves: prefixed names, tied head omitted, format metadata.
  const header = await readSafetensorsHeader(path.join(dir, 'model.safetensors'));
  t.true(header.entries.has('transformer.h.0.attn.c_attn.weight'));
  t.false(header.entries.has('lm_head.weight'));
  t.is(header.metadata['format'], 'pt');
  const cfg = JSON.parse(await fsp.readFile(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  t.is(cfg['n_head'], 4);
  t.is(cfg['model_type'], 'gpt2');
  t.deepEqual((await fsp.readdir(dir)).sort(), ['README.md', 'config.json', 'model.safetensors', 'tokenizer.json']);
});

test('writeCheckpoint with F16 and an untied head', async (t) => {
  const ref = await readCheckpoint(FIXTURE);
  const config: GPT2Config = { ...ref.config, tieWordEmbeddings: false };
  const weights = new Map<string, CheckpointTensor>(ref.weights);
  const head = new Float32Array(97 * 48).map((_, i) => Math.cos(i) * 3);
  weights.set('lm_head.weight', { shape: [97, 48], data: head });
  const dir = await tmpDir();
  await writeCheckpoint(dir, config, weights, { dtype: 'F16' });
  const back = await readCheckpoint(dir);
  t.false(back.config.tieWordEmbeddings);
  const halfOf = (x: number): number => f16BitsToF32(f32ToF16Bits(x));
  const got = back.weights.get('lm_head.weight')!.data;
  for (const i of [0, 1, 100, head.length - 1]) t.is(got[i], halfOf(head[i]!));
  const wte = ref.weights.get('wte.weight')!.data;
  t.is(back.weights.get('wte.weight')!.data[5], halfOf(wte[5]!));
  t.is((await readSafetensorsHeader(path.join(dir, 'model.safetensors'))).entries.get('lm_head.weight')!.dtype, 'F16');
});

test('writeCheckpoint validates its input', async (t) => {
  const ref = await readCheckpoint(FIXTURE);
  const dir = await tmpDir();
  await rejects(t, writeCheckpoint(dir, { ...ref.config, tieWordEmbeddings: false }, ref.weights), dir, /tieWordEmbeddings false but no lm_head\.weight/);
  const extra = new Map(ref.weights);
  extra.set('h.9.ln_1.weight', { shape: [48], data: new Float32Array(48) });
  await rejects(t, writeCheckpoint(dir, ref.config, extra), dir, /unknown weight "h\.9\.ln_1\.weight"/);
  const missing = new Map(ref.weights);
  missing.delete('ln_f.bias');
  await rejects(t, writeCheckpoint(dir, ref.config, missing), dir, /missing tensors "ln_f\.bias"/);
  const wrongHead = new Map(ref.weights);
  wrongHead.set('lm_head.weight', { shape: [97, 48], data: new Float32Array(97 * 48) });
  await rejects(t, writeCheckpoint(dir, ref.config, wrongHead), dir, /lm_head\.weight differs from wte\.weight/);
  t.deepEqual(await fsp.readdir(dir), []);
});
