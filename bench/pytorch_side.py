#!/usr/bin/python3
"""PyTorch side of bench/vs-pytorch.ts: the official ROME algorithms, written from the paper's description, timed on
the same weights, prompt, edit rows and corpus tokens that the TypeScript side wrote to a job directory.

    /usr/bin/python3 bench/pytorch_side.py JOB_DIR [--threads N] [--only trace,edit,stats]

JOB_DIR holds weights.safetensors (GPT-2 names without "transformer.", Conv1D layout [in, out]), noise.f32
([samples, T, d], zero outside the subject) and job.json. Writes JOB_DIR/pytorch.json with the timings and the
results (trace scores, edit losses, a checksum of the statistics) so the TS side can compare them with its own.

Only torch and numpy: HF transformers is not installed here, so the GPT-2 forward below is a plain re-statement of
the architecture (pre-LayerNorm blocks, GELU-tanh, tied output embedding), with hooks for restoring states.
"""
import json
import os
import math
import struct
import sys
import time

import numpy as np
import torch


def read_safetensors(path):
    with open(path, 'rb') as f:
        raw = f.read()
    (n,) = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == '__metadata__':
            continue
        if e['dtype'] != 'F32':
            raise SystemExit(f'pytorch_side: {name} is {e["dtype"]}, expected F32')
        b, end = e['data_offsets']
        arr = np.frombuffer(raw, dtype='<f4', count=(end - b) // 4, offset=base + b)
        out[name] = torch.from_numpy(arr.copy()).reshape(e['shape'])
    return out


class GPT2:
    """GPT-2 forward over token ids [B, T]; hooks[name](x) may return a replacement (names as rome-ts's hooks)."""

    def __init__(self, w, n_layer, n_head, eps=1e-5):
        self.w = w
        self.L = n_layer
        self.H = n_head
        self.eps = eps
        self.d = w['wte.weight'].shape[1]
        for t in w.values():
            t.requires_grad_(False)

    def ln(self, x, name):
        return torch.nn.functional.layer_norm(x, (self.d,), self.w[name + '.weight'], self.w[name + '.bias'], self.eps)

    @staticmethod
    def hook(hooks, name, x):
        if hooks and name in hooks:
            y = hooks[name](x)
            if y is not None:
                return y
        return x

    def forward(self, ids, hooks=None, attention_mask=None, end_layer=None, logits='all'):
        w = self.w
        B, T = ids.shape
        H, d = self.H, self.d
        hd = d // H
        pos = torch.arange(T)
        x = self.hook(hooks, 'embed', w['wte.weight'][ids]) + w['wpe.weight'][pos][None]
        causal = torch.full((T, T), -1e9).triu(1)
        mask = causal[None, None]
        if attention_mask is not None:
            mask = mask + (1.0 - attention_mask[:, None, None, :].float()) * -1e9
        L = self.L if end_layer is None else end_layer
        for l in range(L):
            p = f'h.{l}.'
            h = self.ln(x, p + 'ln_1')
            qkv = h @ w[p + 'attn.c_attn.weight'] + w[p + 'attn.c_attn.bias']
            q, k, v = (t.reshape(B, T, H, hd).transpose(1, 2) for t in qkv.split(d, dim=-1))
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + mask, dim=-1)
            ctx = (att @ v).transpose(1, 2).reshape(B, T, d)
            a = self.hook(hooks, f'blocks.{l}.attn', ctx @ w[p + 'attn.c_proj.weight'] + w[p + 'attn.c_proj.bias'])
            x = x + a
            h2 = self.ln(x, p + 'ln_2')
            key = torch.nn.functional.gelu(h2 @ w[p + 'mlp.c_fc.weight'] + w[p + 'mlp.c_fc.bias'], approximate='tanh')
            key = self.hook(hooks, f'blocks.{l}.mlp.key', key)
            m = self.hook(hooks, f'blocks.{l}.mlp', key @ w[p + 'mlp.c_proj.weight'] + w[p + 'mlp.c_proj.bias'])
            x = self.hook(hooks, f'blocks.{l}', x + m)
        if end_layer is not None or logits == 'none':
            return x
        # HF's GPT2LMHeadModel computes the logits of every position; the official code calls it that way.
        return self.ln(x, 'ln_f') @ w['wte.weight'].T


def window_layers(layer, window, n_layer):
    lo = max(0, layer - window // 2)
    hi = min(n_layer, layer - (-window // 2))
    return list(range(lo, hi))


def trace(model, job, noise):
    """The official causal trace: per (kind, token, layer) one full forward of 1 clean + N corrupted rows, the
    restored states copied from the clean row (row 0) into the corrupted rows; score = mean p(answer) of rows 1..N."""
    tj = job['trace']
    ids = tj['ids']
    T = len(ids)
    N = noise.shape[0]
    answer = tj['answer']
    inp = torch.tensor([ids] * (N + 1))
    L = model.L
    suffix = {'hidden': '', 'mlp': '.mlp', 'attn': '.attn'}

    def embed_noise(x):
        x = x.clone()
        x[1:] += noise
        return x

    def run(states):
        hooks = {'embed': embed_noise}
        for name, t in states:
            def patch(x, t=t):
                x = x.clone()
                x[1:, t] = x[0, t]
                return x
            hooks[name] = patch
        with torch.no_grad():
            logits = model.forward(inp, hooks)
        probs = torch.softmax(logits[1:, -1, :], dim=-1)
        return probs[:, answer].mean().item()

    t0 = time.perf_counter()
    p_low = run([])
    scores = {}
    for kind in tj['kinds']:
        win = tj['windows'][kind]
        table = []
        for t in range(T):
            row = []
            for l in range(L):
                layers = window_layers(l, win, L)
                row.append(run([(f'blocks.{j}{suffix[kind]}', t) for j in layers]))
            table.append(row)
        scores[kind] = table
    sec = time.perf_counter() - t0
    return {'seconds': sec, 'forwards': 1 + len(tj['kinds']) * T * L, 'rows': N + 1, 'pLow': p_low, 'scores': scores}


def pad_right(rows, pad):
    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), T), dtype=torch.long)
    for b, r in enumerate(rows):
        ids[b, :len(r)] = torch.tensor(r)
        mask[b, :len(r)] = 1
    return ids, mask


def rome_edit(model, job, inv_cov):
    """One ROME edit as the official code does it, C⁻¹ cached: k* (mean key over the prefixed prompts, forward to the
    layer), v* (Adam on δ at the subject's last token, a full forward of every rewrite row + the KL row per step,
    log-softmax over all positions and the vocabulary), the current key/value of the bare prompt, W += u ⊗ Λ."""
    e = job['edit']
    hp = e['hparams']
    layer = e['layer']
    rows = e['rows']
    lookups = e['lookups']
    prompt_lens = e['promptLens']
    target = e['targetIds']
    n_rewrite = len(prompt_lens)
    pad = e['pad']
    W = model.w[f'h.{layer}.mlp.c_proj.weight']
    W0 = W.clone()
    t0 = time.perf_counter()
    with torch.no_grad():
        # k*: keys at the subject's last token of the prefixed prompts (no target tokens), mean.
        ids, mask = pad_right([r[:prompt_lens[b]] for b, r in enumerate(rows[:n_rewrite])], pad)
        got = {}
        model.forward(ids, {f'blocks.{layer}.mlp.key': lambda x: got.__setitem__('k', x)}, attention_mask=mask, end_layer=layer + 1)
        k_star = got['k'][torch.arange(n_rewrite), torch.tensor(lookups[:n_rewrite])].mean(0)
        u = inv_cov @ k_star
        u = u / u.norm()
    # v*: δ added to the MLP output at the lookup position of every row.
    ids, mask = pad_right(rows, pad)
    B = len(rows)
    m = len(target)
    tgt = torch.full((n_rewrite, ids.shape[1]), -100, dtype=torch.long)
    for b in range(n_rewrite):
        for j in range(m):
            tgt[b, prompt_lens[b] - 1 + j] = target[j]
    lk = torch.tensor(lookups)
    delta = torch.zeros(model.d, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=hp['vLr'])
    state = {'v0': None, 'kl0': None}

    def edit_out(x):
        if state['v0'] is None:
            state['v0'] = x[0, lookups[0]].detach().clone()
        x = x.clone()
        x[torch.arange(B), lk] += delta
        return x

    losses = []
    for it in range(hp['vNumGradSteps']):
        opt.zero_grad()
        logits = model.forward(ids, {f'blocks.{layer}.mlp': edit_out}, attention_mask=mask)
        kl_lp = torch.log_softmax(logits[n_rewrite, lookups[n_rewrite]], dim=-1)
        if state['kl0'] is None:
            state['kl0'] = kl_lp.detach().clone()
        lp = torch.log_softmax(logits[:n_rewrite], dim=-1)
        sel = tgt != -100
        picked = torch.gather(lp, 2, torch.where(sel, tgt, 0).unsqueeze(2)).squeeze(2)
        nll = -(picked * sel).sum(1).div(m).mean()
        kl = torch.nn.functional.kl_div(state['kl0'], kl_lp, log_target=True, reduction='sum')
        v0n = state['v0'].norm()
        wd = hp['vWeightDecay'] * (delta.norm() / v0n ** 2)
        loss = nll + hp['klFactor'] * kl + wd
        losses.append({'loss': loss.item(), 'nll': nll.item(), 'kl': kl.item(), 'weightDecay': wd.item()})
        if loss.item() < hp['earlyStopLoss'] or it == hp['vNumGradSteps'] - 1:
            break
        loss.backward()
        opt.step()
        with torch.no_grad():
            max_norm = hp['clampNormFactor'] * v0n
            if delta.norm() > max_norm:
                delta.mul_(max_norm / delta.norm())
    with torch.no_grad():
        v_star = state['v0'] + delta
        # The official right vector reads the layer's current input and output at the bare prompt (one more forward).
        got = {}
        bare = torch.tensor([rows[0][:prompt_lens[0]]])
        model.forward(bare, {f'blocks.{layer}.mlp.key': lambda x: got.__setitem__('k', x),
                             f'blocks.{layer}.mlp': lambda x: got.__setitem__('v', x)}, end_layer=layer + 1)
        k_r = k_star if e['rightVectorKey'] == 'averaged' else got['k'][0, lookups[0]]
        cur = k_r @ W + model.w[f'h.{layer}.mlp.c_proj.bias']
        right = (v_star - cur) / torch.dot(k_r, u)
        W += torch.outer(u, right)
    sec = time.perf_counter() - t0
    norm = (W - W0).norm().item()
    W.copy_(W0)
    return {'seconds': sec, 'losses': losses, 'updateNorm': norm}


def layer_stats(model, job):
    """Σ k kᵀ of the MLP keys of one layer over the corpus rows (forward stopped after the layer, padding masked out),
    per-batch products in float32 accumulated in float64 — the same batches as rome-ts (sorted by length in buffers of
    64 samples, ≤ batchTokens tokens per batch)."""
    s = job['stats']
    layer = s['layer']
    rows = s['rows']
    n = model.w[f'h.{layer}.mlp.c_fc.weight'].shape[1]
    total = torch.zeros((n, n), dtype=torch.float64)
    tokens = 0
    t0 = time.perf_counter()
    with torch.no_grad():
        for b0 in range(0, len(rows), 64):
            buf = sorted([r for r in rows[b0:b0 + 64] if len(r) > 0], key=len)
            i = 0
            while i < len(buf):
                batch = []
                while i < len(buf) and (len(batch) + 1) * len(buf[i]) <= max(s['batchTokens'], len(buf[i])):
                    batch.append(buf[i])
                    i += 1
                ids, mask = pad_right(batch, s['pad'])
                got = {}
                model.forward(ids, {f'blocks.{layer}.mlp.key': lambda x: got.__setitem__('k', x)}, attention_mask=mask, end_layer=layer + 1)
                k = got['k'].reshape(-1, n)[mask.reshape(-1).bool()]
                total += (k.T @ k).double()
                tokens += k.shape[0]
    sec = time.perf_counter() - t0
    return {'seconds': sec, 'tokens': tokens, 'tokensPerSecond': tokens / sec, 'trace': float(torch.trace(total)), 'sum': float(total.sum())}


def blas_library():
    """Which BLAS torch's matmuls run on: Debian's torch links the generic libblas.so.3, which is the reference
    implementation (a few GFLOPS) unless OpenBLAS provides it; a comparison must say which it was."""
    info = torch.__config__.show()
    if 'BLAS_INFO=mkl' in info:
        return 'mkl'
    for lib in ('/usr/lib/x86_64-linux-gnu/libblas.so.3', '/usr/lib/aarch64-linux-gnu/libblas.so.3'):
        if os.path.exists(lib):
            real = os.path.realpath(lib)
            kind = 'openblas' if 'openblas' in real else 'blis' if 'blis' in real else 'atlas' if 'atlas' in real else 'reference'
            core = os.environ.get('OPENBLAS_CORETYPE')
            return f'{kind} ({real})' + (f', OPENBLAS_CORETYPE={core}' if kind == 'openblas' and core else '')
    return 'unknown'


def main():
    args = sys.argv[1:]
    if not args:
        raise SystemExit(__doc__)
    job_dir = args[0]
    threads = None
    only = None
    for i, a in enumerate(args):
        if a == '--threads':
            threads = int(args[i + 1])
        if a == '--only':
            only = args[i + 1].split(',')
    if threads:
        torch.set_num_threads(threads)
    with open(f'{job_dir}/job.json') as f:
        job = json.load(f)
    w = read_safetensors(f'{job_dir}/weights.safetensors')
    model = GPT2(w, job['nLayer'], job['nHead'])
    out = {'torch': torch.__version__, 'threads': torch.get_num_threads(), 'blas': blas_library()}
    if (only is None or 'stats' in only) and 'stats' in job:
        layer_stats(model, {'stats': {**job['stats'], 'rows': job['stats']['rows'][:64]}})  # warm-up
        out['stats'] = layer_stats(model, job)
        print(f'pytorch: layerStats {out["stats"]["tokensPerSecond"]:.0f} tok/s', file=sys.stderr)
    if (only is None or 'edit' in only) and 'edit' in job:
        n = w[f'h.{job["edit"]["layer"]}.mlp.c_fc.weight'].shape[1]
        cov = torch.from_numpy(np.fromfile(f'{job_dir}/cov.f64', dtype='<f8').reshape(n, n))
        # Cached C: the official code inverts it once per layer and keeps the inverse.
        inv_cov = torch.inverse(cov).float()
        rome_edit(model, job, inv_cov)  # warm-up
        out['edit'] = rome_edit(model, job, inv_cov)
        print(f'pytorch: edit {out["edit"]["seconds"]:.2f} s', file=sys.stderr)
    if (only is None or 'trace' in only) and 'trace' in job:
        tj = job['trace']
        noise = torch.from_numpy(np.fromfile(f'{job_dir}/noise.f32', dtype='<f4').reshape(tj['samples'], len(tj['ids']), -1))
        out['trace'] = trace(model, job, noise)
        print(f'pytorch: trace {out["trace"]["seconds"]:.1f} s', file=sys.stderr)
    with open(f'{job_dir}/pytorch.json', 'w') as f:
        json.dump(out, f)


if __name__ == '__main__':
    main()
