#!/usr/bin/env python
"""Time one forward + backward pass of MMDG++ on the tiny configuration.

Builds the model through `create_model` (default config: U-Adapter++ on all six pairs, ADPs,
`mmdg-tiny-64`: 64 px, patch 8), three source domains, a random batch (8 by default) with all
modalities present, in training mode. One step = forward, fused + per-modality prompt losses,
one backward of their sum. Prints the median over the timed steps after a warm-up, the spread,
and `forward+backward: X ms`; the target on 2 CPU threads is under 1 s.

    python benchmark/speed/model_step.py                 # 2 threads, batch 8
    python benchmark/speed/model_step.py --set adapter.kind=u --set prompts.kind=none
"""
from __future__ import annotations
import argparse, os, statistics, sys, time
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch
from mmdgpp.config import ExperimentConfig, MODALITIES, from_dict, parse_overrides
from mmdgpp.models.baselines import create_model
from mmdgpp.models.mmdgpp import parameter_summary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--steps', type=int, default=20, help='timed steps (the median is reported)')
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    ap.add_argument('--domains', type=int, default=3, help='source domains (prompt classes 1..N)')
    ap.add_argument('--set', action='append', default=[], metavar='KEY=VALUE', help='config override, e.g. adapter.kind=u')
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = from_dict(parse_overrides(a.set), base=ExperimentConfig())
    model = create_model(cfg, a.domains).train()
    size = model.backbone.image_size
    B = a.batch
    batch = {m: torch.randn(B, 3, *size) for m in MODALITIES}
    batch.update(label=torch.arange(B) % 2, domain=torch.arange(B) % a.domains,
                 present=torch.ones(B, len(MODALITIES), dtype=torch.bool))

    def step():
        model.zero_grad(set_to_none=True)
        out = model(batch)
        sum(model.losses(out, batch).values()).backward()

    for _ in range(a.warmup): step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter(); step(); times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    q = statistics.quantiles(times, n=4) if len(times) >= 2 else [med, med, med]
    s = parameter_summary(model)
    c = model.cfg
    print(f'model: {c.model} ({c.backbone.name}, adapter {c.adapter.kind}, pairs {c.adapter.pairs}, prompts {c.prompts.kind}); '
          f'{s["trainable"]:,} trainable numbers')
    print(f'torch threads: {torch.get_num_threads()}, batch {B}, {a.steps} steps after {a.warmup} warm-up; '
          f'quartiles {q[0] * 1e3:.0f} / {q[1] * 1e3:.0f} / {q[2] * 1e3:.0f} ms, min {min(times) * 1e3:.0f} ms')
    if hasattr(os, 'getloadavg'):   # other processes on the cores slow multi-threaded steps far more than single-threaded ones
        print(f'machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (1 min) at the end')
    print(f'forward+backward: {med * 1e3:.0f} ms (median)')
    return med


if __name__ == '__main__':
    main()
