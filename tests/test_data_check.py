"""`mmdgpp data check` on a fake copy of the datasets (complete, then each fault alone) and, where
MMDGPP_TEST_SPLIT_LISTS names the released lists, the released counts and quirks it relies on."""
import contextlib, io, json
from pathlib import Path
import pytest
from conftest import SPLIT_LISTS, run_cli
from mmdgpp.cli import main
from mmdgpp.data import check


def _counts(lists):
    "(records, live, spoof) per list from the last column of its lines, counted here, not by the package."
    out = {}
    for f in sorted(Path(lists).glob('*-*.txt')):
        y = [l.split()[-1] for l in f.read_text().splitlines() if l.strip()]
        out[f.stem] = (len(y), y.count('1'), y.count('0'))
    return out


def _main(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): rc = main(list(args))
    return rc, out.getvalue(), err.getvalue()


def test_complete_copy_exits_0_and_writes_the_report(tmp_path, monkeypatch):
    lists, root = check.fake_copy(tmp_path/'copy')
    monkeypatch.setattr(check, 'PUBLISHED_COUNTS', _counts(lists))
    rc, out, err = _main('data', 'check', '--lists', str(lists), '--root', str(root), '--json', str(tmp_path/'r.json'), '--workers', '3',
                         '--set', 'data.npz_layout=padisi22')
    assert rc == 0, out + err
    rep = json.loads((tmp_path/'r.json').read_text())
    n_files = sum(1 for f in root.rglob('*') if f.is_file())       # every file the fake copy wrote is named by a list
    assert rep['usable'] and rep['n_files'] == n_files
    assert sum(l['files']['found'] for l in rep['lists_report'].values()) == sum(
        (1 if x == 'P' else 3)*n for name, (n, _, _) in _counts(lists).items() for x in name[0])


@pytest.mark.parametrize('fault', ['missing', 'truncated', 'npz'])
def test_each_planted_file_fault_exits_1_naming_it(tmp_path, monkeypatch, fault):
    lists, root = check.fake_copy(tmp_path/'copy')
    monkeypatch.setattr(check, 'PUBLISHED_COUNTS', _counts(lists))
    name = dict(missing='S-val', truncated='W-train', npz='P-train')[fault]
    p = root/(lists/f'{name}.txt').read_text().split()[0]
    if fault == 'missing': p.unlink()
    else: p.write_bytes(p.read_bytes()[:len(p.read_bytes())//2])
    rc, out, _ = _main('data', 'check', '--lists', str(lists), '--root', str(root), '--json', str(tmp_path/'r.json'), '--no-progress',
                       '--set', 'data.npz_layout=padisi22')
    assert rc == 1
    probs = json.loads((tmp_path/'r.json').read_text())['problems']
    assert len(probs) == 1 and probs[0].startswith(name) and str(p) in probs[0], probs
    assert f'problem: {probs[0]}' in out


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    lists, root = check.fake_copy(tmp_path/'copy')
    (lists/'W-val.txt').write_text('only two columns\n')
    r = run_cli('data', 'check', '--lists', str(lists), '--root', str(root), '--json', str(tmp_path/'r.json'), timeout=120)
    assert r.returncode == 2 and 'Traceback' not in r.stderr
    assert r.stderr.strip().count('\n') == 0 and 'W-val.txt:1' in r.stderr, r.stderr
    assert not (tmp_path/'r.json').exists()
    r = run_cli('data', 'check', '--lists', str(lists), '--root', str(tmp_path/'none'), timeout=120)
    assert r.returncode == 2 and 'data root not found' in r.stderr


def _padisi22(path, bgr_nir_depth):
    "A PADISI-Face sample as released: one `data` array of 22 channels, B, G, R at 0-2, NIR at 3, depth at 4, in [0, 1]."
    import numpy as np
    a = np.full((8, 8, 22), 0.9, np.float32)
    for c, v in enumerate(bgr_nir_depth): a[..., c] = v
    np.savez(path, data=a)


def test_npz_layout_is_honoured_from_the_config(tmp_path, monkeypatch):
    lists, root = check.fake_copy(tmp_path/'copy')
    for f in root.glob('*.npz'): _padisi22(f, (0.1, 0.2, 0.3, 0.4, 0.5))
    monkeypatch.setattr(check, 'PUBLISHED_COUNTS', _counts(lists))
    args = ('data', 'check', '--lists', str(lists), '--root', str(root), '--no-progress')
    rc, out, _ = _main(*args, '--json', str(tmp_path/'keys.json'))              # the default layout: keys
    probs = json.loads((tmp_path/'keys.json').read_text())['problems']
    assert rc == 1 and [p.split(':')[0] for p in probs] == ['P-train', 'P-val', 'P-test'], probs
    assert all("no array 'rgb'" in p and 'fits data.npz_layout=padisi22' in p for p in probs), probs
    cfg = tmp_path/'run.yaml'
    cfg.write_text(f'data:\n  npz_layout: padisi22\n  lists: {lists}\n  root: {root}\n')
    rc, out, _ = _main('data', 'check', '--config', str(cfg), '--no-progress', '--json', str(tmp_path/'cfg.json'))
    rep = json.loads((tmp_path/'cfg.json').read_text())
    assert rc == 0 and rep['usable'] and rep['npz_layout'] == 'padisi22', out
    assert rep['lists_report']['P-test']['modalities']['npz']['modes'] == {'npz padisi22': 3}
    r = run_cli(*args, '--set', 'data.npz_layout=hdf5', '--json', str(tmp_path/'bad.json'), timeout=120)
    assert r.returncode == 2 and r.stderr.strip().count('\n') == 0 and 'data.npz_layout' in r.stderr and 'padisi22' in r.stderr, r.stderr
    assert not (tmp_path/'bad.json').exists()


def test_padisi22_npz_reads_into_the_right_modalities(tmp_path):
    "A run with data.npz_layout=padisi22 reads each P sample's channels into rgb (R, G, B), ir (NIR) and depth."
    import torch
    from mmdgpp.config import from_dict
    from mmdgpp.data.datasets import build_data
    lists, root = check.fake_copy(tmp_path/'copy')
    for f in root.glob('*.npz'): _padisi22(f, (0.1, 0.2, 0.3, 0.4, 0.5))
    cfg = from_dict({'data.source': 'real', 'data.lists': str(lists), 'data.root': str(root), 'data.protocol': 'p1',
                     'data.target': 'P', 'data.npz_layout': 'padisi22'})
    test = build_data(cfg, image_size=4, mean=(0, 0, 0), std=(1, 1, 1)).test
    assert len(test) == 3 and all(r.dataset == 'P' for r in test.records)
    x = test[0]
    assert torch.allclose(x['rgb'], torch.tensor([0.3, 0.2, 0.1]).view(3, 1, 1).expand(3, 4, 4), atol=1e-6)
    assert torch.allclose(x['ir'], torch.full((3, 4, 4), 0.4), atol=1e-6)
    assert torch.allclose(x['depth'], torch.full((3, 4, 4), 0.5), atol=1e-6)


@pytest.mark.skipif(SPLIT_LISTS is None, reason='MMDGPP_TEST_SPLIT_LISTS not set')
def test_released_counts_and_quirks_match_the_released_lists():
    assert _counts(SPLIT_LISTS) == check.PUBLISHED_COUNTS
    for (x, rgb), _ in check.KNOWN_SHARED.items():       # the known shared sample is in val and test of its dataset
        assert rgb in (SPLIT_LISTS/f'{x}-val.txt').read_text() and rgb in (SPLIT_LISTS/f'{x}-test.txt').read_text()
    w = (SPLIT_LISTS/'W-test.txt').read_text()
    for v in check.MISMATCHED_VIDEOS: assert v.split('/', 1)[1] + '/color/' in w, v
