# Dev tool: turns a training checkpoint (build/train/<name>/checkpoint.safetensors: param/* and adam_*/* tensors)
# into a loadable model directory (config.json, model.safetensors, tokenizer.json) to run diagnostics mid-training.
# Usage: python3 scripts/dev/export-train-checkpoint.py <checkpoint.safetensors> <tokenizer.json> <like-config.json> <out dir>
import json, os, struct, sys
ck, tokf, cfgf, out = sys.argv[1:5]
with open(ck, 'rb') as f:
    n = struct.unpack('<Q', f.read(8))[0]
    header = json.loads(f.read(n))
    base = 8 + n
    blobs = {}
    for k, v in header.items():
        if not k.startswith('param/'):
            continue
        a, b = v['data_offsets']
        f.seek(base + a)
        blobs[k[len('param/'):]] = (v['dtype'], v['shape'], f.read(b - a))
meta, off, parts = {}, 0, []
for k in sorted(blobs):
    dt, shape, data = blobs[k]
    meta[k] = {'dtype': dt, 'shape': shape, 'data_offsets': [off, off + len(data)]}
    off += len(data)
    parts.append(data)
hb = json.dumps(meta).encode()
hb += b' ' * ((8 - len(hb) % 8) % 8)
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, 'model.safetensors'), 'wb') as f:
    f.write(struct.pack('<Q', len(hb))); f.write(hb)
    for p in parts: f.write(p)
tok = json.load(open(tokf))
eos = next((t['id'] for t in tok.get('added_tokens', []) if t.get('content') == '<|endoftext|>'), None)
cfg = json.load(open(cfgf))
if eos is not None: cfg['bos_token_id'] = cfg['eos_token_id'] = eos
json.dump(cfg, open(os.path.join(out, 'config.json'), 'w'), indent=1)
open(os.path.join(out, 'tokenizer.json'), 'w').write(open(tokf).read())
print(out, len(blobs), 'tensors, eos', eos)
