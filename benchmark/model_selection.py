"""Model selection: which epoch each rule picks and what that does to the target HTER.

Rules (`train.select`): `metric` (the best source-val AUC, the default `train.val_metric`), `loss`
(the lowest source-val cross-entropy) and `last` (the last epoch of the fixed schedule).

1. Over the committed batches (ablations/results/*/<run>/train-log.csv): how often the AUC choice
   differs from the last epoch (the committed logs hold no validation loss, so the loss rule cannot
   be replayed on them), and how often the val AUC is tied or saturated.
2. With --train DIR: trains a small batch at the evidence grid's settings with every epoch's
   checkpoint kept (`train.keep_epochs`), evaluates each epoch on the target (HTER at the source
   val-EER threshold, AUC) and prints, per run, the epoch each rule picks and the target HTER there.

    python benchmark/model_selection.py          # the committed counts and the recorded measurement
    nice -n 5 python benchmark/model_selection.py --train /tmp/ms --json /tmp/ms/selection.json
"""
from __future__ import annotations
import argparse, csv, json, math
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STUDY_ARGS = dict(MODEL='model', ADAPTER='adapter', UNCERTAINTY='uncertainty', PROMPTS='prompts', REGRAD='regrad')


def pick(rows: list[dict], key: str, mode: str) -> int:
    "The epoch the trainer keeps: the first epoch strictly best by `key` (mode max | min), or the last (mode last)."
    if mode == 'last': return int(rows[-1]['epoch'])
    best, ep = None, None
    for r in rows:
        v = float(r[key])
        if math.isnan(v): continue
        if best is None or (v > best if mode == 'max' else v < best): best, ep = v, int(r['epoch'])
    return ep


def committed(results: Path = ROOT/'ablations'/'results') -> dict:
    "{batch: counts} of AUC-chosen vs last epoch over the committed runs' train-log.csv."
    out = {}
    for batch in sorted(p for p in results.iterdir() if p.is_dir()):
        n = differ = ties = sat = 0
        for log in sorted(batch.glob('*/train-log.csv')):
            rows = list(csv.DictReader(open(log)))
            if not rows: continue
            n += 1
            differ += pick(rows, 'val_auc', 'max') != pick(rows, 'val_auc', 'last')
            aucs = [float(r['val_auc']) for r in rows]
            ties += len(set(aucs)) < len(aucs)
            sat += max(aucs) >= 0.95
        out[batch.name] = dict(runs=n, auc_not_last=differ, auc_tied=ties, auc_ge_095=sat,
                               has_val_loss=bool(n) and 'val_loss' in rows[0])
    return out


def evidence_config(variant: str, target: str, seed: int = 0, extra: dict | None = None):
    "The evidence grid's config of one run (ablations/grids/evidence_p1.yaml), with `extra` dotted keys."
    import yaml
    from mmdgpp.ablate.study import study_config
    g = yaml.safe_load((ROOT/'ablations'/'grids'/'evidence_p1.yaml').read_text())
    params = {STUDY_ARGS[k]: v for k, v in g['axes']['variant'][variant].items()}
    return study_config('p1', target, seed, False, config={**g['base'], **(extra or {})}, **params)


def measure(out: Path, variants=('mmdgpp', 'erm'), targets=('W', 'C'), seed: int = 0) -> list[dict]:
    "Train each run with every epoch kept; per epoch: source-val AUC and loss, target HTER (val-EER, test-EER) and AUC."
    from mmdgpp.train.trainer import train
    from mmdgpp.eval.evaluate import evaluate
    runs = []
    for v in variants:
        for t in targets:
            cfg = evidence_config(v, t, seed, {'train.keep_epochs': True})
            run = train(cfg, out/f'{v}-{t}-s{seed}', verbose=False, progress=False)
            rows = list(csv.DictReader(open(run/'log.csv')))
            for r in rows:
                ck = run/'checkpoints'/f'epoch-{r["epoch"]}.pt'
                res = evaluate(ck, out_dir=run/f'eval-epoch-{r["epoch"]}', figures=False, verbose=False, progress=False)
                m = res['metrics']
                r.update(target_hter_val_eer=m['val-eer']['hter'], target_hter_test_eer=m['test-eer']['hter'],
                         target_auc=m['test-eer']['auc'])
            runs.append(dict(variant=v, target=t, seed=seed, epochs=[
                {k: (int(r[k]) if k == 'epoch' else float(r[k])) for k in
                 ('epoch', 'val_auc', 'val_loss', 'val_hter', 'target_hter_val_eer', 'target_hter_test_eer', 'target_auc')}
                for r in rows]))
    return runs


def report(runs: list[dict]) -> str:
    "Per run: each epoch's numbers, the epoch each rule picks and the target HTER (val-EER threshold) there."
    lines = []
    rules = dict(auc=('val_auc', 'max'), loss=('val_loss', 'min'), last=('val_auc', 'last'))
    diff = {k: 0 for k in ('auc/loss', 'auc/last', 'loss/last')}
    for r in runs:
        lines.append(f'{r["variant"]:7s} target {r["target"]} seed {r["seed"]}')
        for e in r['epochs']:
            lines.append(f'  epoch {e["epoch"]}: val AUC {e["val_auc"]:.4f} loss {e["val_loss"]:.4f} | target HTER@val-EER '
                         f'{100 * e["target_hter_val_eer"]:.2f} %  HTER@test-EER {100 * e["target_hter_test_eer"]:.2f} %  '
                         f'AUC {100 * e["target_auc"]:.2f} %')
        ch = {k: pick([{**e, 'epoch': e['epoch']} for e in r['epochs']], *kr) for k, kr in rules.items()}
        h = {k: next(e['target_hter_val_eer'] for e in r['epochs'] if e['epoch'] == ep) for k, ep in ch.items()}
        lines.append('  chosen: ' + ', '.join(f'{k} -> epoch {ep} (HTER {100 * h[k]:.2f} %)' for k, ep in ch.items()))
        for k in diff: a, b = k.split('/'); diff[k] += ch[a] != ch[b]
        r['chosen'] = ch
    lines.append(f'runs where the chosen epochs differ ({len(runs)} runs): ' + ', '.join(f'{k} {v}' for k, v in diff.items()))
    moves = [abs(e1['target_hter_val_eer'] - e0['target_hter_val_eer']) for r in runs
             for e0, e1 in zip(r['epochs'], r['epochs'][1:])]
    if moves: lines.append(f'target HTER@val-EER change between consecutive epochs: mean {100 * sum(moves) / len(moves):.2f} '
                           f'points, max {100 * max(moves):.2f} points')
    return '\n'.join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--train', metavar='DIR', help='also train and measure the small batch in DIR')
    ap.add_argument('--json', metavar='FILE', help='write the measured per-epoch numbers here')
    ap.add_argument('--from-json', metavar='FILE', help='print a measurement written earlier by --json '
                    '(default: benchmark/model_selection.json)')
    a = ap.parse_args(argv)
    for b, c in committed().items():
        print(f'{b}: {c["runs"]} runs; AUC choice != last epoch in {c["auc_not_last"]}; val AUC tied across epochs in '
              f'{c["auc_tied"]}; best val AUC >= 0.95 in {c["auc_ge_095"]}; val loss logged: {c["has_val_loss"]}')
    runs = None
    if a.train: runs = measure(Path(a.train))
    else:   # the measurement recorded beside this script (made with --train, see benchmark/README.md)
        f = Path(a.from_json) if a.from_json else Path(__file__).with_name('model_selection.json')
        if f.exists(): print(f'measured ({f.name}):'); runs = json.loads(f.read_text())
    if runs:
        print(report(runs))
        if a.json: Path(a.json).write_text(json.dumps(runs, indent=1))


if __name__ == '__main__': main()
