"""Checks that an early-stop sweep (scripts/dev/early-stop-sweep.ts) reproduces `eval counterfact` records: for each
swept case, the variant named by --variant must give the same rewrite / paraphrase / neighbour outcomes and the same
NLLs (pre and post, every prompt) as DIR/case_<id>.json. Exit 1 on any difference. (The metrics of each variant are
printed by `early-stop-sweep.ts --summarize`; this script only compares.)
usage: python3 scripts/dev/sweep-vs-records.py --records DIR --variant 'stop 0.1 bare' [--subset] SWEEP.json [SWEEP.json ...]
"""
import sys
from edit_records import load_records, sweep_rows, variant_of, goes_new
args=sys.argv[1:]
def opt(name):
    i=args.index(name); v=args[i+1]; del args[i:i+2]; return v
RECORDS=opt('--records'); VARIANT=opt('--variant')
# --subset: compare only the swept cases that DIR has records for (a spot check of a few re-run cases)
SUBSET='--subset' in args
if SUBSET: args.remove('--subset')
recs=load_records(RECORDS)
rows=sweep_rows(args)
if SUBSET: rows=[r for r in rows if r['caseId'] in recs]
if not rows: sys.exit('no swept case has a record in '+RECORDS)
w=goes_new
def out(e): return (w(e['rewrite']),tuple(map(w,e['paraphrase'])),tuple(map(w,e['neighborhood'])))
same=diff=0;maxd=0
for r in rows:
    v=variant_of(r,VARIANT)
    if r['caseId'] not in recs: sys.exit(f"case {r['caseId']} has no record in {RECORDS}")
    o=recs[r['caseId']]
    if out(v['post'])==out(o['post']): same+=1
    else: diff+=1; print('diff',r['caseId'])
    def nlls(e): return [e['rewrite']['nllNew'],e['rewrite']['nllTrue']]+[x for p in e['paraphrase']+e['neighborhood'] for x in (p['nllNew'],p['nllTrue'])]
    a=nlls(v['post'])+nlls(r['pre']); b=nlls(o['post'])+nlls(o['pre'])
    assert len(a)==len(b)
    maxd=max([maxd]+[abs(x-y) for x,y in zip(a,b)])
print('cases',len(rows),'variant',VARIANT,'same outcomes',same,'diff',diff,'max |dNLL| over every pre/post prompt',maxd)
if diff or maxd: print('MISMATCH', file=sys.stderr)
sys.exit(1 if diff or maxd else 0)
