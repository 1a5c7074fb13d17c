#!/usr/bin/env python3
"""Writes the tiny random checkpoints of test/fixtures/tiny-{gpt-neox,llama,qwen2,mistral,gptj}[-f16|-bf16] and
their expected.json: logits and per-layer states from a float64 numpy reference written from the Hugging Face
modeling code's semantics (not from rome-ts), so the TypeScript forward is checked against an independent source.

Usage: python3 scripts/make-family-fixtures.py [out_dir]   (default test/fixtures; needs numpy only)
"""
import json
import math
import os
import struct
import sys

import numpy as np

IDS = [3, 17, 42, 5, 60, 17, 9]  # one prompt of 7 tokens, all < vocab 64
V = 64


# ---------------------------------------------------------------- safetensors writing (F32 / F16 / BF16)

def bf16_bits(a32):
    """float32 array -> uint16 bfloat16 bit patterns, round to nearest even."""
    bits = np.ascontiguousarray(a32, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounding = ((bits >> 16) & 1) + 0x7FFF
    return ((bits + rounding) >> 16).astype(np.uint16)


def bf16_value(bits16):
    return (bits16.astype(np.uint32) << 16).view(np.float32)


def quantize(a, dtype):
    """The values a checkpoint of that dtype holds (float64), and its stored bytes."""
    a32 = np.asarray(a, dtype=np.float32)
    if dtype == 'F32':
        return a32.astype(np.float64), a32.tobytes()
    if dtype == 'F16':
        h = a32.astype(np.float16)
        return h.astype(np.float64), h.tobytes()
    b = bf16_bits(a32)
    return bf16_value(b).astype(np.float64), b.tobytes()


def write_safetensors(path, tensors):
    """tensors: list of (name, dtype, shape, bytes)."""
    header, offset, blobs = {'__metadata__': {'format': 'pt'}}, 0, []
    for name, dtype, shape, raw in tensors:
        header[name] = {'dtype': dtype, 'shape': list(shape), 'data_offsets': [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * ((8 - len(text) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


class Weights:
    """Random weights, stored in the checkpoint's dtype; `get` returns what the checkpoint holds, in float64."""

    def __init__(self, seed, dtype):
        self.rng = np.random.default_rng(seed)
        self.dtype = dtype
        self.values = {}
        self.stored = []

    def add(self, name, shape, kind='w', scale=None):
        if kind == 'norm':
            a = 1.0 + 0.1 * self.rng.standard_normal(shape)
        elif kind == 'bias':
            a = 0.1 * self.rng.standard_normal(shape)
        else:
            fan_in = shape[-1] if len(shape) > 1 else 1
            a = (scale if scale is not None else 1.0 / math.sqrt(fan_in)) * self.rng.standard_normal(shape)
        vals, raw = quantize(a, self.dtype)
        self.values[name] = vals.reshape(shape)
        self.stored.append((name, self.dtype, shape, raw))
        return self.values[name]

    def buffer(self, name, array):
        """A non-weight tensor real checkpoints carry (rotary inv_freq, masked_bias): stored F32, never read."""
        a32 = np.asarray(array, dtype=np.float32)
        self.stored.append((name, 'F32', list(a32.shape), a32.tobytes()))

    def causal_mask(self, name, n):
        """The BOOL [1, 1, n, n] causal-mask buffer that converted Pythia / GPT-J safetensors carry."""
        m = np.tril(np.ones((n, n), dtype=np.uint8)).reshape(1, 1, n, n)
        self.stored.append((name, 'BOOL', list(m.shape), m.tobytes()))


# ---------------------------------------------------------------- float64 reference pieces

def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def rms_norm(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def gelu_erf(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def silu(x):
    return x / (1.0 + np.exp(-x))


def linear(x, w, b=None):
    """nn.Linear: w is [out, in] as stored."""
    y = x @ w.T
    return y if b is None else y + b


def rope(x, positions, rot, theta, interleaved):
    """x [H, T, hd]; rotates the first `rot` dims of each head. Pair j of frequency i:
    half style pairs (i, i + rot/2) (rotate_half); interleaved pairs (2i, 2i+1) (rotate_every_two)."""
    out = x.copy()
    for i in range(rot // 2):
        freq = theta ** (-2.0 * i / rot)
        a, b = (2 * i, 2 * i + 1) if interleaved else (i, i + rot // 2)
        for t, p in enumerate(positions):
            c, s = math.cos(p * freq), math.sin(p * freq)
            xa, xb = x[:, t, a].copy(), x[:, t, b].copy()
            out[:, t, a] = xa * c - xb * s
            out[:, t, b] = xb * c + xa * s
    return out


def attention(q, k, v, window=None):
    """q [H, T, hd], k/v [Hkv, T, hd]; query head h reads kv head h // (H / Hkv)."""
    H, T, hd = q.shape
    rep = H // k.shape[0]
    out = np.zeros_like(q)
    for h in range(H):
        kh, vh = k[h // rep], v[h // rep]
        scores = q[h] @ kh.T / math.sqrt(hd)
        for t in range(T):
            for s in range(T):
                if s > t or (window is not None and t - s >= window):
                    scores[t, s] = -np.inf
        scores -= scores.max(-1, keepdims=True)
        p = np.exp(scores)
        p /= p.sum(-1, keepdims=True)
        out[h] = p @ vh
    return out


def split_heads(x, n, hd):
    return x.reshape(x.shape[0], n, hd).transpose(1, 0, 2)


def merge_heads(x):
    return x.transpose(1, 0, 2).reshape(x.shape[1], -1)


# ---------------------------------------------------------------- families

def neox(w, c):
    d, H, L, I = c['hidden_size'], c['num_attention_heads'], c['num_hidden_layers'], c['intermediate_size']
    hd = d // H
    rot = int(hd * c['rotary_pct'])
    eps = c['layer_norm_eps']
    P = 'gpt_neox.'
    E = w.add(P + 'embed_in.weight', [V, d], scale=1.0)
    for l in range(L):
        p = f'{P}layers.{l}.'
        for n in ('input_layernorm', 'post_attention_layernorm'):
            w.add(p + n + '.weight', [d], 'norm')
            w.add(p + n + '.bias', [d], 'bias')
        w.add(p + 'attention.query_key_value.weight', [3 * d, d])
        w.add(p + 'attention.query_key_value.bias', [3 * d], 'bias')
        w.buffer(p + 'attention.rotary_emb.inv_freq', [10000 ** (-2 * i / rot) for i in range(rot // 2)])
        w.causal_mask(p + 'attention.bias', c['max_position_embeddings'])
        w.add(p + 'attention.dense.weight', [d, d])
        w.add(p + 'attention.dense.bias', [d], 'bias')
        w.add(p + 'mlp.dense_h_to_4h.weight', [I, d])
        w.add(p + 'mlp.dense_h_to_4h.bias', [I], 'bias')
        w.add(p + 'mlp.dense_4h_to_h.weight', [d, I])
        w.add(p + 'mlp.dense_4h_to_h.bias', [d], 'bias')
    w.add(P + 'final_layer_norm.weight', [d], 'norm')
    w.add(P + 'final_layer_norm.bias', [d], 'bias')
    w.add('embed_out.weight', [V, d], scale=0.5)
    g = w.values
    x = E[IDS]
    T = len(IDS)
    st = {'hidden': [], 'attn': [], 'mlp': [], 'key': []}
    for l in range(L):
        p = f'{P}layers.{l}.'
        h1 = layer_norm(x, g[p + 'input_layernorm.weight'], g[p + 'input_layernorm.bias'], eps)
        qkv = linear(h1, g[p + 'attention.query_key_value.weight'], g[p + 'attention.query_key_value.bias'])
        qkv = qkv.reshape(T, H, 3, hd)  # per head: q, k, v
        q, k, v = (qkv[:, :, i, :].transpose(1, 0, 2) for i in range(3))
        q = rope(q, range(T), rot, c['rotary_emb_base'], False)
        k = rope(k, range(T), rot, c['rotary_emb_base'], False)
        a = linear(merge_heads(attention(q, k, v)), g[p + 'attention.dense.weight'], g[p + 'attention.dense.bias'])
        if c['use_parallel_residual']:
            h2 = layer_norm(x, g[p + 'post_attention_layernorm.weight'], g[p + 'post_attention_layernorm.bias'], eps)
        else:
            h2 = layer_norm(x + a, g[p + 'post_attention_layernorm.weight'], g[p + 'post_attention_layernorm.bias'], eps)
        key = gelu_erf(linear(h2, g[p + 'mlp.dense_h_to_4h.weight'], g[p + 'mlp.dense_h_to_4h.bias']))
        m = linear(key, g[p + 'mlp.dense_4h_to_h.weight'], g[p + 'mlp.dense_4h_to_h.bias'])
        x = x + a + m
        for n, val in (('hidden', x), ('attn', a), ('mlp', m), ('key', key)):
            st[n].append(val)
    hf = layer_norm(x, g[P + 'final_layer_norm.weight'], g[P + 'final_layer_norm.bias'], eps)
    return hf @ g['embed_out.weight'].T, st


def llama(w, c):
    d, H, L, I = c['hidden_size'], c['num_attention_heads'], c['num_hidden_layers'], c['intermediate_size']
    Hkv = c['num_key_value_heads']
    hd = d // H
    eps = c['rms_norm_eps']
    qwen = c['model_type'] == 'qwen2'
    window = c.get('sliding_window') if c['model_type'] == 'mistral' else None
    P = 'model.'
    E = w.add(P + 'embed_tokens.weight', [V, d], scale=1.0)
    for l in range(L):
        p = f'{P}layers.{l}.'
        w.add(p + 'input_layernorm.weight', [d], 'norm')
        w.add(p + 'post_attention_layernorm.weight', [d], 'norm')
        for n, rows in (('q_proj', H * hd), ('k_proj', Hkv * hd), ('v_proj', Hkv * hd)):
            w.add(p + f'self_attn.{n}.weight', [rows, d])
            if qwen:
                w.add(p + f'self_attn.{n}.bias', [rows], 'bias')
        w.add(p + 'self_attn.o_proj.weight', [d, H * hd])
        w.add(p + 'mlp.gate_proj.weight', [I, d])
        w.add(p + 'mlp.up_proj.weight', [I, d])
        w.add(p + 'mlp.down_proj.weight', [d, I])
    w.add(P + 'norm.weight', [d], 'norm')
    if not c['tie_word_embeddings']:
        w.add('lm_head.weight', [V, d], scale=0.5)
    g = w.values
    x = E[IDS]
    T = len(IDS)
    st = {'hidden': [], 'attn': [], 'mlp': [], 'key': []}
    for l in range(L):
        p = f'{P}layers.{l}.'
        h1 = rms_norm(x, g[p + 'input_layernorm.weight'], eps)
        b = (lambda n: g[p + f'self_attn.{n}.bias']) if qwen else (lambda n: None)
        q = split_heads(linear(h1, g[p + 'self_attn.q_proj.weight'], b('q_proj')), H, hd)
        k = split_heads(linear(h1, g[p + 'self_attn.k_proj.weight'], b('k_proj')), Hkv, hd)
        v = split_heads(linear(h1, g[p + 'self_attn.v_proj.weight'], b('v_proj')), Hkv, hd)
        q = rope(q, range(T), hd, c['rope_theta'], False)
        k = rope(k, range(T), hd, c['rope_theta'], False)
        a = linear(merge_heads(attention(q, k, v, window)), g[p + 'self_attn.o_proj.weight'])
        x = x + a
        h2 = rms_norm(x, g[p + 'post_attention_layernorm.weight'], eps)
        key = silu(linear(h2, g[p + 'mlp.gate_proj.weight'])) * linear(h2, g[p + 'mlp.up_proj.weight'])
        m = linear(key, g[p + 'mlp.down_proj.weight'])
        x = x + m
        for n, val in (('hidden', x), ('attn', a), ('mlp', m), ('key', key)):
            st[n].append(val)
    head = g[P + 'embed_tokens.weight'] if c['tie_word_embeddings'] else g['lm_head.weight']
    return rms_norm(x, g[P + 'norm.weight'], eps) @ head.T, st


def gptj(w, c):
    d, H, L = c['n_embd'], c['n_head'], c['n_layer']
    I = c['n_inner'] or 4 * d
    hd = d // H
    eps = c['layer_norm_epsilon']
    P = 'transformer.'
    E = w.add(P + 'wte.weight', [V, d], scale=1.0)
    for l in range(L):
        p = f'{P}h.{l}.'
        w.add(p + 'ln_1.weight', [d], 'norm')
        w.add(p + 'ln_1.bias', [d], 'bias')
        for n in ('q_proj', 'k_proj', 'v_proj', 'out_proj'):
            w.add(p + f'attn.{n}.weight', [d, d])
        w.buffer(p + 'attn.masked_bias', -1e9)
        w.causal_mask(p + 'attn.bias', c['n_positions'])
        w.add(p + 'mlp.fc_in.weight', [I, d])
        w.add(p + 'mlp.fc_in.bias', [I], 'bias')
        w.add(p + 'mlp.fc_out.weight', [d, I])
        w.add(p + 'mlp.fc_out.bias', [d], 'bias')
    w.add(P + 'ln_f.weight', [d], 'norm')
    w.add(P + 'ln_f.bias', [d], 'bias')
    w.add('lm_head.weight', [V, d], scale=0.5)
    w.add('lm_head.bias', [V], 'bias')
    g = w.values
    x = E[IDS]
    T = len(IDS)
    st = {'hidden': [], 'attn': [], 'mlp': [], 'key': []}
    for l in range(L):
        p = f'{P}h.{l}.'
        h = layer_norm(x, g[p + 'ln_1.weight'], g[p + 'ln_1.bias'], eps)
        q, k, v = (split_heads(linear(h, g[p + f'attn.{n}_proj.weight']), H, hd) for n in 'qkv')
        q = rope(q, range(T), c['rotary_dim'], 10000.0, True)
        k = rope(k, range(T), c['rotary_dim'], 10000.0, True)
        a = linear(merge_heads(attention(q, k, v)), g[p + 'attn.out_proj.weight'])
        key = gelu_tanh(linear(h, g[p + 'mlp.fc_in.weight'], g[p + 'mlp.fc_in.bias']))
        m = linear(key, g[p + 'mlp.fc_out.weight'], g[p + 'mlp.fc_out.bias'])
        x = x + a + m
        for n, val in (('hidden', x), ('attn', a), ('mlp', m), ('key', key)):
            st[n].append(val)
    hf = layer_norm(x, g[P + 'ln_f.weight'], g[P + 'ln_f.bias'], eps)
    return hf @ g['lm_head.weight'].T + g['lm_head.bias'], st


NEOX = {
    'architectures': ['GPTNeoXForCausalLM'], 'bos_token_id': 0, 'eos_token_id': 0, 'hidden_act': 'gelu',
    'hidden_size': 32, 'initializer_range': 0.02, 'intermediate_size': 64, 'layer_norm_eps': 1e-05,
    'max_position_embeddings': 64, 'model_type': 'gpt_neox', 'num_attention_heads': 4, 'num_hidden_layers': 3,
    'rotary_emb_base': 10000, 'rotary_pct': 0.5, 'tie_word_embeddings': False, 'torch_dtype': 'float32',
    'transformers_version': '4.40.0', 'use_cache': True, 'use_parallel_residual': True, 'vocab_size': V,
}
LLAMA = {
    'architectures': ['LlamaForCausalLM'], 'attention_bias': False, 'bos_token_id': 1, 'eos_token_id': 2,
    'hidden_act': 'silu', 'hidden_size': 32, 'initializer_range': 0.02, 'intermediate_size': 48,
    'max_position_embeddings': 64, 'mlp_bias': False, 'model_type': 'llama', 'num_attention_heads': 4,
    'num_hidden_layers': 3, 'num_key_value_heads': 2, 'pretraining_tp': 1, 'rms_norm_eps': 1e-06,
    'rope_scaling': None, 'rope_theta': 10000.0, 'tie_word_embeddings': False, 'torch_dtype': 'float32',
    'transformers_version': '4.40.0', 'use_cache': True, 'vocab_size': V,
}
QWEN2 = {
    'architectures': ['Qwen2ForCausalLM'], 'attention_dropout': 0.0, 'bos_token_id': 60, 'eos_token_id': 61,
    'hidden_act': 'silu', 'hidden_size': 32, 'initializer_range': 0.02, 'intermediate_size': 48,
    'max_position_embeddings': 64, 'max_window_layers': 3, 'model_type': 'qwen2', 'num_attention_heads': 4,
    'num_hidden_layers': 3, 'num_key_value_heads': 1, 'rms_norm_eps': 1e-06, 'rope_theta': 1000000.0,
    'sliding_window': 64, 'tie_word_embeddings': True, 'torch_dtype': 'float32', 'transformers_version': '4.40.0',
    'use_cache': True, 'use_sliding_window': False, 'vocab_size': V,
}
MISTRAL = {
    'architectures': ['MistralForCausalLM'], 'bos_token_id': 1, 'eos_token_id': 2, 'hidden_act': 'silu',
    'hidden_size': 32, 'initializer_range': 0.02, 'intermediate_size': 48, 'max_position_embeddings': 64,
    'model_type': 'mistral', 'num_attention_heads': 4, 'num_hidden_layers': 3, 'num_key_value_heads': 2,
    'rms_norm_eps': 1e-05, 'rope_theta': 10000.0, 'sliding_window': 4, 'tie_word_embeddings': False,
    'torch_dtype': 'bfloat16', 'transformers_version': '4.40.0', 'use_cache': True, 'vocab_size': V,
}
GPTJ = {
    'activation_function': 'gelu_new', 'architectures': ['GPTJForCausalLM'], 'attn_pdrop': 0.0,
    'bos_token_id': 0, 'embd_pdrop': 0.0, 'eos_token_id': 0, 'initializer_range': 0.02,
    'layer_norm_epsilon': 1e-05, 'model_type': 'gptj', 'n_embd': 32, 'n_head': 4, 'n_inner': None, 'n_layer': 3,
    'n_positions': 64, 'resid_pdrop': 0.0, 'rotary': True, 'rotary_dim': 4, 'scale_attn_weights': True,
    'tie_word_embeddings': False, 'torch_dtype': 'float32', 'transformers_version': '4.40.0', 'use_cache': True,
    'vocab_size': V,
}

# name, builder, config overrides, dtype, seed: each dtype variant also varies a convention.
FIXTURES = [
    ('tiny-gpt-neox', neox, NEOX, {}, 'F32', 1),
    ('tiny-gpt-neox-f16', neox, NEOX, {'use_parallel_residual': False, 'rotary_pct': 0.25, 'torch_dtype': 'float16'}, 'F16', 2),
    ('tiny-gpt-neox-bf16', neox, NEOX, {'rotary_pct': 1.0, 'torch_dtype': 'bfloat16'}, 'BF16', 3),
    ('tiny-llama', llama, LLAMA, {}, 'F32', 4),
    ('tiny-llama-f16', llama, LLAMA, {'num_key_value_heads': 4, 'torch_dtype': 'float16'}, 'F16', 5),
    ('tiny-qwen2', llama, QWEN2, {}, 'F32', 6),
    ('tiny-qwen2-bf16', llama, QWEN2, {'torch_dtype': 'bfloat16'}, 'BF16', 7),
    ('tiny-mistral-bf16', llama, MISTRAL, {}, 'BF16', 8),
    ('tiny-gptj', gptj, GPTJ, {}, 'F32', 9),
    ('tiny-gptj-f16', gptj, GPTJ, {'rotary_dim': 8, 'torch_dtype': 'float16'}, 'F16', 10),
    ('tiny-gptj-bf16', gptj, GPTJ, {'torch_dtype': 'bfloat16'}, 'BF16', 11),
]


def rounded(a):
    return np.round(np.asarray(a, dtype=np.float64), 9).tolist()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else 'test/fixtures'
    for name, build, base, over, dtype, seed in FIXTURES:
        cfg = {**base, **over}
        w = Weights(seed, dtype)
        logits, st = build(w, cfg)
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, 'config.json'), 'w') as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
            f.write('\n')
        write_safetensors(os.path.join(d, 'model.safetensors'), w.stored)
        exp = {
            'source': 'scripts/make-family-fixtures.py: float64 numpy reference of the Hugging Face semantics',
            'dtype': dtype,
            'ids': IDS,
            'logits': rounded(logits),
            'hidden': [rounded(h) for h in st['hidden']],
            'attn': [rounded(h) for h in st['attn']],
            'mlp': [rounded(h) for h in st['mlp']],
            'key': [rounded(h) for h in st['key']],
        }
        with open(os.path.join(d, 'expected.json'), 'w') as f:
            json.dump(exp, f, separators=(',', ':'))
            f.write('\n')
        print(f'{name}: {dtype}, logits range [{logits.min():.3f}, {logits.max():.3f}], '
              f'argmax {logits.argmax(-1).tolist()}')


if __name__ == '__main__':
    main()
