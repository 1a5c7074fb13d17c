import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseModelConfig } from '../lib/io/familyConfig.js';
import { checkFitsBackend, estimateLoad, WASM_HEAP_BYTES } from '../lib/model/memory.js';
import { loadModel } from '../lib/loadModel.js';
import { initBackend } from '../lib/backend.js';

// Published parameter counts (model cards / the Pythia paper), an independent check of the per-family layouts.
const GPT2 = { model_type: 'gpt2', n_layer: 12, n_embd: 768, n_head: 12, n_positions: 1024, vocab_size: 50257 };
const GPT2_XL = { ...GPT2, n_layer: 48, n_embd: 1600, n_head: 25 };
const PYTHIA = (L: number, d: number, H: number) => ({
  model_type: 'gpt_neox', num_hidden_layers: L, hidden_size: d, num_attention_heads: H, intermediate_size: 4 * d,
  vocab_size: 50304, max_position_embeddings: 2048, rotary_pct: 0.25, tie_word_embeddings: false,
});
const GPTJ = { model_type: 'gptj', n_layer: 28, n_embd: 4096, n_head: 16, n_positions: 2048, rotary_dim: 64, vocab_size: 50400 };
const TINYLLAMA = {
  model_type: 'llama', num_hidden_layers: 22, hidden_size: 2048, num_attention_heads: 32, num_key_value_heads: 4,
  intermediate_size: 5632, vocab_size: 32000, max_position_embeddings: 2048,
};

test('parameter counts match the published ones for GPT-2, Pythia, GPT-J and TinyLlama', (t) => {
  const count = (json: object) => estimateLoad(parseModelConfig(json, 'c.json')).params;
  t.is(count(GPT2), 124_439_808);
  t.is(count(GPT2_XL), 1_557_611_200);
  t.is(count(PYTHIA(12, 768, 12)), 162_322_944);
  t.is(count(PYTHIA(24, 1024, 16)), 405_334_016);
  // GPT-J's card says 6,053,381,344 (counted on the JAX original); HF's GPTJForCausalLM holds, by hand:
  // wte V·d, per layer 2d (ln_1) + 4d² (q,k,v,out) + (dI + I) (fc_in) + (Id + d) (fc_out), ln_f 2d, lm_head V·d + V.
  const [V, d, I, L] = [50400, 4096, 16384, 28];
  t.is(count(GPTJ), V * d + L * (2 * d + 4 * d * d + d * I + I + I * d + d) + 2 * d + V * d + V);
  t.is(count(GPTJ), 6_050_882_784);
  t.is(count(TINYLLAMA), 1_100_048_384);
});

test('WASM: GPT-2 small and Pythia-410m fit; GPT-2 XL and GPT-J are refused with the size and the alternative', (t) => {
  const cfg = (json: object) => parseModelConfig(json, 'c.json');
  t.notThrows(() => checkFitsBackend(cfg(GPT2), 'wasm', 'gpt2'));
  t.notThrows(() => checkFitsBackend(cfg(PYTHIA(24, 1024, 16)), 'wasm', 'pythia-410m'));
  t.true(estimateLoad(cfg(PYTHIA(24, 1024, 16))).totalBytes < WASM_HEAP_BYTES);
  const err = t.throws(() => checkFitsBackend(cfg(GPTJ), 'wasm', 'gpt-j-6b'));
  t.regex(err!.message, /gpt-j-6b: this gptj model needs about 23\.\d\d GiB/);
  t.regex(err!.message, /6051M parameters × 4 bytes = 22\.54 GiB/);
  t.regex(err!.message, /@tensorflow\/tfjs-node/);
  t.throws(() => checkFitsBackend(cfg(GPT2_XL), 'wasm', 'gpt2-xl'), { message: /needs about 6\.\d\d GiB/ });
  // Native backends are bounded by the machine, not by a 32-bit heap.
  t.notThrows(() => checkFitsBackend(cfg(GPTJ), 'tensorflow', 'gpt-j-6b'));
});

test('loadModel refuses an oversized model before reading any weight', async (t) => {
  const backend = await initBackend();
  if (backend !== 'wasm') {
    t.pass(`backend is ${backend}: no 4 GiB heap limit to test`);
    return;
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'rome-ts-mem-'));
  try {
    // config.json only: the refusal must come before the missing weights are noticed.
    await writeFile(path.join(dir, 'config.json'), JSON.stringify(GPTJ));
    await t.throwsAsync(() => loadModel(dir), { message: /needs about 23\.\d\d GiB .*WASM backend's heap cannot exceed 4\.00 GiB/ });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a hub model too large for WASM fails after config.json, before any weight is downloaded', async (t) => {
  const backend = await initBackend();
  if (backend !== 'wasm') {
    t.pass(`backend is ${backend}: no 4 GiB heap limit to test`);
    return;
  }
  const { startFakeHub } = await import('./helpers/server.js');
  const src = await mkdtemp(path.join(tmpdir(), 'rome-ts-memhub-src-'));
  const cache = await mkdtemp(path.join(tmpdir(), 'rome-ts-memhub-cache-'));
  await writeFile(path.join(src, 'config.json'), JSON.stringify(GPTJ));
  await writeFile(path.join(src, 'model.safetensors'), Buffer.alloc(16));
  const hub = await startFakeHub({ 'EleutherAI/gpt-j-6B': src });
  try {
    await t.throwsAsync(() => loadModel('EleutherAI/gpt-j-6B', { endpoint: hub.endpoint, cacheDir: cache, token: null }), {
      message: /EleutherAI\/gpt-j-6B: this gptj model needs about 23\.\d\d GiB/,
    });
    t.deepEqual(hub.requests.map((r) => r.file), ['config.json']);
  } finally {
    await hub.close();
    await rm(src, { recursive: true, force: true });
    await rm(cache, { recursive: true, force: true });
  }
});
