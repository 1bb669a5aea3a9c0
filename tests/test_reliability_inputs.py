"Bad inputs from the outside: each is one line naming the input (exit 2 on the command line), never a traceback."
import json, os, subprocess, types
from pathlib import Path
import pytest, torch
from conftest import ROOT, BIN
from mmdgpp.config import from_dict
from mmdgpp.ablate.grid import write_toy_template, load_grid, expand
from test_reliability import _train, toy_build, CFG, _read_only_mount_works, ToyModel
import mmdgpp.train.trainer as T


def _main(capsys, *args):
    from mmdgpp.cli import main
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err.strip()


def _grid(tmp_path, text):
    write_toy_template(tmp_path/'toy.ipynb')
    (tmp_path/'g.yaml').write_text('template: toy.ipynb\n' + text)
    return tmp_path/'g.yaml'


def test_config_nested_3000_deep_is_one_line(capsys, tmp_path):
    (tmp_path/'deep.json').write_text('{"train": ' + '[' * 3000 + ']' * 3000 + '}')
    code, err = _main(capsys, 'train', '--config', tmp_path/'deep.json', '--out', tmp_path/'run', '--no-eval', '--no-progress')
    assert code == 2 and err == f'error: cannot read config {tmp_path/"deep.json"}: lists or mappings nested too deeply'


def test_grid_config_nested_3000_deep_is_one_line(capsys, tmp_path):
    g = _grid(tmp_path, 'base:\n  CONFIG: ' + '[' * 3000 + ']' * 3000 + '\naxes:\n  A: [x]\n')
    code, err = _main(capsys, 'ablate', g, '--list')
    assert code == 2 and err == f'error: grid file {g}: lists or mappings nested too deeply'


def test_batch_size_1e20_is_refused_by_the_ranges_table(capsys, tmp_path):
    (tmp_path/'c.yaml').write_text('data.batch_size: 1.0e+20\n')
    code, err = _main(capsys, 'train', '--config', tmp_path/'c.yaml', '--out', tmp_path/'run', '--no-eval', '--no-progress')
    assert code == 2 and err == 'error: config key "data.batch_size" must be in [1, 65536], got 100000000000000000000'


def test_settings_with_a_latin1_byte_is_one_line(capsys, tmp_path, monkeypatch):
    (tmp_path/'s.ini').write_bytes(b'[mmdgpp]\nruns_dir = caf\xe9\n')
    monkeypatch.setenv('MMDGPP_SETTINGS', str(tmp_path/'s.ini'))
    code, err = _main(capsys, 'info')
    assert code == 2 and err == f'error: {tmp_path/"s.ini"}: not a UTF-8 text file (invalid continuation byte at byte 23)'


def test_ablate_out_on_a_read_only_file_system_is_one_line(tmp_path):
    ro = tmp_path/'ro'; ro.mkdir()
    if not _read_only_mount_works(ro): pytest.skip('no user namespaces here to mount a read-only file system')
    g = _grid(tmp_path, 'base:\n  SMOKE: true\naxes:\n  A: [x]\n')
    r = subprocess.run(['unshare', '-rm', 'sh', '-c', f"mount -t tmpfs -o ro none {ro} && exec {BIN/'mmdgpp'} ablate {g} "
                        f"--out {ro/'batch'} --no-progress"], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, HF_HUB_OFFLINE='1'), timeout=120)
    assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[-1] == f'error: cannot write in batch folder {ro/"batch"}: Read-only file system'


def test_grid_keys_given_twice_are_refused(capsys, tmp_path):
    g = _grid(tmp_path, 'base:\n  B: 1.0\n  B: 2.0\naxes:\n  A: [x]\n')           # PyYAML alone keeps B: 2.0
    code, err = _main(capsys, 'ablate', g, '--list')
    assert code == 2 and 'found key "B" given twice' in err and 'line 4' in err and '\n' not in err
    g = _grid(tmp_path, 'axes:\n  variant:\n    one: {A: x}\n    one: {A: y}\n')   # a variant given twice
    code, err = _main(capsys, 'ablate', g, '--list')
    assert code == 2 and 'found key "one" given twice' in err


def test_unquoted_off_in_a_grid_says_to_quote_it(tmp_path):
    from mmdgpp.core import MMDGError
    g = _grid(tmp_path, 'axes:\n  A: [off]\n')                                  # YAML 1.1: off is False
    with pytest.raises(MMDGError, match="got False .*quote the value, e.g. 'off'"): expand(load_grid(g))


def test_a_non_finite_abort_leaves_metrics_stopped(tmp_path):
    run = tmp_path/'run'
    with pytest.raises(T.NonFiniteLoss): _train(run, build=lambda c, d: toy_build(c, d, poison_at=5))
    m = json.loads((run/'metrics.json').read_text())
    assert m['status'] == 'stopped' and 'non-finite weights after step 5' in m['stopped'], m


def test_stale_checkpoint_temporaries_are_removed_on_resume(tmp_path):
    run = tmp_path/'run'
    _train(run, cfg=from_dict({'train.epochs': 1}, base=CFG))
    stale = [run/'checkpoints'/'.last.pt.x1y2.tmp', run/'.metrics.json.a1b2.tmp']
    for p in stale: p.write_bytes(b'half a checkpoint')
    _train(run, cfg=from_dict({'train.epochs': 1}, base=CFG))       # the resumed run finds it complete
    assert not any(p.exists() for p in stale)


def _tiny_lists(tmp_path, drop=()):
    "A copy of the tiny synthetic benchmark's split lists without `drop`; returns (lists folder, data root)."
    import shutil
    from mmdgpp.data.synth import default_synth_dir, ensure_synth
    root = Path(ensure_synth('tiny', 0, default_synth_dir('tiny', 0)))
    lists = tmp_path/'lists'; lists.mkdir()
    for p in root.glob('?-*.txt'):
        if p.name not in drop: shutil.copy(p, lists/p.name)
    return lists, root


def test_protocol_1_target_w_reads_only_the_lists_it_uses(tmp_path):
    from mmdgpp.data.datasets import build_data
    lists, root = _tiny_lists(tmp_path, drop=('W-train.txt', 'W-val.txt'))
    cfg = from_dict({'data.source': 'real', 'data.lists': str(lists), 'data.root': str(root),
                     'data.protocol': 'p1', 'data.target': 'W'})
    b = build_data(cfg, image_size=16)
    n = lambda *names: sum(1 for x in names for l in (lists/x).read_text().splitlines() if l.strip())
    assert (len(b.train), len(b.val), len(b.test)) == (n('C-train.txt', 'P-train.txt', 'S-train.txt'),
                                                       n('C-val.txt', 'P-val.txt', 'S-val.txt'), n('W-test.txt'))
    (lists/'C-train.txt').unlink()                 # Protocol 3 with targets C and W reads only their test lists
    (lists/'C-val.txt').unlink()
    b = build_data(from_dict({'data.protocol': 'p3', 'data.target': 'CW'}, base=cfg), image_size=16)
    assert len(b.test) == n('C-test.txt', 'W-test.txt')


def test_a_missing_source_list_is_one_line_naming_it(capsys, tmp_path):
    lists, root = _tiny_lists(tmp_path, drop=('C-train.txt', 'W-train.txt'))
    code, err = _main(capsys, 'train', '--out', tmp_path/'run', '--no-eval', '--no-progress', '--set', 'data.source=real',
                      '--set', f'data.lists={lists}', '--set', f'data.root={root}', '--set', 'data.target=W')
    assert code == 2 and err == f'error: {lists}: missing split list(s) C-train.txt', err


def _named_val(ds, folder, live_only=False):
    "`ds` with records that name two source val lists in `folder` (and, with `live_only`, only live labels)."
    from mmdgpp.data.splits import Record
    if live_only: ds.y = torch.ones_like(ds.y)
    ds.records = [Record(x, 'val', {}, 1, f'{x}/v', 'live', where=f'{folder}/{x}-val.txt:{i + 1}') for x in 'CS' for i in range(3)]
    return ds


class _NaNAtEval(ToyModel):
    "Trains like the toy model (finite weights); its scores are NaN in evaluation mode."
    def forward(self, b):
        out = super().forward(b)
        if not self.training: out['logits'] = out['logits'] * float('nan')
        return out


def test_a_live_only_val_list_is_a_validation_problem_naming_the_lists(tmp_path):
    from mmdgpp.core import MMDGError
    def build(cfg, device):
        model, data = toy_build(cfg, device)
        data.val = _named_val(data.val, tmp_path/'lists', live_only=True)
        return model, data
    with pytest.raises(MMDGError) as e: _train(tmp_path/'run', build=build)
    assert str(e.value) == (f'source validation lists C-val.txt, S-val.txt in {tmp_path/"lists"}: '
                            f'needs both live (1) and spoof (0) samples, got only live (48 samples)'), e.value


def test_non_finite_validation_scores_name_the_lists_and_hint_at_lr(tmp_path):
    from mmdgpp.core import MMDGError
    def build(cfg, device):
        _, data = toy_build(cfg, device)
        data.val = _named_val(data.val, tmp_path/'lists')
        return _NaNAtEval(), data
    with pytest.raises(MMDGError) as e: _train(tmp_path/'run', build=build)
    msg = str(e.value)
    assert msg.startswith(f'source validation lists C-val.txt, S-val.txt in {tmp_path/"lists"}: 48 score(s) are NaN or infinite')
    assert 'train.lr' in msg and 'train.grad_clip' in msg and 'test scores' not in msg, msg


def test_evaluation_names_the_val_lists_too(tmp_path):
    from mmdgpp.core import MMDGError
    from mmdgpp.eval.evaluate import evaluate
    _train(tmp_path/'run', cfg=from_dict({'train.epochs': 1}, base=CFG))
    def build(cfg, device):
        model, data = toy_build(cfg, device)
        data.val = _named_val(data.val, tmp_path/'lists', live_only=True)
        data.task = types.SimpleNamespace(name='toy', sources=('C', 'P', 'S'))
        return model, data
    with pytest.raises(MMDGError, match=r'^source validation lists C-val\.txt, S-val\.txt in .*: needs both live'):
        evaluate(tmp_path/'run', build=build, figures=False, verbose=False, progress=False)


@pytest.fixture
def local_network_only(monkeypatch):
    "Name lookups and connections anywhere but 127.0.0.1 are refused and recorded (nothing leaves the machine)."
    import socket
    tried, lookup, connect = [], socket.getaddrinfo, socket.socket.connect
    def guarded_lookup(host, *a, **k):
        if host not in ('127.0.0.1', b'127.0.0.1'): tried.append(host); raise OSError(f'lookup of {host} refused by the test')
        return lookup(host, *a, **k)
    def guarded_connect(self, addr):
        if self.family in (socket.AF_INET, socket.AF_INET6) and addr[0] != '127.0.0.1':
            tried.append(addr); raise OSError(f'connection to {addr} refused by the test')
        return connect(self, addr)
    monkeypatch.setattr(socket, 'getaddrinfo', guarded_lookup)
    monkeypatch.setattr(socket.socket, 'connect', guarded_connect)
    for k in [*os.environ]:
        if k.lower() in ('hf_hub_offline', 'https_proxy', 'http_proxy', 'all_proxy', 'no_proxy'): monkeypatch.delenv(k)
    return tried


def _free_port():
    import socket
    s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()
    return port


@pytest.mark.parametrize('proxy', [False, True])
def test_an_unreachable_hub_fails_at_once_with_one_line(local_network_only, monkeypatch, tmp_path, proxy):
    import time
    from mmdgpp.core import MMDGError
    from mmdgpp.models.backbone import check_weights, import_open_clip
    import_open_clip()                                                        # the import is not what is timed
    monkeypatch.setenv('MMDGPP_CLIP_CACHE', str(tmp_path/'cache'))      # nothing cached
    if proxy:       # the hub's own host is not probed directly: only the proxy (a closed local port) is asked
        monkeypatch.setenv('HF_ENDPOINT', 'https://hub.invalid')
        monkeypatch.setenv('HTTPS_PROXY', f'http://user:secret@127.0.0.1:{_free_port()}')
        why = f'the hub https://hub.invalid cannot be reached through the proxy http://127.0.0.1:'
    else:
        monkeypatch.setenv('HF_ENDPOINT', 'http://127.0.0.1:9')
        why = 'the hub http://127.0.0.1:9 cannot be reached: '
    t0 = time.time()
    with pytest.raises(MMDGError) as e: check_weights('ViT-B-16', 'openai')
    assert time.time() - t0 < 3 and not local_network_only, (time.time() - t0, local_network_only)
    msg = str(e.value)
    assert msg.startswith('pretrained weights "openai" for ViT-B-16 are not on this machine and ' + why), msg
    assert msg.endswith('or a local file (backbone.pretrained=/path/to/ViT-B-16.pt)') and 'secret' not in msg, msg
    assert 'need the network once' in msg and '\n' not in msg


def test_the_hub_probe_follows_hf_endpoint_and_the_proxy(local_network_only, monkeypatch):
    import socket, threading
    from mmdgpp.models.backbone import hub_reachable
    def server(answer=None):
        srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(4)
        def serve():
            while True:
                c, _ = srv.accept()
                with c:
                    if answer: c.recv(1024); c.sendall(answer)
        threading.Thread(target=serve, daemon=True).start()
        return srv.getsockname()[1]
    monkeypatch.setenv('HF_ENDPOINT', f'http://127.0.0.1:{server()}')
    assert hub_reachable()                                                   # a listening local hub
    monkeypatch.setenv('HF_ENDPOINT', 'https://hub.invalid')
    monkeypatch.setenv('https_proxy', f'http://127.0.0.1:{server(b"HTTP/1.1 200 Connection established" + bytes(4))}')
    assert hub_reachable()                                                   # the proxy grants the tunnel
    monkeypatch.setenv('https_proxy', f'http://127.0.0.1:{server(b"HTTP/1.1 403 Forbidden" + bytes(4))}')
    assert not hub_reachable()                                               # reaching the proxy is not enough
    assert not local_network_only, local_network_only
