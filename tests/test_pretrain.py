"`mmdgpp pretrain`: a two-step run on a handful of pairs, resume gives the identical state; bad arguments; the shipped tag."
import hashlib, json
import pytest, torch
from mmdgpp.cli import main
from mmdgpp.models.pretrain import pretrain, export_weights


def _err(capsys, *argv):
    try: rc = main(list(argv))
    except SystemExit as e: rc = e.code
    return rc, capsys.readouterr().err


KW = dict(n=16, steps=2, batch=8, warmup=1, save_every=1, workers=1, threads=1, progress=False)


def test_resume_gives_identical_state(tmp_path):
    cache = tmp_path/'cache'
    a = pretrain(tmp_path/'a', cache=cache, **KW)
    part = pretrain(tmp_path/'b', cache=cache, until=1, **KW)
    assert part['step'] == 1 and (tmp_path/'b'/'last.pt').is_file()
    b = pretrain(tmp_path/'b', cache=cache, resume=True, **KW)
    assert b['step'] == a['step'] == 2
    for (k, x), (_, y) in zip(a['model'].state_dict().items(), b['model'].state_dict().items()):
        assert torch.equal(x, y), k
    assert [r['loss'] for r in a['log']] == [r['loss'] for r in b['log']]
    sa = torch.load(tmp_path/'a'/'last.pt', weights_only=True)
    sb = torch.load(tmp_path/'b'/'last.pt', weights_only=True)
    for k, v in sa['opt']['state'].items():
        for name, t in v.items(): assert torch.equal(t, sb['opt']['state'][k][name]), (k, name)
    assert (tmp_path/'a'/'log.csv').read_text().count('\n') == 3
    # the exported file: float16 copies of the weights, its checksum recorded beside it
    info = export_weights(tmp_path/'a'/'last.pt', tmp_path/'w.pt', 'mmdgpp pretrain ...')
    assert info['sha256'] == hashlib.sha256((tmp_path/'w.pt').read_bytes()).hexdigest()
    sd = torch.load(tmp_path/'w.pt', weights_only=True)
    for k, v in a['model'].state_dict().items():
        assert sd[k].dtype == (torch.float16 if v.is_floating_point() else v.dtype)
        assert torch.allclose(sd[k].float(), v.float(), rtol=1e-3, atol=1e-4), k
    assert json.loads((tmp_path/'w.json').read_text())['command'] == 'mmdgpp pretrain ...'


def test_bad_arguments_give_one_line(capsys, tmp_path):
    (tmp_path/'done').mkdir(); (tmp_path/'done'/'last.pt').write_bytes(b'x')
    cases = [(['--batch', '1'], 'at least 2'), (['--n', '4', '--batch', '8'], 'larger than the corpus'),
             (['--lr', '0'], '--lr must be positive'), (['--min-scale', '1.5'], '--min-scale'),
             (['--resume', '--out', str(tmp_path/'none')], 'nothing to resume'),
             (['--out', str(tmp_path/'done')], 'pass --resume'), (['--arch', 'ViT-Q-99', '--out', str(tmp_path/'q')], 'unknown architecture'),
             (['--resume', '--out', str(tmp_path/'done')], 'cannot read checkpoint'), (['--workers', '0'], '--workers'),
             (['--seed', '-1', '--out', str(tmp_path/'s')], '--seed must be in [0, 4294967295], got -1'),
             (['--seed', str(2**32), '--out', str(tmp_path/'s')], '--seed must be in'),
             (['--until', '-5', '--out', str(tmp_path/'u'), '--cache', str(tmp_path/'uc')], '--until must be a positive step, got -5'),
             (['--until', '0', '--out', str(tmp_path/'u')], '--until must be a positive step')]
    for args, msg in cases:
        rc, err = _err(capsys, 'pretrain', *args)
        assert rc == 2 and msg in err and 'Traceback' not in err and err.strip().count('\n') == 0, (args, err)
    assert not (tmp_path/'u').exists() and not (tmp_path/'uc').exists()     # refused before the corpus is drawn


def test_until_says_export_skipped_and_lines_without_terminal(capsys, tmp_path):
    "Not on a terminal (capsys): a line per checkpoint; stopped by --until, the skipped export is named."
    a = ['pretrain', '--out', str(tmp_path/'r'), '--n', '16', '--steps', '3', '--batch', '8', '--warmup', '1', '--save-every', '1',
         '--workers', '1', '--threads', '1', '--cache', str(tmp_path/'c'), '--export', str(tmp_path/'w.pt')]
    assert main(a + ['--until', '2']) == 0
    err = capsys.readouterr().err
    assert [l for l in err.splitlines() if l.startswith('pretrain: step')][:2] == \
        [l for l in err.splitlines() if l.startswith('pretrain: step 1/3,') or l.startswith('pretrain: step 2/3,')]
    assert sum(l.startswith('pretrain: step ') for l in err.splitlines()) == 2 and 'drawing the corpus (16 pairs' in err
    assert '--export skipped: stopped at step 2 of 3' in err and not (tmp_path/'w.pt').exists()
    assert main(a + ['--resume']) == 0
    out, err = capsys.readouterr()
    assert 'pretrain: step 3/3,' in err and 'skipped' not in err and (tmp_path/'w.pt').is_file() and 'wrote' in out


def test_rebuilt_weights_pass_the_shipped_check(tmp_path, monkeypatch):
    "A file rebuilt by the same recipe has other bytes (torch.save's archive name) but the same tensors: it loads."
    from mmdgpp.core import MMDGError
    from mmdgpp.models import backbone
    cache = tmp_path/'cache'
    for d in 'ab': pretrain(tmp_path/d, cache=cache, **KW)
    ia = export_weights(tmp_path/'a'/'last.pt', tmp_path/'a.pt')
    (tmp_path/'rebuilt').mkdir()
    ib = export_weights(tmp_path/'b'/'last.pt', tmp_path/'rebuilt'/'w.pt')
    assert ia['sha256'] != ib['sha256']                         # the file digest cannot be reproduced ...
    sa, sb = torch.load(tmp_path/'a.pt', weights_only=True), torch.load(tmp_path/'rebuilt'/'w.pt', weights_only=True)
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)   # ... the weights can
    monkeypatch.setitem(backbone.SHIPPED, 'synthclip', dict(arch='mmdg-tiny-64', file='w.pt', sha256=ia['sha256'],
                                                           tensors_sha256=ia['tensors_sha256']))
    assert backbone.shipped_weights('synthclip', 'mmdg-tiny-64', root=tmp_path/'rebuilt') == tmp_path/'rebuilt'/'w.pt'
    sb[next(iter(sb))].view(-1)[0] += 1; torch.save(sb, tmp_path/'rebuilt'/'w.pt')     # one number changed: refused
    with pytest.raises(MMDGError, match='checksum mismatch'): backbone.shipped_weights('synthclip', 'mmdg-tiny-64', root=tmp_path/'rebuilt')


def test_resume_with_other_settings_is_refused(capsys, tmp_path):
    pretrain(tmp_path/'r', cache=tmp_path/'c', until=1, **KW)
    rc, err = _err(capsys, 'pretrain', '--out', str(tmp_path/'r'), '--resume', '--n', '16', '--steps', '3', '--batch', '8',
                   '--cache', str(tmp_path/'c'), '--no-progress')
    assert rc == 2 and 'other settings' in err and "'steps': (2, 3)" in err


def test_shipped_tag_offline_checksum_and_architecture(tmp_path):
    from mmdgpp.core import MMDGError
    from mmdgpp.models.backbone import create_backbone, shipped_weights, SHIPPED, weights_dir
    f = weights_dir()/SHIPPED['synthclip']['file']
    assert hashlib.sha256(f.read_bytes()).hexdigest() == SHIPPED['synthclip']['sha256']
    assert json.loads(f.with_suffix('.json').read_text())['sha256'] == SHIPPED['synthclip']['sha256']
    bb = create_backbone('mmdg-tiny-64', 'synthclip')                  # HF_HUB_OFFLINE=1 (conftest): no network
    sd = torch.load(f, weights_only=True)
    assert all(torch.equal(v, sd[k].float()) for k, v in bb.clip.state_dict().items())
    assert create_backbone('mmdg-tiny-64', 'default').pretrained == 'synthclip'
    b, m = f.read_bytes(), len(f.read_bytes())//2
    (tmp_path/f.name).write_bytes(b[:m] + bytes(x ^ 0xFF for x in b[m:m + 8]) + b[m + 8:])   # 8 bytes of tensor data flipped
    with pytest.raises(MMDGError, match='checksum mismatch'): shipped_weights('synthclip', 'mmdg-tiny-64', root=tmp_path)
    with pytest.raises(MMDGError, match='holds weights of mmdg-tiny-64'): create_backbone('ViT-B-16', 'synthclip')
