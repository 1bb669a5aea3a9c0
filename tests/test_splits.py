"The twelve released split lists parse, with the live/spoof counts found by plain string counting."
import warnings
import pytest
from conftest import SPLIT_LISTS as LISTS

NAMES = [f'{d}-{s}' for d in 'CPSW' for s in ('train', 'val', 'test')]
pytestmark = pytest.mark.skipif(LISTS is None or not all((LISTS/f'{n}.txt').is_file() for n in NAMES),
                                reason='the released split lists (third-party data, not in the repository) are not at '
                                       f'MMDGPP_TEST_SPLIT_LISTS={LISTS or "(unset)"}')

# Frames per list (live, spoof) as released; each was checked by hand against `grep -c` of the label column.
EXPECTED = {
    'C-train': (1200, 3600), 'C-val': (601, 1800), 'C-test': (1200, 5539),
    'P-train': (597, 493), 'P-val': (145, 127), 'P-test': (363, 304),
    'S-train': (900, 5397), 'S-val': (300, 1800), 'S-test': (1800, 10764),
    'W-train': (372, 1323), 'W-val': (324, 1347), 'W-test': (345, 1326),
}


def _count_by_hand(name):
    "Live/spoof counts from the last character of each non-blank line (no parsing code shared with the loader)."
    text = (LISTS/f'{name}.txt').read_bytes().decode()
    lines = [l.rstrip('\r ') for l in text.replace('\r\n', '\n').split('\n') if l.strip()]
    return sum(l.endswith('1') for l in lines), sum(l.endswith('0') for l in lines)


@pytest.fixture(scope='module')
def bench():
    from mmdgpp.data.splits import load_benchmark, DuplicateRecordWarning
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        b = load_benchmark(LISTS)
    return b, [x for x in w if issubclass(x.category, DuplicateRecordWarning)]


@pytest.mark.parametrize('name', NAMES)
def test_counts(bench, name):
    from mmdgpp.data.splits import count_labels
    b, _ = bench
    d, s = name.split('-')
    hand = _count_by_hand(name)
    assert hand == EXPECTED[name]
    assert count_labels(b[d, s]) == hand
    assert sum(1 for r in b[d, s] if r.attack == 'live') == hand[0]


def test_duplicate_warning(bench):
    _, w = bench
    assert len(w) == 1
    msg = str(w[0].message)
    assert 'C-val.txt:1201' in msg and 'C-test.txt:1' in msg and '1_300_1_1_1/profile/0026.jpg' in msg


def test_fields(bench):
    b, _ = bench
    p = b['P', 'test'][0]
    assert (p.npz, p.label, p.video, p.paths) == ('zd6c8787.npz', 1, 'P/zd6c8787', dict(rgb=None, depth=None, ir=None))
    c = b['C', 'train'][0]
    assert c.paths['depth'] == 'CeFA/CeFA-Race/AF/AF-000/1_000_1_1_1/depth/0026.jpg'
    assert c.video == 'C/CeFA/CeFA-Race/AF/AF-000/1_000_1_1_1'
    # every spoof of the image datasets has a known attack type; PADISI names none
    for d in 'CSW':
        assert all(r.attack not in ('unknown', 'live') for s in ('train', 'val', 'test') for r in b[d, s] if r.label == 0)
    assert {r.attack for r in b['P', 'train'] if r.label == 0} == {'unknown'}
    # S has six print attacks with parts cut out, flat or bent
    assert len({r.attack for r in b['S', 'test'] if r.label == 0}) == 6


def test_real_lists_without_images(bench, tmp_path):
    "Pointing at a data root without the images fails up front, counting the samples whose files are missing."
    from mmdgpp.data.datasets import FASDataset
    b, _ = bench
    n = len((LISTS/'W-test.txt').read_text().split())//4          # four columns per line
    with pytest.raises(Exception) as e:
        FASDataset(b['W', 'test'], tmp_path, 8)
    assert type(e.value).__name__ == 'MMDGError'
    assert f'{n} of {n} samples have missing files under data root {tmp_path}' in str(e.value)
    assert 'WMCA-Image/R_CDIT/001_01_000_0_00/color/0012.jpg' in str(e.value)


def test_build_data_real(tmp_path):
    "build_data on the released lists: Protocol 3 CW->PS reads C and W train/val and P, S test lists, 50 per list."
    import warnings
    from mmdgpp.config import ExperimentConfig, override
    from mmdgpp.data.datasets import build_data
    cfg = override(ExperimentConfig(), **{'data.source': 'real', 'data.lists': str(LISTS), 'data.root': str(tmp_path),
                                          'data.protocol': 'p3', 'data.target': 'PS', 'data.max_per_split': 50})
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        bd = build_data(cfg, image_size=8, skip_missing=True)
    assert (len(bd.train), len(bd.val), len(bd.test), bd.domains) == (0, 0, 0, ['C', 'W'])
    dropped = [int(str(x.message).split()[1]) for x in w if 'dropped' in str(x.message)]
    assert dropped == [100, 100, 100]


def test_subsample_real(bench):
    "A 50-frame subsample of C-train keeps the live share (1/4) and whole videos but for at most one per class."
    from collections import Counter
    from mmdgpp.data.datasets import subsample
    b, _ = bench
    recs = b['C', 'train']
    sub = subsample(recs, 50, seed=0, tag='C-train')
    assert len(sub) == 50 and abs(sum(r.label for r in sub) - 50*1200/4800) <= 0.5
    full, got = Counter(r.video for r in recs), Counter(r.video for r in sub)
    partial = [v for v in got if got[v] < full[v]]
    assert len(partial) <= 2 and len({next(r.label for r in sub if r.video == v) for v in partial}) == len(partial)
    assert [r.where for r in sub] == [r.where for r in subsample(recs, 50, seed=0, tag='C-train')]
