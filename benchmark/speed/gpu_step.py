#!/usr/bin/env python
"""Throughput of MMDG++ training and evaluation steps on a GPU, with and without ReGrad.

Builds MMDG++ on a randomly initialised CLIP (no weights needed: timing does not depend on them;
ViT-B-16 at 224 px by default), three modality streams plus the text tower encoding the prompts
every step, and times, at one batch size (32 by default), for each precision (fp32, and bf16 under
autocast):

- a plain step: forward, the summed losses, one backward, AdamW step;
- a ReGrad step for each per-loss gradient mode asked for (`--vjp`): forward, 1 + M per-loss
  gradients, modulation, AdamW step;
- an evaluation step: forward under `torch.no_grad()` in eval mode.

Training steps alternate (plain, ReGrad, plain, ...) so that anything else on the machine hits
all kinds alike; figures are medians over the timed steps, after warm-up steps. A "sample" is one
face: three images (RGB, depth, IR) of 224 px; images/s below counts samples (batch / step time).
Printed per precision: ms/step, images/s and the peak GPU memory of each kind, the ReGrad/plain
ratio, and the modulation share (the time ReGrad spends outside the per-loss gradients: momenta,
dot products, coefficients, writing .grad) of the ReGrad step.

    python benchmark/speed/gpu_step.py --device cuda                         # ViT-B-16, batch 32, <= 5 min
    python benchmark/speed/gpu_step.py --device cuda --profile prof.txt      # + a torch.profiler top-ops table
    python benchmark/speed/gpu_step.py --arch mmdg-tiny-64 --device cpu --allow-cpu --batch 4 --precisions fp32

The CPU form exists to test the script's arithmetic on a tiny model; CPU figures of ViT-B-16 mean
nothing for GPU users. `--json FILE` also writes every per-step time measured.
"""
from __future__ import annotations
import argparse, contextlib, json, os, statistics, sys, time
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


class Refused(Exception): pass


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--device', default='cuda', help='cuda | cuda:N (cpu only with --allow-cpu)')
    ap.add_argument('--allow-cpu', action='store_true', help='run on the CPU (to test the script on a tiny model)')
    ap.add_argument('--arch', default='ViT-B-16', help='open_clip architecture, randomly initialised')
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--steps', type=int, default=10, help='timed steps of each kind per precision (medians)')
    ap.add_argument('--warmup', type=int, default=3, help='untimed steps of each kind per precision')
    ap.add_argument('--precisions', default='fp32,bf16', help='comma-separated: fp32, bf16')
    ap.add_argument('--vjp', default='sequential,batched', help='comma-separated ReGrad per-loss gradient modes: sequential, batched')
    ap.add_argument('--threads', type=int, default=0, help='torch CPU threads (0 = leave as is)')
    ap.add_argument('--profile', default='', help='write a torch.profiler top-ops table of one ReGrad step to this file')
    ap.add_argument('--json', default='', help='write the per-step times and the figures to this file')
    return ap.parse_args(argv)


def check(a):
    "Refuse what cannot give meaningful figures, with one message."
    import torch
    precs = [p.strip() for p in a.precisions.split(',') if p.strip()]
    vjps = [v.strip() for v in a.vjp.split(',') if v.strip()]
    if not precs or any(p not in ('fp32', 'bf16') for p in precs): raise Refused(f'--precisions takes fp32 and/or bf16, got {a.precisions!r}')
    if not vjps or any(v not in ('sequential', 'batched') for v in vjps): raise Refused(f'--vjp takes sequential and/or batched, got {a.vjp!r}')
    if a.batch < 1 or a.steps < 1 or a.warmup < 0: raise Refused('--batch and --steps must be >= 1, --warmup >= 0')
    try: dev = torch.device(a.device)
    except RuntimeError: raise Refused(f'unknown device {a.device!r}; use cuda, cuda:N or (with --allow-cpu) cpu')
    if dev.type == 'cpu' and not a.allow_cpu:
        raise Refused('this script measures GPU throughput; on the CPU it only runs with --allow-cpu (a test of the script, not a benchmark)')
    if dev.type == 'cuda':
        if not torch.cuda.is_available():
            raise Refused(f'--device {a.device}: no CUDA device is available here (torch {torch.__version__}, '
                          f'CUDA build {torch.version.cuda or "none"}); run it on a machine with a GPU')
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise Refused(f'--device {a.device}: only {torch.cuda.device_count()} CUDA device(s) here')
    elif dev.type != 'cpu': raise Refused(f'unsupported device {a.device!r}; use cuda, cuda:N or cpu')
    if 'bf16' in precs and dev.type == 'cuda' and not torch.cuda.is_bf16_supported():
        raise Refused('this GPU does not support bf16; pass --precisions fp32')
    return dev, precs, vjps


def median(xs): return statistics.median(xs)


def main(argv=None):
    a = parse(argv)
    try: dev, precs, vjps = check(a)
    except Refused as e:
        print(f'error: {e}', file=sys.stderr); return 2
    import torch
    from mmdgpp.config import ExperimentConfig, MODALITIES
    from mmdgpp.models.baselines import create_model
    from mmdgpp.train.regrad import ReGrad
    from mmdgpp.core import MMDGError
    if a.threads: torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = ExperimentConfig()
    cfg.backbone.name, cfg.backbone.pretrained = a.arch, ''
    try: model = create_model(cfg, num_domains=3).to(dev)
    except MMDGError as e:
        print(f'error: {e}', file=sys.stderr); return 2
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-6)
    size, B = model.backbone.image_size[0], a.batch
    g = torch.Generator().manual_seed(0)
    batch = {m: torch.randn(B, 3, size, size, generator=g).to(dev) for m in MODALITIES}
    batch.update(label=(torch.arange(B) % 2).to(dev), domain=(torch.arange(B) % 3).to(dev),
                 present=torch.ones(B, len(MODALITIES), dtype=torch.bool))
    cuda = dev.type == 'cuda'
    sync = (lambda: torch.cuda.synchronize(dev)) if cuda else (lambda: None)
    regrads = {}
    for v in vjps:
        rc = ExperimentConfig().regrad
        rc.vjp = v
        regrads[v] = ReGrad.from_model(rc, model)

    def autocast(prec):
        return torch.autocast(dev.type, dtype=torch.bfloat16) if prec == 'bf16' else contextlib.nullcontext()

    inner = {}
    def plain_step(prec):
        with autocast(prec):
            out = model(batch); ls = model.losses(out, batch)
        opt.zero_grad(set_to_none=True)
        torch.stack([l.float() for l in ls.values()]).sum().backward()
        opt.step()
    def regrad_step(prec, v):
        rg = regrads[v]
        with autocast(prec):
            out = model(batch); ls = model.losses(out, batch)
        sync(); t0 = time.perf_counter()
        rg.backward(ls, out.get('certainty'), batch['present'])
        sync(); t1 = time.perf_counter()
        inner['backward'] = t1 - t0
        opt.step()
    vjp_time = {}
    for v, rg in regrads.items():        # time the per-loss gradients inside the ReGrad step (instance attribute)
        def timed_vjps(targets, _f=rg.vjps):
            sync(); t0 = time.perf_counter(); r = _f(targets); sync(); inner['vjps'] = time.perf_counter() - t0
            return r
        rg.vjps = timed_vjps
    def eval_step(prec):
        with torch.no_grad(), autocast(prec): model(batch)['logits']
    def clock(fn, *args):
        if cuda: torch.cuda.reset_peak_memory_stats(dev)
        sync(); t0 = time.perf_counter(); fn(*args); sync()
        t = time.perf_counter() - t0
        return t, (torch.cuda.max_memory_allocated(dev) if cuda else None)

    res = dict(device=str(dev), card=torch.cuda.get_device_name(dev) if cuda else 'cpu', arch=a.arch, batch=B,
               steps=a.steps, warmup=a.warmup, torch=torch.__version__, threads=torch.get_num_threads(),
               trainable=sum(p.numel() for p in params), total=sum(p.numel() for p in model.parameters()), runs={})
    t_start = time.perf_counter()
    for prec in precs:
        kinds = ['plain'] + [f'regrad-{v}' for v in vjps]
        times = {k: [] for k in kinds + ['eval']}
        peaks = {k: [] for k in kinds + ['eval']}
        mods = {v: [] for v in vjps}
        def one(k):
            if k == 'plain': return clock(plain_step, prec)
            v = k.split('-', 1)[1]
            t, pk = clock(regrad_step, prec, v)
            return t, pk, v
        for i in range(a.warmup + a.steps):
            for k in kinds:
                r = one(k)
                if i < a.warmup: continue
                times[k].append(r[0]); peaks[k].append(r[1])
                if k != 'plain': mods[r[2]].append(inner['backward'] - inner['vjps'])
        model.eval()
        for i in range(a.warmup + a.steps):
            t, pk = clock(eval_step, prec)
            if i >= a.warmup: times['eval'].append(t); peaks['eval'].append(pk)
        model.train()
        res['runs'][prec] = dict(times=times, peaks=peaks, modulation=mods)
    res['seconds'] = time.perf_counter() - t_start

    print(f'device: {res["card"]} ({res["device"]}), torch {res["torch"]}, {res["threads"]} CPU threads; '
          f'MMDG++ on random-init {a.arch} ({size} px), 3 streams + text tower; '
          f'{res["trainable"]:,} trainable of {res["total"]:,} parameters')
    print(f'batch {B}; {a.steps} timed steps of each kind after {a.warmup} warm-up; medians; images/s = samples '
          f'(3 images each) per second = batch / step time')
    if dev.type == 'cpu':
        print(f'note: CPU run (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores): a test of the script, not a GPU figure')
    for prec, run in res['runs'].items():
        t, pk = run['times'], run['peaks']
        fig = res['runs'][prec]['figures'] = {}
        for k in t:
            ms = median(t[k]); ips = B / ms
            mem = max(pk[k]) / 2**30 if cuda else None
            fig[k] = dict(ms=ms * 1e3, images_per_s=ips, peak_gib=mem)
            print(f'{prec} {k}: {ms * 1e3:.1f} ms/step, {ips:.1f} images/s, peak memory '
                  + (f'{mem:.2f} GiB' if mem is not None else 'n/a (cpu)'))
        for v in vjps:
            r = median(t[f'regrad-{v}']) / median(t['plain'])
            sh = 100 * median(run['modulation'][v]) / median(t[f'regrad-{v}'])
            fig[f'regrad-{v}'].update(ratio=r, modulation_share=sh)
            print(f'{prec} ratio regrad-{v}/plain: {r:.2f}')
            print(f'{prec} modulation share regrad-{v}: {sh:.1f}%')
    print(f'total measured time: {res["seconds"]:.1f} s')

    if a.profile:
        from torch.profiler import profile, ProfilerActivity
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        v = vjps[0]
        labelled = []          # label the forward of the model's parts (instance attributes, removed after)
        for name, part in (('forward: image streams + adapters', model.streams), ('forward: text tower (prompts)', model.prompts),
                           ('forward: whole model', model)):
            if part is None: continue
            def wrapped(*args, _f=part.forward, _n=name, **kw):
                with torch.profiler.record_function(_n): return _f(*args, **kw)
            part.forward = wrapped; labelled.append(part)
        regrad_step(precs[0], v); sync()
        with profile(activities=acts) as prof:
            regrad_step(precs[0], v); sync()
        for part in labelled: del part.forward
        key = 'cuda_time_total' if cuda else 'cpu_time_total'
        head = (f'# torch.profiler, one ReGrad step ({v} per-loss gradients, {precs[0]}): MMDG++ on random-init {a.arch}, '
                f'batch {B}, {res["card"]}, {res["threads"]} CPU threads, torch {res["torch"]}; sorted by {key}\n')
        Path(a.profile).write_text(head + prof.key_averages().table(sort_by=key, row_limit=60) + '\n')
        print(f'profile: {a.profile}')
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
