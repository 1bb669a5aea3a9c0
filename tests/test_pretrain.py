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
             (['--resume', '--out', str(tmp_path/'done')], 'cannot read checkpoint'), (['--workers', '0'], '--workers')]
    for args, msg in cases:
        rc, err = _err(capsys, 'pretrain', *args)
        assert rc == 2 and msg in err and 'Traceback' not in err and err.strip().count('\n') == 0, (args, err)


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
    b = f.read_bytes(); (tmp_path/f.name).write_bytes(b[:-8] + bytes(x ^ 0xFF for x in b[-8:]))   # 8 bytes flipped
    with pytest.raises(MMDGError, match='checksum mismatch'): shipped_weights('synthclip', 'mmdg-tiny-64', root=tmp_path)
    with pytest.raises(MMDGError, match='holds weights of mmdg-tiny-64'): create_backbone('ViT-B-16', 'synthclip')
