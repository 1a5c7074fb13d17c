"""Paired comparison of two ROME runs on the same CounterFact cases (e.g. the same edits at two layers): per case ES,
PS and NS (as in `summarize`: a prompt succeeds when P(new) > P(true) for rewrite and paraphrases, P(true) > P(new)
for neighbours; PS and NS are the case's fraction), then the mean of B − A with a 95% CI (1.96 · sd / sqrt(n)) over
the cases both runs hold. PS is compared over the cases that have a paraphrase prompt. A side is an eval records
DIR or an early-stop sweep JSON with its variant (SWEEP.json[,SWEEP.json...]@'stop 0.15 bare').
usage: python3 scripts/dev/paired-layers.py --a SIDE --b SIDE [--json OUT [--force]]
"""
import json, math, sys, os
from edit_records import load_records, sweep_rows, variant_of, goes_new

args = sys.argv[1:]
FORCE = '--force' in args
if FORCE:
    args.remove('--force')


def opt(name, default=None):
    if name not in args:
        if default is None:
            sys.exit(f'paired-layers: {name} is required (usage in the docstring)')
        return default
    i = args.index(name)
    if i + 1 >= len(args):
        sys.exit(f'paired-layers: {name} needs a value')
    v = args[i + 1]
    del args[i:i + 2]
    return v


def load(side):
    """caseId -> post block (rewrite, paraphrase, neighborhood with nllNew / nllTrue)."""
    if '@' in side:
        files, variant = side.split('@', 1)
        return {r['caseId']: variant_of(r, variant)['post'] for r in sweep_rows(files.split(','))}
    return {c: d['post'] for c, d in load_records(side).items()}


def scores(post):
    win = goes_new
    es = 100.0 * win(post['rewrite'])
    ps = 100.0 * sum(map(win, post['paraphrase'])) / len(post['paraphrase']) if post['paraphrase'] else None
    nb = post['neighborhood']
    ns = 100.0 * sum(not win(p) for p in nb) / len(nb) if nb else None
    return {'ES': es, 'PS': ps, 'NS': ns}


def mean_ci(xs):
    n = len(xs)
    m = sum(xs) / n
    if n < 2:
        return m, None
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1))
    return m, 1.96 * sd / math.sqrt(n)


A = opt('--a')
B = opt('--b')
OUT = opt('--json', '')
if args:
    sys.exit(f'paired-layers: unexpected arguments {args}')
a, b = load(A), load(B)
common = sorted(set(a) & set(b))
if not common:
    sys.exit('paired-layers: the two sides share no case')
result = {'a': A, 'b': B, 'cases': len(common), 'metrics': {}}
print(f'{len(common)} cases in both (A: {len(a)}, B: {len(b)})')
print('| metric | n | A | B | B − A (95% CI) |')
print('|---|---|---|---|---|')
for k in ('ES', 'PS', 'NS'):
    pairs = [(scores(a[c])[k], scores(b[c])[k]) for c in common]
    pairs = [(x, y) for x, y in pairs if x is not None and y is not None]
    if not pairs:
        continue
    ma = sum(x for x, _ in pairs) / len(pairs)
    mb = sum(y for _, y in pairs) / len(pairs)
    d, ci = mean_ci([y - x for x, y in pairs])
    result['metrics'][k] = {'n': len(pairs), 'a': ma, 'b': mb, 'diff': d, 'ci': ci}
    cis = '–' if ci is None else f'± {ci:.1f}'
    print(f'| {k} | {len(pairs)} | {ma:.1f} | {mb:.1f} | {d:+.1f} {cis} |')
if OUT:
    if os.path.exists(OUT) and not FORCE:
        sys.exit(f'paired-layers: {OUT} exists (pass --force to replace it)')
    tmp = OUT + '.tmp'
    with open(tmp, 'w') as f:
        f.write(json.dumps(result, indent=1, ensure_ascii=False) + '\n')
    os.replace(tmp, OUT)
