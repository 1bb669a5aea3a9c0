"Run safety: one writer per run folder, kills at every write point, a full disk, non-finite weights, one-line errors."
import errno, hashlib, json, os, shutil, signal, socket, subprocess, sys, types
from pathlib import Path
import pytest, torch
from torch import nn
import torch.nn.functional as F
from conftest import ROOT, BIN
from mmdgpp.core import MMDGError
from mmdgpp.config import MODALITIES, from_dict
import mmdgpp.train.trainer as T


# A stand-in for the real model and data (the model contract in miniature): it trains in a fraction of a second.
class ToyFAS(torch.utils.data.Dataset):
    def __init__(self, n, seed, train=False):
        g = torch.Generator().manual_seed(seed)
        self.y, self.d = torch.randint(0, 2, (n,), generator=g), torch.randint(0, 3, (n,), generator=g)
        self.x = torch.randn(n, 3, 3, 8, 8, generator=g) + 0.4 * (2 * self.y.float() - 1).view(n, 1, 1, 1, 1)
        self.train = train
    def __len__(self): return len(self.y)
    def __getitem__(self, i):
        x = self.x[i] + (0.1 * torch.randn(3, 3, 8, 8) if self.train else 0)
        return dict(rgb=x[0], depth=x[1], ir=x[2], present=torch.ones(3, dtype=torch.bool), label=self.y[i],
                    domain=self.d[i], attack='live' if self.y[i] else 'print', video=f'v{i}')


class _NaNGrad(torch.autograd.Function):
    "Identity forward (the loss stays finite); NaN gradient backward."
    @staticmethod
    def forward(ctx, x): return x.clone()
    @staticmethod
    def backward(ctx, g): return g * float('nan')


class ToyModel(nn.Module):
    def __init__(self, poison_at=None):
        super().__init__()
        self.enc = nn.ModuleDict({m: nn.Linear(192, 8) for m in MODALITIES})
        self.cls = nn.ModuleDict({m: nn.Linear(8, 4) for m in MODALITIES})
        self.head = nn.Linear(24, 2)
        self.steps, self.poison_at = 0, poison_at
    def forward(self, b):
        f = {m: torch.tanh(self.enc[m](b[m].flatten(1))) for m in MODALITIES}
        if self.training and self.poison_at == self.steps + 1: f['rgb'] = _NaNGrad.apply(f['rgb'])
        return dict(logits=self.head(torch.cat([f[m] for m in MODALITIES], 1)),
                    modality_logits={m: self.cls[m](f[m]) for m in MODALITIES},
                    certainty={m: torch.tensor(1.0) for m in MODALITIES})
    def losses(self, out, b):
        if self.training: self.steps += 1
        t = torch.where(b['label'] == 1, 0, 1 + b['domain'])
        return dict(fused=F.cross_entropy(out['logits'], b['label']),
                    **{m: F.cross_entropy(out['modality_logits'][m], t) for m in MODALITIES})
    def modality_params(self): return {m: [*self.enc[m].parameters(), *self.cls[m].parameters()] for m in MODALITIES}
    def shared_params(self): return list(self.head.parameters())


def toy_build(cfg, device, poison_at=None):
    data = types.SimpleNamespace(task=types.SimpleNamespace(name='toy'), domains=['C', 'P', 'S'],
                                 train=ToyFAS(48, 1, train=True), val=ToyFAS(48, 2), test=ToyFAS(48, 3))
    return ToyModel(poison_at), data


CFG = from_dict({'train.epochs': 4, 'train.lr': 0.05, 'train.device': 'cpu', 'train.checkpoint_every': 2,
                 'data.batch_size': 16, 'train.val_metric': 'hter'})


def _train(out, **kw):
    return T.train(kw.pop('cfg', CFG), out, build=kw.pop('build', toy_build), verbose=False, progress=False, **kw)


def _sha(p): return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def _outcome(run: Path) -> dict:
    "What a finished run leaves: best and last weights, the log without timings, the metrics without timings."
    ck = lambda n: T.read_checkpoint(run/'checkpoints'/n)
    log = [l.split(',') for l in (run/'log.csv').read_text().splitlines()]
    drop = log[0].index('seconds')
    m = json.loads((run/'metrics.json').read_text()); m.pop('seconds')
    return dict(best={k: v.tolist() for k, v in ck('best.pt')['model'].items()}, best_epoch=ck('best.pt')['state']['epoch'],
                last={k: v.tolist() for k, v in ck('last.pt')['model'].items()},
                log=[r[:drop] + r[drop + 1:] for r in log], metrics=m)


# ---------------------------------------------------------------- one writer per run folder
def test_second_writer_gets_the_holders_name(tmp_path):
    seen = []
    def second(info):           # while the first run holds the folder, a second run into it
        if info['step'] == 1:
            with pytest.raises(MMDGError) as e: _train(tmp_path/'run')
            seen.append(str(e.value))
    _train(tmp_path/'run', on_step=second)
    assert seen and f'is in use by process {os.getpid()} on {socket.gethostname()}' in seen[0]
    assert json.loads((tmp_path/'run'/'metrics.json').read_text())['status'] == 'complete'


def test_lock_of_a_killed_process_is_taken_over(tmp_path):
    run = tmp_path/'run'
    code = (f'import os, signal; from mmdgpp.train.runfolder import run_lock\n'
            f'with run_lock({str(run)!r}): os.kill(os.getpid(), signal.SIGKILL)')
    p = subprocess.run([sys.executable, '-c', code])
    assert p.returncode == -signal.SIGKILL
    held = json.loads((run/'.lock').read_text())
    assert held['pid'] != os.getpid() and held['host'] == socket.gethostname()     # the dead holder's note is there
    seen = []
    _train(run, cfg=from_dict({'train.epochs': 1}, base=CFG),
           on_step=lambda i: seen.append(json.loads((run/'.lock').read_text())['pid']))
    assert set(seen) == {os.getpid()}


# ---------------------------------------------------------------- kills at every write point
class Killed(BaseException): "Stands for SIGKILL: nothing in the trainer catches it."


def _inject(monkeypatch, kill_at=None, when='before'):
    "Wrap every file write of the trainer; raise Killed before/after write number `kill_at`; return the write log."
    calls = []
    for name in ('save_checkpoint', 'write_log', 'write_metrics', 'save_config'):
        real = getattr(T, name)
        def wrapped(*a, _real=real, _name=name, **k):
            calls.append(_name)
            if kill_at == len(calls) and when == 'before': raise Killed
            r = _real(*a, **k)
            if kill_at == len(calls) and when == 'after': raise Killed
            return r
        monkeypatch.setattr(T, name, wrapped)
    return calls


def test_a_kill_at_any_write_point_loses_nothing(tmp_path, monkeypatch):
    "Killed just before each write (and after the last one), the same command again ends exactly like an unbroken run."
    monkeypatch.setattr(T, 'plot_history', lambda *a, **k: None)      # not a state the run depends on; saves time
    cfg = from_dict({'train.epochs': 3}, base=CFG)
    with monkeypatch.context() as m:
        writes = _inject(m)
        _train(tmp_path/'full', cfg=cfg)
    ref = _outcome(tmp_path/'full')
    assert ref['best_epoch'] < 3 and 'save_checkpoint' in writes     # the best is not simply the last epoch
    # between two writes the files on disk do not change: "before write k" covers "after write k - 1"
    for k, when in [(k, 'before') for k in range(1, len(writes) + 1)] + [(len(writes), 'after')]:
        run = tmp_path/f'{when}{k}'
        with monkeypatch.context() as m:
            _inject(m, k, when)
            with pytest.raises(Killed): _train(run, cfg=cfg)
        _train(run, cfg=cfg)                                               # the same command again
        assert _outcome(run) == ref, f'killed {when} write {k} ({writes[k - 1]})'


# ---------------------------------------------------------------- a full disk
def test_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    run, seen = tmp_path/'run', {}
    ck = run/'checkpoints'
    def enospc(fd): raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    def disk_fills(info):               # after step 3: the epoch's checkpoint is the next write
        if info['step'] == 3: seen['before'] = _sha(ck/'last.pt'); monkeypatch.setattr(os, 'fsync', enospc)
    with pytest.raises(MMDGError) as e: _train(run, cfg=from_dict({'train.epochs': 1}, base=CFG), on_step=disk_fills)
    monkeypatch.undo()
    assert str(e.value).startswith(f'no space left writing {ck/"last.pt"}') and 'previous checkpoint is kept' in str(e.value)
    assert sorted(p.name for p in ck.iterdir()) == ['last.pt']        # no temporary file left behind
    assert _sha(ck/'last.pt') == seen['before'] and T.read_checkpoint(ck/'last.pt')['state']['step'] == 2


def test_file_size_limit_is_one_clear_error(tmp_path):
    "A real write failure from the OS (RLIMIT_FSIZE: EFBIG) while torch writes the checkpoint."
    code = f'''import resource, signal, torch
from mmdgpp.core import MMDGError
from mmdgpp.train.trainer import save_checkpoint
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
save_checkpoint({str(tmp_path/"c.pt")!r}, dict(model=dict(w=torch.ones(1000))))
resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))
try: save_checkpoint({str(tmp_path/"c.pt")!r}, dict(model=dict(w=torch.zeros(100_000))))
except MMDGError as e: print('error:', e)
'''
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert r.returncode == 0 and 'Traceback' not in r.stderr, r.stderr[-2000:]
    assert r.stdout.startswith(f'error: cannot write {tmp_path/"c.pt"}: File too large'), r.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ['c.pt']
    assert torch.equal(T.read_checkpoint(tmp_path/'c.pt')['model']['w'], torch.ones(1000))


# ---------------------------------------------------------------- non-finite weights
def test_non_finite_weights_stop_at_the_step(tmp_path):
    run, seen = tmp_path/'run', {}
    def watch(info):
        p = run/'checkpoints'/'last.pt'
        if p.exists(): seen[info['step']] = _sha(p)
    with pytest.raises(T.NonFiniteLoss) as e:
        _train(run, build=lambda c, d: toy_build(c, d, poison_at=5), on_step=watch)
    assert 'non-finite weights after step 5 (epoch 2, batch 2)' in str(e.value) and 'the loss was finite' in str(e.value)
    assert _sha(run/'checkpoints'/'last.pt') == seen[4]           # the last good checkpoint (end of epoch 1) kept
    ck = T.read_checkpoint(run/'checkpoints'/'last.pt')
    assert ck['state']['step'] == 4 and all(v.isfinite().all() for v in ck['model'].values())


# ---------------------------------------------------------------- one-line errors
def _main(capsys, *args):
    from mmdgpp.cli import main
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.err


@pytest.mark.parametrize('args, says', [
    (['--seed', '-1'], 'config key "train.seed" must be in [0, 4294967295], got -1'),
    (['--seed', str(2**32)], 'config key "train.seed" must be in [0, 4294967295], got 4294967296'),
    (['--set', 'train.weight_decay=-1'], 'config key "train.weight_decay" must be in [0, inf), got -1.0'),
    (['--set', 'data.num_workers=-1'], 'config key "data.num_workers" must be in [0, 1024], got -1'),
    (['--epochs', '0'], 'config key "train.epochs" must be in [1, 100000], got 0'),
    (['--set', 'train.lr=nan'], 'config key "train.lr" must be in (0, inf), got nan'),
])
def test_bad_values_are_one_line(capsys, tmp_path, args, says):
    code, err = _main(capsys, 'train', '--out', tmp_path/'run', '--no-eval', '--no-progress', *args)
    assert code == 2 and err.strip() == f'error: {says}'
    assert not (tmp_path/'run').exists()


def test_out_naming_a_file_is_one_line(capsys, tmp_path):
    (tmp_path/'f').write_text('x')
    code, err = _main(capsys, 'train', '--out', tmp_path/'f', '--no-eval', '--no-progress', '--epochs', '1')
    assert code == 2 and err.strip() == f'error: run folder {tmp_path/"f"} is an existing file, not a folder; choose another --out'


def _read_only_mount_works(d: Path) -> bool:
    if not shutil.which('unshare'): return False
    r = subprocess.run(['unshare', '-rm', 'sh', '-c', f'mount -t tmpfs -o ro none {d}'], capture_output=True)
    return r.returncode == 0


@pytest.mark.parametrize('cmd', ['train', 'eval'])
def test_out_on_a_read_only_file_system_is_one_line(tmp_path, cmd):
    ro = tmp_path/'ro'; ro.mkdir()
    if not _read_only_mount_works(ro): pytest.skip('no user namespaces here to mount a read-only file system')
    if cmd == 'train': args = ['train', '--out', ro/'run', '--no-eval', '--no-progress', '--epochs', '1']
    else:
        run = tmp_path/'run'
        T.train(from_dict({'train.epochs': 1}, base=CFG), run, build=toy_build, verbose=False, progress=False)
        args = ['eval', '--run', run, '--out', ro/'res', '--no-progress']
    line = ' '.join(f"'{a}'" for a in map(str, args))
    r = subprocess.run(['unshare', '-rm', 'sh', '-c', f'mount -t tmpfs -o ro none {ro} && exec {BIN/"mmdgpp"} {line}'],
                       capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, HF_HUB_OFFLINE='1'), timeout=300)
    assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr[-2000:]
    what = 'run folder' if cmd == 'train' else 'results folder'
    target = ro/'run' if cmd == 'train' else ro/'res'
    assert r.stderr.strip().splitlines()[-1] == f'error: cannot write in {what} {target}: Read-only file system'
