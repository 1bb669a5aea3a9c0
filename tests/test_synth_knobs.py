"""Generator knobs of the synthetic benchmark (`16_data.cameras`, `17_data.videos`): the defaults write the bytes the
generator wrote before the knobs existed, and the realised failure and look rates follow the knob values."""
import csv, hashlib, json
from pathlib import Path
import numpy as np
import pytest

from mmdgpp.data import synth as S, scenes as SC, cameras as CA, videos as V

TINY_SEED0 = '613b2dffcdb81aa80046bed89d71ccfbc6584b748e0f8a33f2031a701c962668'   # tiny, seed 0, before the knobs existed


def _digest(out):
    h = hashlib.sha256()
    for p in sorted(Path(out).rglob('*')):
        if not p.is_file() or p.name in (S.MARKER, '.synth.lock'): continue
        h.update(p.relative_to(out).as_posix().encode()); h.update(b'\0'); h.update(p.read_bytes())
    return h.hexdigest()


def _manifest(out):
    with open(Path(out)/'manifest.csv', newline='') as fh: return list(csv.DictReader(fh))


@pytest.fixture(scope='module')
def knobbed(tmp_path_factory):
    k = V.make_knobs(fail_sources=0, fail_target=1, paired=True, targets=('W',))
    return S.generate(tmp_path_factory.mktemp('k')/'b', 'tiny', 0, workers=2, knobs=k), k


def test_defaults_are_byte_identical(tmp_path):
    out = S.generate(tmp_path/'tiny', 'tiny', 0, workers=2, knobs=V.make_knobs(targets=('W',)))
    assert _digest(out) == TINY_SEED0
    assert 'knobs' not in json.loads((out/S.MARKER).read_text())


def test_knobs_get_their_own_identity(knobbed, monkeypatch, tmp_path):
    out, k = knobbed
    assert _digest(out) != TINY_SEED0 and json.loads((out/S.MARKER).read_text())['knobs'] == k.identity()
    assert S.is_complete(out, 'tiny', 0, knobs=k) and not S.is_complete(out, 'tiny', 0)
    assert not S.is_complete(out, 'tiny', 0, knobs=V.make_knobs(fail_sources=0, fail_target=1, paired=True, targets=('S',)))
    monkeypatch.setenv('MMDGPP_SYNTH_ROOT', str(tmp_path))
    names = {S.default_synth_dir('tiny', 0, knobs=x).name for x in (None, k, V.make_knobs(look_strength=1, targets=('W',)))}
    assert len(names) == 3 and 'tiny-s0' in names and f'tiny-s0-{k.tag}' in names


def test_failure_rates_follow_the_knobs(knobbed):
    out, _ = knobbed
    rows = [r for r in _manifest(out) if r['render'] == '']
    tgt, src = [r for r in rows if r['dataset'] == 'W'], [r for r in rows if r['dataset'] != 'W']
    assert tgt and all(r['dropout'] == r['flare'] == '1' for r in tgt)     # fail_target=1: every target frame fails
    assert src and all(r['dropout'] == r['flare'] == '0' for r in src)     # fail_sources=0: no source frame does
    for render, want in (('clean', '0'), ('corrupt', '1')):
        got = [r for r in _manifest(out) if r['render'] == render]
        assert len(got) == sum(r['split'] == 'test' for r in rows)
        assert all(r['dropout'] == r['flare'] == want for r in got)


def test_failure_rate_in_between_within_sampling_error():
    k = V.make_knobs(fail_sources=0.3, fail_modalities='ir', targets=('W',))
    vids = V.plan_videos('C', 'train', 400, seed=0, knobs=k)
    c = [S.frame_conditions(v, f, 0, k) for v in vids for f in range(2)]
    n = len(c)
    for key, p in (('flare', 0.3), ('dropout', CA.DOMAINS['C'].depth_dropout)):       # ir set, depth keeps C's own
        assert abs(np.mean([x[key] for x in c]) - p) < 5*np.sqrt(p*(1 - p)/n), key


def _look_rates(strength, reverse, d, k, n=600):
    kn = V.make_knobs(look_strength=strength, look_reverse=reverse, targets=('W',))
    vids = V.plan_videos(d, 'test', n, seed=0, knobs=kn)
    on = lambda lab: [bool(v.bias >> k & 1) for v in vids if v.label == lab]
    return np.mean(on(1)), np.mean(on(0)), len(on(1)), len(on(0))


def test_look_strength_zero_is_independent_of_the_label():
    for d in 'CPSW':
        for k in range(4):
            live, spoof, nl, ns = _look_rates(0, True, d, k)
            assert abs(live - spoof) < 5*np.sqrt(0.25/nl + 0.25/ns), (d, k, live, spoof)


def test_look_strength_one_is_perfect_and_reversed_in_the_target():
    w = CA.DOMAINS['W'].cue
    for d in 'CPS': assert _look_rates(1, True, d, w, 50)[:2] == (0.0, 1.0)     # sources: every spoof, no live
    assert _look_rates(1, True, 'W', w, 50)[:2] == (1.0, 0.0)                   # the target reverses it
    assert _look_rates(1, False, 'W', w, 50)[:2] == (0.0, 1.0)                  # ... unless told not to


# Domain-specific spoofs and live faces (`data.attacks_disjoint`, `data.live_domain`)
BLOCKS = dict(C={'print', 'replay'}, P={'3d-mask', 'silicone-mask'}, S={'paper-glasses', 'print-cut'})   # as documented
SIX = {'print', 'replay', '3d-mask', 'silicone-mask', 'paper-glasses', 'print-cut'}


@pytest.fixture(scope='module')
def disjoint(tmp_path_factory):
    k = V.make_knobs(targets=('W',), attacks_disjoint=True, live_domain=1)
    return S.generate(tmp_path_factory.mktemp('d')/'b', 'tiny', 0, workers=2, knobs=k), k


def test_attacks_disjoint_partition_in_the_manifest(disjoint):
    out, _ = disjoint
    kinds = {}
    for r in _manifest(out):
        if r['label'] == '0':
            kinds.setdefault((r['dataset'], r['split']), set()).add('print-cut' if r['attack'].startswith('print-cut-') else r['attack'])
    for split in ('train', 'val', 'test'):
        src = [kinds[(d, split)] for d in 'CPS']
        assert all(len(k) == 2 for k in src) and set().union(*src) == SIX          # two kinds each, together all six
        assert all(not (a & b) for i, a in enumerate(src) for b in src[i + 1:])      # pairwise disjoint
        assert {d: kinds[(d, split)] for d in 'CPS'} == BLOCKS
    assert kinds[('W', 'test')] == SIX                                                # the target meets all six
    from mmdgpp.data.splits import load_benchmark
    bench = load_benchmark(out)                                                       # the paths are read back as drawn
    drawn = {(r['dataset'], r['sample']): r['attack'] for r in _manifest(out)}
    for (d, _), recs in bench.items():
        for rec in recs: assert rec.attack == drawn[(d, rec.npz or rec.paths['rgb'])], rec


def _face_means(d, strength, slot=0, attack='live', n=12):
    k = V.make_knobs(targets=('W',), live_domain=strength)
    ims = [S.render_frame(V.Video(d, 'test', p, slot, attack, 0), 0, 64, 0, k) for p in range(n)]
    return np.mean([im['rgb'][20:44, 20:44].reshape(-1, 3).mean(0) for im in ims], 0), np.mean([im['ir'][20:44, 20:44].mean() for im in ims])


def test_live_domain_moves_live_faces_the_domains_way_and_leaves_spoofs():
    (rgb0, ir0), (rgb1, ir1) = _face_means('C', 0), _face_means('C', 1)       # C: warmer skin (R up, B down), brighter NIR skin
    assert rgb1[0] / rgb1[2] > 1.15 * rgb0[0] / rgb0[2] and ir1 > ir0 + 5
    (rgb0, ir0), (rgb1, ir1) = _face_means('P', 0), _face_means('P', 1)       # P: cooler skin, darker NIR skin
    assert rgb1[2] / rgb1[0] > 1.15 * rgb0[2] / rgb0[0] and ir1 < ir0 - 5
    k0, k1 = V.make_knobs(targets=('W',)), V.make_knobs(targets=('W',), live_domain=1)
    for attack in ('print', 'replay', '3d-mask'):                             # spoofs: the same bytes at any strength
        v = V.Video('C', 'test', 3, 1, attack, 0)
        a, b = S.render_frame(v, 0, 64, 0, k0), S.render_frame(v, 0, 64, 0, k1)
        assert all(np.array_equal(a[m], b[m]) for m in a)


def test_domain_knobs_in_the_config():
    from mmdgpp.config import from_dict
    cfg = from_dict({'data.attacks_disjoint': True, 'data.live_domain': 0.5, 'data.target': 'S'})
    k = S.config_knobs(cfg.data)
    assert k.live == 0.5 and k.attack_types('C', 'train') == ('print', 'replay')      # target S: sources C, P, W
    assert k.attack_types('W', 'train') == tuple(x for c in SC.CUT_ATTACKS for x in ('paper-glasses', c))
    assert S.config_knobs(from_dict({}).data) is None
