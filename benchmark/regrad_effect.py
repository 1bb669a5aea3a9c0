#!/usr/bin/env python
"""How much ReGrad changes the gradient of the real tiny MMDG++ (or MMDG), step by step.

Trains the model for a few steps on the synthetic benchmark (Protocol 1, target W) exactly as the
trainer does and prints, per step: the fast modality, the certainties U_m, the pairwise cosines of
the modality gradients, and per owner group (rgb, depth, ir, shared, all trainable numbers) the
share of numbers whose gradient ReGrad changed by more than 0.1 % and the relative change
||after - before|| / ||before|| against the plain summed gradient. The last lines are the means
over the steps.

    python benchmark/regrad_effect.py                        # MMDG++, literal zero-reference rule
    python benchmark/regrad_effect.py --set regrad.undefined=pass
    python benchmark/regrad_effect.py --model mmdg --steps 20
"""
from __future__ import annotations
import argparse, os, statistics, sys
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from mmdgpp.config import from_dict, parse_overrides
from mmdgpp.train.trainer import make_optimizer, train_step, ReGradSlot
from mmdgpp.train.reproducibility import make_loader
from mmdgpp.eval.checkpoints import build_model_and_data, to_device, seed_all

GROUPS = ('rgb', 'depth', 'ir', 'shared', 'all')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--model', default='mmdgpp')
    p.add_argument('--steps', type=int, default=12)
    p.add_argument('--preset', default='tiny', help='synthetic preset (tiny | small | medium)')
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--pretrained', default='default', help="backbone weights: 'default' (the shipped synthclip tower for mmdg-tiny-64), '' (random) or a tag")
    p.add_argument('--set', dest='overrides', action='append', default=[], metavar='KEY=VALUE')
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    cfg = from_dict({'model': a.model, 'data.source': 'synthetic', 'data.preset': a.preset, 'data.protocol': 'p1',
                     'data.target': 'W', 'data.batch_size': a.batch, 'backbone.name': 'mmdg-tiny-64',
                     'backbone.pretrained': a.pretrained, 'train.device': 'cpu', **parse_overrides(a.overrides)})
    gen = seed_all(cfg.train.seed)
    model, data = build_model_and_data(cfg, 'cpu')
    opt, sched = make_optimizer(model, cfg, a.steps)
    slot = ReGradSlot(cfg, model)
    order = torch.randperm(len(data.train), generator=gen).tolist()
    rows = []
    model.train()
    for step, batch in enumerate(make_loader(data.train, order, a.batch, gen, 0)):
        if step >= a.steps: break
        v = train_step(model, to_device(batch, 'cpu'), opt, sched, cfg, 'cpu', slot)
        if slot.regrad is None: sys.exit(f'{cfg.model}: ReGrad did not run (no per-modality losses or regrad.enabled=false)')
        fast = [m for m in ('rgb', 'depth', 'ir') if v.get(f'regrad_fast_{m}') == 1.0]
        rows.append(v)
        print(f'step {step + 1:>3}  fast {fast[0] if fast else "-":<5}  U ' +
              ' '.join(f'{v[f"regrad_certainty_{m}"]:.3g}' for m in ('rgb', 'depth', 'ir')) +
              '  cos ' + ' '.join(f'{v[k]:.2e}' for k in ('regrad_cos_rgb-depth', 'regrad_cos_rgb-ir', 'regrad_cos_depth-ir')) +
              '  changed ' + ' '.join(f'{g} {v[f"regrad_changed_{g}"]:.3f}' for g in GROUPS) +
              '  rel ' + ' '.join(f'{g} {v[f"regrad_rel_change_{g}"]:.3g}' for g in GROUPS), flush=True)
    n = len(rows)
    mean = lambda k: statistics.fmean(r[k] for r in rows)
    print(f'\n{cfg.model}, regrad v{cfg.regrad.version}, undefined={cfg.regrad.undefined}, '
          f'pretrained={cfg.backbone.pretrained or "random"}, n = {n} steps (means):')
    print('  changed share: ' + ', '.join(f'{g} {mean(f"regrad_changed_{g}"):.3f}' for g in GROUPS))
    print('  relative change: ' + ', '.join(f'{g} {mean(f"regrad_rel_change_{g}"):.3g}' for g in GROUPS))
    print('  certainty: ' + ', '.join(f'{m} {mean(f"regrad_certainty_{m}"):.3g}' for m in ('rgb', 'depth', 'ir')))
    print('  fast share: ' + ', '.join(f'{m} {mean(f"regrad_fast_{m}"):.2f}' for m in ('rgb', 'depth', 'ir')))
    print('  |cos|: ' + ', '.join(f'{k[10:]} {statistics.fmean(abs(r[k]) for r in rows):.2e}'
                                  for k in ('regrad_cos_rgb-depth', 'regrad_cos_rgb-ir', 'regrad_cos_depth-ir')))


if __name__ == '__main__':
    main()
