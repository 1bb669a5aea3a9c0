"""Per-attack WMCA categories: small lists written here; with MMDGPP_TEST_FLEXMODAL (the published per-attack lists) and
MMDGPP_TEST_SPLIT_LISTS, every W-test spoof video of the released lists is in exactly one category."""
import os, types
from pathlib import Path
import numpy as np
import pytest
from conftest import SPLIT_LISTS

FLEXMODAL = Path(os.environ['MMDGPP_TEST_FLEXMODAL']).resolve() if os.environ.get('MMDGPP_TEST_FLEXMODAL') else None


def _write(d, cats):
    "One list per category: {category: [video folder, ...]}, two frames per video."
    from mmdgpp.eval.attacks import WMCA_CATEGORIES, attack_list_file
    d.mkdir(parents=True, exist_ok=True)
    for c in WMCA_CATEGORIES:
        rows = [' '.join(f'WMCA-Image/R_CDIT/{v}/{m}/{f:04d}.jpg' for m in ('color', 'depth', 'ir')) + ' 0'
                for v in cats.get(c, []) for f in (12, 24)]
        attack_list_file(d, c).write_text('\n'.join(rows) + '\n')
    return d


def test_apcer_per_category_and_worst_case(tmp_path, monkeypatch):
    "APCER per category = share of that category's spoof videos accepted; the worst case is the largest (ISO/IEC 30107-3)."
    from mmdgpp.eval.attacks import categorise
    from mmdgpp.eval.metrics import compute_metrics
    d = _write(tmp_path/'lists', dict(print=['p1', 'p2'], replay=['r1'], fakehead=['f1', 'f2', 'f3', 'f4']))
    monkeypatch.setenv('MMDGPP_WMCA_ATTACK_LISTS', str(d))
    vids = ['p1', 'p2', 'r1', 'f1', 'f2', 'f3', 'f4', 'l1', 'l2']
    score = dict(p1=0.9, p2=0.1, r1=0.2, f1=0.7, f2=0.8, f3=0.9, f4=0.1, l1=0.95, l2=0.3)
    videos, scores, labels = [], [], []
    for v in vids:
        for k in range(3):              # three frames per video, the list holds two: matched by video, not frame
            videos.append(f'W/WMCA-Image/R_CDIT/{v}'); scores.append(score[v]); labels.append(int(v.startswith('l')))
    test = dict(scores=np.array(scores), labels=np.array(labels), videos=videos,
                attacks=['live' if y else 'wmca-type2' for y in labels])
    cfg = types.SimpleNamespace(data=types.SimpleNamespace(source='real'))
    t2, folder = categorise(test, cfg, ('W',))
    assert folder == d
    m = compute_metrics(t2['scores'], t2['labels'], t2['attacks'], t2['videos'], threshold=0.5)
    # accepted (score >= 0.5): print 1 of 2, replay 0 of 1, fakehead 3 of 4; live 1 of 2 rejected
    assert m['apcer_per_attack'] == {'print': 0.5, 'replay': 0.0, 'fakehead': 0.75}
    assert (m['apcer'], m['worst_attack']) == (0.75, 'fakehead')
    assert m['bpcer'] == 0.5 and m['acer'] == pytest.approx((0.75 + 0.5)/2)


def test_bad_lists_one_line_each(tmp_path):
    from mmdgpp.core import MMDGError
    from mmdgpp.eval.attacks import read_attack_lists, label_attacks, attack_list_file
    with pytest.raises(MMDGError, match='WMCA attack-list folder not found'): read_attack_lists(tmp_path/'none')
    (tmp_path/'empty').mkdir()
    with pytest.raises(MMDGError, match='missing WMCA attack list'): read_attack_lists(tmp_path/'empty')
    d = _write(tmp_path/'two', dict(print=['a'], replay=['b', 'a']))
    with pytest.raises(MMDGError, match=r'WMCA video W/WMCA-Image/R_CDIT/a is in two attack lists: .*print.*replay') as e:
        read_attack_lists(d)
    assert '\n' not in str(e.value)
    cats = read_attack_lists(_write(tmp_path/'ok', dict(print=['a'])))
    with pytest.raises(MMDGError, match='WMCA test video W/WMCA-Image/R_CDIT/zz is a spoof in no list'):
        label_attacks(['W/WMCA-Image/R_CDIT/zz'], [0], ['wmca-type1'], cats)


def test_setting_unset_or_synthetic_leaves_types(tmp_path, monkeypatch):
    from mmdgpp.eval.attacks import categorise
    monkeypatch.setenv('MMDGPP_WMCA_ATTACK_LISTS', '')
    test = dict(scores=np.array([0.1, 0.9]), labels=np.array([0, 1]), videos=['W/x', 'W/y'], attacks=['wmca-type1', 'live'])
    real = types.SimpleNamespace(data=types.SimpleNamespace(source='real'))
    assert categorise(test, real, ('W',)) == (test, None)
    monkeypatch.setenv('MMDGPP_WMCA_ATTACK_LISTS', str(_write(tmp_path/'l', {})))
    syn = types.SimpleNamespace(data=types.SimpleNamespace(source='synthetic'))
    assert categorise(test, syn, ('W',)) == (test, None)


@pytest.mark.skipif(FLEXMODAL is None or SPLIT_LISTS is None, reason='MMDGPP_TEST_FLEXMODAL or MMDGPP_TEST_SPLIT_LISTS not set')
def test_released_w_test_spoof_videos_each_in_one_category():
    from mmdgpp.data.splits import read_split
    from mmdgpp.eval.attacks import read_attack_lists, WMCA_CATEGORIES
    cats = read_attack_lists(FLEXMODAL)              # fails if a video is in two lists
    spoof = {r.video for r in read_split(SPLIT_LISTS/'W-test.txt') if r.label == 0}
    assert spoof and not (spoof - set(cats)), sorted(spoof - set(cats))[:5]
    assert {cats[v] for v in spoof} == set(WMCA_CATEGORIES)
