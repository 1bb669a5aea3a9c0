#!/usr/bin/env python
"""Time a ReGrad training step against a plain one on the tiny configuration.

From one run at the same batch (8 by default) it prints the plain step time (forward, fused and
modality losses summed, one backward, optimizer step), the ReGrad step time (forward, one
vector-Jacobian product per loss, modulation, optimizer step), their ratio as `ratio: X.XX`, and
the share of the modulation itself (momentum, flattening, per-tensor dot products, coefficients,
writing `.grad`) in the ReGrad step as `modulation share: X%`. Steps alternate (plain, ReGrad,
plain, ...) so that load from other processes hits both alike; medians after a warm-up.

    python benchmark/speed/regrad_step.py            # the real tiny MMDG++ (mmdg-tiny-64, 3 domains)
    python benchmark/speed/regrad_step.py --toy      # a stand-in of the same shape
    python benchmark/speed/regrad_step.py --vjp sequential,batched   # both per-loss gradient modes, side by side

With several `--vjp` modes, one ReGrad step of each mode follows each plain step, and a ratio and a
modulation share are printed per mode (`ratio[MODE]: X.XX`).
"""
from __future__ import annotations
import argparse, os, statistics, sys, time
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch
from torch import nn
import torch.nn.functional as F
from mmdgpp.config import ExperimentConfig, MODALITIES
from mmdgpp.core import resolve_device
from mmdgpp.train.regrad import ReGrad


class ToyMMDG(nn.Module):
    "Stand-in of MMDG++'s shape: frozen tiny CLIP, per-modality tokens/positions/projections, adapters, prompt contexts, fused head."
    def __init__(self, bb, num_domains=3, n_templates=4, n_ctx=5, dim=8):
        super().__init__()
        self.bb = bb
        W, TW, L = bb.width, bb.text_width, bb.num_layers
        copy = lambda t: nn.ParameterDict({m: nn.Parameter(t.detach().clone()) for m in MODALITIES})
        self.cls, self.pos, self.proj = copy(bb.class_embedding), copy(bb.positional_embedding), copy(bb.proj)
        self.down = nn.ModuleDict({m: nn.ModuleList([nn.Linear(W, dim) for _ in range(L)]) for m in MODALITIES})
        self.up = nn.ModuleDict({m: nn.ModuleList([nn.Linear(dim, W) for _ in range(L)]) for m in MODALITIES})
        self.ncls, self.n_ctx, self.nt = 1 + num_domains, n_ctx, n_templates
        self.ctx = nn.ParameterDict({m: nn.Parameter(torch.randn(self.ncls, n_ctx, TW) * 0.02) for m in MODALITIES})
        self.head = nn.Linear(len(MODALITIES) * bb.embed_dim, 2)
        tok = bb.tokenizer()([f'a photo of a face X X X X X, template {i}' for i in range(n_templates)])
        self.register_buffer('tok', tok)
        self.register_buffer('eot', tok.argmax(-1))

    def modality_params(self):
        return {m: [self.cls[m], self.pos[m], self.proj[m], *self.down[m].parameters(), *self.up[m].parameters(),
                    self.ctx[m]] for m in MODALITIES}
    def shared_params(self): return list(self.head.parameters())

    def text(self, m):
        e = self.bb.token_embedding(self.tok)[None].repeat(self.ncls, 1, 1, 1)
        e = torch.cat([e[:, :, :5], self.ctx[m][:, None].expand(-1, self.nt, -1, -1), e[:, :, 5 + self.n_ctx:]], 2)
        f = self.bb.encode_text_embeddings(e.flatten(0, 1), self.eot.repeat(self.ncls))
        return F.normalize(F.normalize(f, dim=-1).view(self.ncls, self.nt, -1).mean(1), dim=-1)

    def forward(self, batch):
        bb, xs = self.bb, {}
        for m in MODALITIES:
            t = bb.patch_tokens(batch[m])
            xs[m] = bb.ln_pre(torch.cat([self.cls[m].expand(t.shape[0], 1, -1), t], 1) + self.pos[m])
        for li, blk in enumerate(bb.blocks):
            xs = {m: x + blk.ls_1(blk.attention(blk.ln_1(x))) for m, x in xs.items()}
            hs = {m: blk.ln_2(x) for m, x in xs.items()}
            xs = {m: xs[m] + blk.ls_2(blk.mlp(hs[m])) +
                  sum(self.up[m][li](F.gelu(self.down[m][li](hs[o]))) for o in MODALITIES if o != m) for m in MODALITIES}
        v = {m: F.normalize(bb.ln_post(xs[m][:, 0]) @ self.proj[m], dim=-1) for m in MODALITIES}
        return dict(logits=self.head(torch.cat([v[m] for m in MODALITIES], -1)),
                    modality_logits={m: bb.logit_scale * v[m] @ self.text(m).T for m in MODALITIES},
                    certainty={m: torch.tensor(0.9, device=v[m].device) for m in MODALITIES})

    def losses(self, out, batch):
        y = batch['label']
        tgt = torch.where(y == 1, 0, batch['domain'] + 1)
        return {'fused': F.cross_entropy(out['logits'], y),
                **{m: F.cross_entropy(out['modality_logits'][m], tgt) for m in MODALITIES}}


def build(toy: bool, device):
    "The model and a note saying which one it is."
    cfg = ExperimentConfig()
    if not toy:
        try:
            from mmdgpp.models.baselines import create_model
            return create_model(cfg, num_domains=3).to(device), f'MMDG++ (create_model, {cfg.backbone.name})'
        except ImportError as e:
            note = f'mmdgpp.models.baselines.create_model not available ({e})'
        try:   # the same registered model create_model dispatches to
            from mmdgpp.models.backbone import create_backbone
            from mmdgpp.models.mmdgpp import build_mmdgpp
            return (build_mmdgpp(cfg, 3, create_backbone(cfg.backbone.name, '')).to(device),
                    f'MMDG++ (build_mmdgpp, {cfg.backbone.name}; {note})')
        except ImportError as e2:
            print(f'note: {note}; {e2}; using the stand-in model', file=sys.stderr)
    from mmdgpp.models.backbone import create_backbone
    return ToyMMDG(create_backbone(cfg.backbone.name, '')).to(device), f'stand-in model ({cfg.backbone.name} frozen)'


def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize(device)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--toy', action='store_true', help='time the stand-in model instead of the real tiny MMDG++')
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--steps', type=int, default=30, help='timed steps of each kind (medians are reported)')
    ap.add_argument('--warmup', type=int, default=5)
    ap.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    ap.add_argument('--device', default='cpu', help='cpu | cuda | auto')
    ap.add_argument('--version', type=int, default=4, help='ReGrad version 1-4')
    ap.add_argument('--vjp', default='sequential', help='per-loss gradients: sequential | batched, or both comma-separated')
    a = ap.parse_args(argv)
    modes = [v.strip() for v in a.vjp.split(',') if v.strip()]
    if not modes or any(v not in ('sequential', 'batched') for v in modes):
        print(f'error: --vjp takes sequential and/or batched, got {a.vjp!r}', file=sys.stderr); return 2
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    device = torch.device(resolve_device(a.device)) if a.device == 'auto' else torch.device(a.device)
    model, what = build(a.toy, device)
    model.train()
    rgs = {}
    for v in modes:
        cfg = ExperimentConfig().regrad
        cfg.version, cfg.vjp = a.version, v
        rgs[v] = ReGrad(cfg, model.modality_params(), model.shared_params())
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5)
    size = model.bb.image_size[0] if a.toy else model.backbone.image_size[0]
    B = a.batch
    batch = {m: torch.randn(B, 3, size, size, device=device) for m in MODALITIES}
    batch.update(label=torch.arange(B, device=device) % 2, domain=torch.arange(B, device=device) % 3,
                 present=torch.ones(B, len(MODALITIES), dtype=torch.bool))

    timer = {}
    def timed(name, fn):
        def run(*args, **kw):
            sync(device); t0 = time.perf_counter()
            r = fn(*args, **kw)
            sync(device); timer[name] = time.perf_counter() - t0
            return r
        return run
    for rg in rgs.values():                           # instance attributes: the step itself is unchanged
        rg.backward = timed('backward', rg.backward)
        rg.vjps = timed('vjps', rg.vjps)

    def plain_step():
        out = model(batch); ls = model.losses(out, batch)
        opt.zero_grad(set_to_none=True)
        sum(ls.values()).backward()
        opt.step()
    def forward():
        out = model(batch); return out, model.losses(out, batch)
    forward = timed('forward', forward)
    def regrad_step(v):
        out, ls = forward()
        rgs[v].backward(ls, out.get('certainty'), batch['present'])
        opt.step()
    def clock(fn):
        sync(device); t0 = time.perf_counter(); fn(); sync(device)
        return time.perf_counter() - t0

    for _ in range(a.warmup):
        plain_step()
        for v in modes: regrad_step(v)
    tp, tr, tm, tf, tv = [], {v: [] for v in modes}, {v: [] for v in modes}, {v: [] for v in modes}, {v: [] for v in modes}
    for _ in range(a.steps):
        tp.append(clock(plain_step))
        for v in modes:
            tr[v].append(clock(lambda: regrad_step(v)))
            tm[v].append(timer['backward'] - timer['vjps']); tf[v].append(timer['forward']); tv[v].append(timer['vjps'])
    med = statistics.median
    p = med(tp)
    n_train = sum(q.numel() for q in params)
    print(f'model: {what}; {len(params)} trainable tensors, {n_train:,} trainable numbers')
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if device.type == 'cpu' and load > cores:
        print(f'note: load average {load:.1f} on {cores} cores: other processes compete for the CPU; '
              f'times are inflated (with several torch threads, badly: try --threads 1)')
    print(f'device: {device}, torch threads: {torch.get_num_threads()}, batch {B}, '
          f'{a.steps} steps of each kind after {a.warmup} warm-up, ReGrad v{a.version}, per-loss gradients: {", ".join(modes)}')
    print(f'plain step:  {p * 1e3:.1f} ms (median)')
    res = dict(plain=p)
    for v in modes:
        r, m = med(tr[v]), med(tm[v])
        tag = '' if len(modes) == 1 else f'[{v}]'
        print(f'ReGrad step{tag}: {r * 1e3:.1f} ms (median; forward + losses {med(tf[v]) * 1e3:.1f} ms, '
              f'{len(MODALITIES) + 1} per-loss gradients ({v}) {med(tv[v]) * 1e3:.1f} ms, modulation {m * 1e3:.2f} ms)')
        print(f'ratio{tag}: {r / p:.2f}')
        print(f'modulation share{tag}: {100 * m / r:.1f}%')
        res[v] = dict(regrad=r, modulation=m, vjps=med(tv[v]))
    return res


if __name__ == '__main__':
    sys.exit(0 if isinstance(main(), dict) else 2)
