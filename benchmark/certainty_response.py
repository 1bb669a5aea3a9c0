"""Does U-Adapter++'s certainty respond to corrupted input? For each start of the log-variance head
(`adapter.logvar_init`: the constant -3 and 'reference'), train MMDG++ on synthetic Protocol 1, target W,
at the evidence grid's settings (preset evidence, data seed 0, 2 epochs, lr 1e-2, mmdg-tiny-64, CPU)
and print per epoch the certainty read-out (mmdgpp.models.certainty): per modality the mean, the
spread across tokens and, for depth and IR, the gap = mean c on frames with depth dropout / IR flare
minus mean c on clean frames, on the epoch's training batches (training mode) and on W's test set
(evaluation mode). A responsive certainty has a negative gap.

    OMP_NUM_THREADS=1 nice -n 5 python benchmark/certainty_response.py [--inits -3 reference] [--out DIR]

The corruption flags come from the benchmark's manifest.csv (columns dropout, flare) when the data
items do not carry `corrupt` themselves. About 2 minutes per init on one core.
"""
import argparse, csv, json, sys, tempfile
from pathlib import Path
import torch
from mmdgpp.config import from_dict, parse_overrides
from mmdgpp.models.certainty import CertaintyMeter
from mmdgpp.eval.checkpoints import build_model_and_data, predict
from mmdgpp.train.trainer import train

class Flagged(torch.utils.data.Dataset):
    "A dataset whose items also carry `corrupt` (3,) bool (rgb, depth, ir), read from the manifest."
    def __init__(self, ds, manifest):
        self.ds, self.records = ds, ds.records
        self.flags = [torch.tensor([False, bool(int(r.get('dropout', 0))), bool(int(r.get('flare', 0)))])
                      for r in (manifest[rec.npz or rec.paths['rgb']] for rec in ds.records)]
    def __len__(self): return len(self.ds)
    def __getitem__(self, i):
        it = self.ds[i]
        if 'corrupt' not in it: it['corrupt'] = self.flags[i]
        return it

def flagged_build(tests: list):
    def build(cfg, device):
        model, data = build_model_and_data(cfg, device)
        with open(Path(data.root)/'manifest.csv', newline='') as fh: man = {r['sample']: r for r in csv.DictReader(fh)}
        data.train, data.test = Flagged(data.train, man), Flagged(data.test, man)
        tests.append((model, data))
        return model, data
    return build

def fmt(r: dict) -> str:
    f = lambda x: '   n/a' if x is None else f'{x:+.4f}'
    return '  '.join(f'{m} {r[m]["mean"]:.4f}±{r[m]["spread"]:.4f}' for m in r) + \
           f'  gap depth {f(r["depth"]["gap"])} (n {r["depth"]["n_corrupt"]}/{r["depth"]["n_clean"]})' \
           f'  ir {f(r["ir"]["gap"])} (n {r["ir"]["n_corrupt"]}/{r["ir"]["n_clean"]})'

def run(init, out: Path, overrides: dict) -> list[dict]:
    cfg = from_dict({'model': 'mmdgpp', 'data.source': 'synthetic', 'data.preset': 'evidence', 'data.seed': 0,
                     'data.target': 'W', 'backbone.name': 'mmdg-tiny-64', 'train.device': 'cpu', 'train.epochs': 2,
                     'train.lr': 0.01, 'adapter.logvar_init': init, **overrides})
    built, rows = [], []
    def on_step(d):
        model, data = built[0]
        if d['batch'] == on_step.spe:      # the epoch's last step: the test set, evaluation mode
            test = CertaintyMeter()
            predict(model, data.test, 64, 'cpu', observe=test.update)
            rows.append(dict(init=init, epoch=d['epoch'], test=test.result()))
    build = flagged_build(built)
    # the trainer's log.csv holds the training batches' read-out (columns cert_<m>_<stat>)
    from mmdgpp.train import trainer
    spe = lambda n, b, m=0: trainer.steps_per_epoch(n, b, m)
    def build_and_count(cfg, device):
        model, data = build(cfg, device)
        on_step.spe = spe(len(data.train), cfg.data.batch_size, cfg.train.max_steps_per_epoch)
        return model, data
    run_dir = train(cfg, out/f'logvar_init-{init}', resume=False, build=build_and_count, verbose=False, on_step=on_step)
    with open(run_dir/'log.csv', newline='') as fh: log = list(csv.DictReader(fh))
    for r, l in zip(rows, log):
        r['train'] = {m: dict(mean=float(l[f'cert_{m}_mean']), spread=float(l[f'cert_{m}_spread']),
                              gap=None if l[f'cert_{m}_gap'] in ('', 'nan') else float(l[f'cert_{m}_gap']))
                      for m in ('rgb', 'depth', 'ir')}
        r['loss_fused'] = float(l['loss_fused'])
    return rows

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--inits', nargs='+', default=['-3', 'reference'])
    p.add_argument('--out', default=None, help='folder for the runs (default: a temporary folder)')
    p.add_argument('--set', nargs='*', default=[], help='further config overrides key=value')
    a = p.parse_args()
    out = Path(a.out or tempfile.mkdtemp(prefix='certainty-response-'))
    allrows = []
    for init in a.inits:
        init = init if init == 'reference' else float(init)
        rows = run(init, out, parse_overrides(a.set))
        for r in rows:
            tr = r['train']
            print(f'logvar_init {init!s:>9}  epoch {r["epoch"]}  fused loss {r["loss_fused"]:.3f}')
            print('  train  ' + '  '.join(f'{m} {tr[m]["mean"]:.4f}±{tr[m]["spread"]:.4f}' for m in tr) +
                  '  gap depth ' + ('n/a' if tr['depth']['gap'] is None else f'{tr["depth"]["gap"]:+.4f}') +
                  '  ir ' + ('n/a' if tr['ir']['gap'] is None else f'{tr["ir"]["gap"]:+.4f}'))
            print('  test   ' + fmt(r['test']), flush=True)
        allrows += rows
    (out/'certainty_response.json').write_text(json.dumps(allrows, indent=1))
    print(f'read-outs: {out/"certainty_response.json"}')

if __name__ == '__main__':
    sys.exit(main())
