import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseModelConfig } from '../lib/io/familyConfig.js';
import { CheckpointError } from '../lib/io/errors.js';
import { mlpProjParams, loadRomeHparams } from '../lib/rome/index.js';
import { familyDir } from './helpers/families.js';

const read = (name: string) => JSON.parse(fs.readFileSync(path.join(familyDir(name), 'config.json'), 'utf8')) as Record<string, unknown>;

test('each family config reads as its Hugging Face class reads it', (t) => {
  const neox = parseModelConfig(read('tiny-gpt-neox'), 'c');
  t.like(neox, { modelType: 'gpt_neox', nLayer: 3, nEmbd: 32, nHead: 4, nInner: 64, activationFunction: 'gelu', tieWordEmbeddings: false });
  t.like(neox.arch!, { norm: 'layernorm', headDim: 8, rotaryDim: 4, rotaryStyle: 'half', residual: 'two_norms', qkvBias: true, gatedMlp: false });
  t.is(parseModelConfig({ ...read('tiny-gpt-neox'), use_parallel_residual: false }, 'c').arch!.residual, 'sequential');
  const llama = parseModelConfig(read('tiny-llama'), 'c');
  t.like(llama.arch!, { norm: 'rmsnorm', nKvHead: 2, rotaryDim: 8, ropeTheta: 10000, gatedMlp: true, qkvBias: false, outBias: false, mlpBias: false });
  t.is(llama.layerNormEpsilon, 1e-6);
  const qwen = parseModelConfig(read('tiny-qwen2'), 'c');
  t.like(qwen, { modelType: 'qwen2', tieWordEmbeddings: true });
  t.like(qwen.arch!, { nKvHead: 1, qkvBias: true, outBias: false, ropeTheta: 1e6, slidingWindow: null });
  t.is(parseModelConfig(read('tiny-mistral-bf16'), 'c').arch!.slidingWindow, 4);
  const gptj = parseModelConfig(read('tiny-gptj'), 'c');
  t.like(gptj, { nInner: 128, activationFunction: 'gelu_new' });
  t.like(gptj.arch!, { rotaryDim: 4, rotaryStyle: 'interleaved', residual: 'one_norm', lmHeadBias: true });
});

test('unsupported or inconsistent family configs fail naming the file and field', (t) => {
  const bad = (json: Record<string, unknown>, re: RegExp) => {
    const err = t.throws(() => parseModelConfig(json, '/m/config.json'), { instanceOf: CheckpointError });
    t.true(err!.message.startsWith('/m/config.json: '), err!.message);
    t.regex(err!.message, re);
  };
  bad({ ...read('tiny-llama'), model_type: 'falcon' }, /"model_type" has unsupported value "falcon" \(supported: gpt2, gpt_neox, llama, mistral, qwen2, gptj\)/);
  bad({ ...read('tiny-llama'), num_key_value_heads: 3 }, /"num_key_value_heads" \(3\) must divide num_attention_heads \(4\)/);
  bad({ ...read('tiny-llama'), rope_scaling: { rope_type: 'llama3', factor: 8 } }, /"rope_scaling" .* is not supported/);
  bad({ ...read('tiny-gpt-neox'), rotary_pct: 2 }, /"rotary_pct" must be in \(0, 1\]/);
  bad({ ...read('tiny-gptj'), rotary_dim: 3 }, /rotary dimension 3 must be even/);
  bad({ ...read('tiny-llama'), hidden_act: 'swish' }, /"hidden_act" has unsupported value "swish"/);
  bad({ ...read('tiny-llama'), hidden_size: undefined }, /"hidden_size" is missing/);
});

test('the rewritten module per family, and the official GPT-J hparams name the same one', (t) => {
  t.deepEqual(mlpProjParams(2, parseModelConfig(read('tiny-gpt-neox'), 'c')), { weight: 'layers.2.mlp.dense_4h_to_h.weight', bias: 'layers.2.mlp.dense_4h_to_h.bias' });
  t.deepEqual(mlpProjParams(2, parseModelConfig(read('tiny-llama'), 'c')), { weight: 'layers.2.mlp.down_proj.weight', bias: null });
  t.deepEqual(mlpProjParams(2, parseModelConfig(read('tiny-gptj'), 'c')), { weight: 'h.2.mlp.fc_out.weight', bias: 'h.2.mlp.fc_out.bias' });
  const hp = loadRomeHparams('gpt-j-6B');
  t.is(hp.layer, 5);
  // The official file says rewrite_module_tmp "transformer.h.{}.mlp.fc_out"; without the model prefix:
  const gptj = parseModelConfig({ model_type: 'gptj', n_layer: 28, n_embd: 4096, n_head: 16, rotary_dim: 64, vocab_size: 50400 }, 'c');
  t.is(mlpProjParams(hp.layer, gptj).weight, 'transformer.h.{}.mlp.fc_out'.replace('transformer.', '').replace('{}', '5') + '.weight');
});
