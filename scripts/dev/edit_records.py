"""Readers shared by the dev scripts that compare ROME runs: `eval counterfact` record directories
(DIR/case_<id>.json) and early-stop sweep JSONs (scripts/dev/early-stop-sweep.ts), with the success rule of
`summarize` (a prompt goes to the new object when its NLL is below the true object's)."""
import glob, json, os, sys


def read_json(path):
    """The parsed file, or exit naming the file when it is missing or not JSON."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f'{path}: cannot read JSON ({e})')


def load_records(directory):
    """caseId -> record of every case_*.json in an eval records directory; exits if there is none."""
    if not os.path.isdir(directory):
        sys.exit(f'{directory}: not a records directory')
    recs = {}
    for f in glob.glob(os.path.join(directory, 'case_*.json')):
        d = read_json(f)
        recs[d['caseId']] = d
    if not recs:
        sys.exit(f'{directory} holds no case_*.json records')
    return recs


def sweep_rows(files):
    """Every swept case's row (caseId, pre, variants) over one or more sweep JSONs, in file order."""
    rows = []
    for f in files:
        rows += read_json(f)['rows']
    return rows


def variant_of(row, variant):
    """The row's entry for the named variant; exits naming the variants the sweep has."""
    vs = [x for x in row['variants'] if x['variant'] == variant]
    if not vs:
        sys.exit(f"case {row['caseId']}: no variant {variant!r} in the sweep (it has {[x['variant'] for x in row['variants']]})")
    return vs[0]


def goes_new(prompt):
    """True when the prompt prefers the new object (lower NLL than the true one)."""
    return prompt['nllNew'] < prompt['nllTrue']
