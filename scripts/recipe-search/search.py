# Recipe search for the bundled fact model (dev tool; see README.md here). A PyTorch replica of
# scripts/train-facts.ts -- the same exported token stream and object tokens, Hugging Face's GPT-2 (whose default
# initialisation is the one lib/train/init.ts uses), AdamW with decay on matrices only, linear warm-up then cosine
# to lr/10, clipping at 1, loss sum(w * CE) / (B * T) -- so that many recipes x seeds can be compared in minutes on
# a GPU. The committed model is always trained by the TypeScript path; this only chooses its flags.
# Writes one JSON per run: greedy first-token accuracy on trained / held-out / known prompts, perplexity, per template.
import argparse, json, math, os, sys, time
import numpy as np
import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel

p = argparse.ArgumentParser()
p.add_argument('--data', required=True)
p.add_argument('--out', required=True)
p.add_argument('--seed', type=int, default=1)
p.add_argument('--steps', type=int, default=2475)
p.add_argument('--batch', type=int, default=8)
p.add_argument('--seq', type=int, default=128)
p.add_argument('--lr', type=float, default=3e-3)
p.add_argument('--warmup', type=int, default=100)
p.add_argument('--wd', type=float, default=0.1)
p.add_argument('--ow', type=float, default=4.0)
p.add_argument('--dropout', type=float, default=0.0)
p.add_argument('--layers', type=int, default=6)
p.add_argument('--d', type=int, default=256)
p.add_argument('--heads', type=int, default=4)
p.add_argument('--align', type=float, default=0.0, help='fraction of windows that start at a document start')
p.add_argument('--ls', type=float, default=0.0, help='label smoothing')
a = p.parse_args()

dev = 'cuda'
torch.manual_seed(a.seed); np.random.seed(a.seed)
D = a.data
tokens = np.fromfile(f'{D}/train.i32', dtype='<i4').astype(np.int64)
valid = np.fromfile(f'{D}/valid.i32', dtype='<i4').astype(np.int64)
isobj = np.fromfile(f'{D}/isobj.u8', dtype=np.uint8)
starts = np.array(json.load(open(f'{D}/starts.json')), dtype=np.int64)
ev = json.load(open(f'{D}/eval.json'))
weights = np.where(isobj > 0, a.ow, 1.0).astype(np.float32)
T, B = a.seq, a.batch
tok_t = torch.from_numpy(tokens).to(dev)
w_t = torch.from_numpy(weights).to(dev)

cfg = GPT2Config(vocab_size=ev['vocab'], n_positions=T, n_embd=a.d, n_layer=a.layers, n_head=a.heads,
                 activation_function='gelu_new', resid_pdrop=a.dropout, embd_pdrop=a.dropout, attn_pdrop=a.dropout,
                 bos_token_id=ev['eos'], eos_token_id=ev['eos'], tie_word_embeddings=True)
model = GPT2LMHeadModel(cfg).to(dev)
nparams = sum(p.numel() for p in model.parameters())
decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
nodecay = [p for n, p in model.named_parameters() if p.dim() < 2]
opt = torch.optim.AdamW([{'params': decay, 'weight_decay': a.wd}, {'params': nodecay, 'weight_decay': 0.0}],
                        lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
minlr = a.lr / 10
def lr_at(s):
    if s < a.warmup: return a.lr * (s + 1) / a.warmup
    q = (s - a.warmup) / max(1, a.steps - a.warmup - 1)
    return minlr + 0.5 * (a.lr - minlr) * (1 + math.cos(math.pi * min(1.0, q)))

rng = np.random.default_rng(a.seed)
def epoch_windows():
    off = int(rng.integers(T))
    n = (len(tokens) - 1 - off) // T
    st = off + rng.permutation(n) * T
    if a.align > 0:
        k = int(a.align * n)
        al = rng.choice(starts[starts < len(tokens) - T - 1], size=k, replace=False)
        st = np.concatenate([st[k:], al]); rng.shuffle(st)
    return st
queue = []
ar = torch.arange(T + 1, device=dev)
def next_batch():
    global queue
    out = []
    while len(out) < B:
        if len(queue) == 0: queue = list(epoch_windows())
        out.append(queue.pop())
    idx = torch.tensor(out, device=dev)[:, None] + ar[None, :]
    x = tok_t[idx]; w = w_t[idx[:, 1:]]
    return x[:, :-1], x[:, 1:], w

@torch.no_grad()
def recall(items, bs=512, want_pred=False):
    model.eval()
    order = sorted(range(len(items)), key=lambda i: len(items[i]['ids']))
    pred = [0] * len(items)
    for s in range(0, len(order), bs):
        ch = order[s:s + bs]
        L = max(len(items[i]['ids']) for i in ch)
        x = torch.full((len(ch), L), ev['eos'], dtype=torch.long)
        last = []
        for r, i in enumerate(ch):
            ids = items[i]['ids']; x[r, :len(ids)] = torch.tensor(ids); last.append(len(ids) - 1)
        lg = model(x.to(dev)).logits
        am = lg[torch.arange(len(ch), device=dev), torch.tensor(last, device=dev)].argmax(-1).tolist()
        for r, i in enumerate(ch): pred[i] = am[r]
    model.train()
    return pred

@torch.no_grad()
def valid_loss():
    model.eval()
    n = (len(valid) - 1) // T
    tot, cnt = 0.0, 0
    v = torch.from_numpy(valid).to(dev)
    for s in range(0, n, 64):
        idx = (torch.arange(s, min(n, s + 64), device=dev) * T)[:, None] + ar[None, :]
        x = v[idx]
        lg = model(x[:, :-1]).logits
        tot += F.cross_entropy(lg.reshape(-1, lg.shape[-1]), x[:, 1:].reshape(-1), reduction='sum').item(); cnt += x[:, 1:].numel()
    model.train()
    return tot / cnt

def acc(items):
    pr = recall(items)
    return sum(int(p == it['target']) for p, it in zip(pr, items)) / max(1, len(items)), pr

t0 = time.time()
curve = []
model.train()
for s in range(a.steps):
    for g in opt.param_groups: g['lr'] = lr_at(s)
    x, y, w = next_batch()
    lg = model(x).logits
    ce = F.cross_entropy(lg.reshape(-1, lg.shape[-1]), y.reshape(-1), reduction='none', label_smoothing=a.ls)
    loss = (ce * w.reshape(-1)).sum() / (B * T)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    if (s + 1) % 600 == 0:
        h, _ = acc(ev['heldOut'])
        curve.append({'step': s + 1, 'loss': loss.item(), 'heldOut': h})
tr, _ = acc(ev['trained']); kn, _ = acc(ev['known']); ho, pr = acc(ev['heldOut'])
per = {}
for p_, it in zip(pr, ev['heldOut']):
    k = it['rel'] + ' ' + it['tpl']; c = per.setdefault(k, [0, 0]); c[0] += int(p_ == it['target']); c[1] += 1
vl = valid_loss()
res = {'args': vars(a), 'params': nparams, 'trained': tr, 'heldOut': ho, 'known': kn, 'validLoss': vl, 'ppl': math.exp(vl),
       'seconds': time.time() - t0, 'curve': curve, 'perTemplate': per}
os.makedirs(os.path.dirname(a.out), exist_ok=True)
json.dump(res, open(a.out, 'w'), indent=1)
print(f"{a.out}: trained {tr:.3f} heldOut {ho:.3f} known {kn:.3f} ppl {math.exp(vl):.1f} {time.time()-t0:.0f}s", flush=True)
