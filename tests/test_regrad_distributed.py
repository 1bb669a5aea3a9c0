"ReGrad under torch.distributed: two CPU processes (gloo) modulate the averaged gradients exactly like one process on the whole batch."
import os, tempfile
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
import torch.nn.functional as F

MODS = ('rgb', 'depth', 'ir')


class Small(nn.Module):
    "Three streams with cross-modal mixing, per-modality heads and a fused head (all losses are batch means)."
    def __init__(self, d=4):
        super().__init__()
        torch.manual_seed(0)                          # the same initial weights in every process
        g = torch.Generator().manual_seed(0)
        self.w = nn.ParameterDict({m: nn.Parameter(torch.randn(d, d, generator=g)) for m in MODS})
        self.frozen = nn.Linear(d, d).requires_grad_(False)
        self.cls = nn.ModuleDict({m: nn.Linear(d, 3) for m in MODS})
        self.head = nn.Linear(3 * d, 2)

    def forward(self, x):
        h = {m: torch.tanh(self.frozen(x[m]) @ self.w[m]) for m in MODS}
        z = {m: h[m] + 0.5 * sum(h[o] for o in MODS if o != m) for m in MODS}
        return self.head(torch.cat([z[m] for m in MODS], -1)), {m: self.cls[m](z[m]) for m in MODS}

    def losses(self, x, y, t):
        fused, ml = self(x)
        return {'fused': F.cross_entropy(fused, y), **{m: F.cross_entropy(ml[m], t) for m in MODS}}

    def ownership(self):
        return {m: [self.w[m], *self.cls[m].parameters()] for m in MODS}, list(self.head.parameters())


def data(B=8):
    g = torch.Generator().manual_seed(1)
    return ({m: torch.randn(B, 4, generator=g) for m in MODS}, torch.randint(0, 2, (B,), generator=g),
            torch.randint(0, 3, (B,), generator=g))


def step(rank, world, steps=3):
    "Run a few ReGrad steps on this rank's half of the batch; return the gradients and momenta."
    from mmdgpp.config import ReGradConfig
    from mmdgpp.train.regrad import ReGrad
    model = Small()
    rg = ReGrad(ReGradConfig(), *model.ownership())
    x, y, t = data()
    sl = slice(rank * 8 // world, (rank + 1) * 8 // world)
    x, y, t = {m: v[sl] for m, v in x.items()}, y[sl], t[sl]
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    for _ in range(steps):
        rg.backward(model.losses(x, y, t), {m: torch.tensor(c) for m, c in zip(MODS, (0.9, 0.5, 0.7))})
        grads = [p.grad.clone() for p in rg.params]
        opt.step()
    return grads, rg.momentum.clone()


def _worker(rank, world, init, out):
    dist.init_process_group('gloo', init_method=init, rank=rank, world_size=world)
    try: torch.save(step(rank, world), f'{out}/{rank}.pt')
    finally: dist.destroy_process_group()


def test_two_processes_equal_one_process_on_the_whole_batch():
    with tempfile.TemporaryDirectory() as d:
        mp.spawn(_worker, args=(2, f'file://{d}/store', d), nprocs=2, join=True)
        r0, r1 = torch.load(f'{d}/0.pt'), torch.load(f'{d}/1.pt')
    g1, m1 = step(0, 1)
    for a, b, c in zip(r0[0], r1[0], g1):
        assert torch.equal(a, b)                      # both processes apply the same update
        torch.testing.assert_close(a, c, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(r0[1], m1)             # momenta from the mean loss over processes


# The real trainer under torchrun: two CPU processes, each trains on its own shard of the data (the
# trainer's epoch_order gives rank r the samples r, r+2, ...), MMDG++ with ReGrad on the tiny preset.
_TORCHRUN_SCRIPT = '''
import sys, torch
from pathlib import Path
from mmdgpp.config import from_dict
from mmdgpp.train.trainer import train, build_model_and_data, trainable_state, dist_env
out, root = Path(sys.argv[1]), sys.argv[2]
cfg = from_dict({'model': 'mmdgpp', 'data.preset': 'tiny', 'data.root': root, 'data.batch_size': 2,
                 'data.max_per_split': 8, 'adapter.num_samples': 4, 'train.epochs': 1, 'train.max_steps_per_epoch': 3,
                 'train.device': 'cpu', 'train.seed': 3})
assert cfg.regrad.enabled and cfg.regrad.use_certainty
box = {}
def build(cfg, device):
    model, data = build_model_and_data(cfg, device); box['model'] = model; return model, data
train(cfg, out/'run', build=build, verbose=False, progress=False)
torch.save(trainable_state(box['model']), out/f'rank{dist_env()[0]}.pt')
'''


def test_torchrun_trainer_keeps_ranks_bitwise_equal(tmp_path):
    import json, subprocess, sys
    from pathlib import Path
    from mmdgpp.data.synth import default_synth_dir, ensure_synth
    root = ensure_synth('tiny', 0, default_synth_dir('tiny', 0))
    (tmp_path/'script.py').write_text(_TORCHRUN_SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS='1', MPLBACKEND='Agg', HF_HUB_OFFLINE='1')
    r = subprocess.run([str(Path(sys.executable).parent/'torchrun'), '--standalone', '--nproc_per_node', '2',
                        str(tmp_path/'script.py'), str(tmp_path), str(root)],
                       capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    w0, w1 = torch.load(tmp_path/'rank0.pt'), torch.load(tmp_path/'rank1.pt')
    assert w0.keys() == w1.keys() and len(w0) > 50
    differ = [k for k in w0 if not torch.equal(w0[k], w1[k])]
    assert not differ, f'{len(differ)} of {len(w0)} tensors differ between the ranks, e.g. {differ[:3]}'
    m = json.loads((tmp_path/'run'/'metrics.json').read_text())
    assert m['regrad'] is True and m['steps'] == 3
    assert (m['world_size'], m['batch_size_per_process'], m['effective_batch_size']) == (2, 2, 4)
