"""Synthetic benchmark (`mmdgpp.data.synth`): the round trip through the real loader, byte-identical
regeneration after an interrupted run, the presets' sizes, the session looks and sensor failures and the two failure
modes they cause on every leave-one-out target (measured independently of the notebook's probe code), and the CLI's errors."""
import csv, json, os
from pathlib import Path
import numpy as np
import pytest
from PIL import Image
from conftest import run_cli

from mmdgpp.core import MMDGError
from mmdgpp.data import synth as S, cameras as CA, videos as V
from mmdgpp.data.splits import load_benchmark, count_labels

SEED = 2          # the notebook shows seed 0 and seed 1 is the held-out benchmark seed: the claims must hold on another


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    return S.generate(tmp_path_factory.mktemp('synth')/'tiny', 'tiny', seed=SEED, workers=2)


def _files(root):
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob('*') if p.is_file() and p.name not in (S.MARKER, '.synth.lock'))


def test_round_trip_through_real_loader(tiny):
    pr = V.PRESETS['tiny']
    bench = load_benchmark(tiny)
    assert sorted(bench) == sorted((d, s) for d in 'CPSW' for s in ('train', 'val', 'test'))
    with open(tiny/'manifest.csv', newline='') as fh: man = {r['sample']: r for r in csv.DictReader(fh)}
    for (d, s), recs in bench.items():
        people, frames = pr.subjects[('train', 'val', 'test').index(s)], pr.frames[('train', 'val', 'test').index(s)]
        # counts follow from the preset: per person one live and `spoofs` attack videos of `frames` frames
        assert count_labels(recs) == (people*frames, people*pr.spoofs*frames), (d, s)
        assert len({r.video for r in recs}) == people*(1 + pr.spoofs)
        assert all(sum(r.video == v for r in recs) == frames for v in {r.video for r in recs})
        # the loader's attack types (derived from the paths) are the ones the domain was given
        kinds, got = CA.DOMAINS[d].attacks[s], {r.attack for r in recs} - {'live'}
        assert got <= set(kinds) and len(got) == min(len(kinds), people*pr.spoofs), (d, s, got)
        for r in recs:
            m = man[r.npz or r.paths['rgb']]
            assert (r.label, r.attack, r.video) == (int(m['label']), m['attack'], f"{d}/{m['video']}")
            if d == 'P':
                assert r.paths == dict(rgb=None, depth=None, ir=None)
                with np.load(tiny/r.npz, allow_pickle=False) as z:
                    assert {k: (z[k].shape, z[k].dtype) for k in z.files} == dict(
                        rgb=((64, 64, 3), np.uint8), depth=((64, 64), np.uint8), ir=((64, 64), np.uint8))
            else:
                assert all((tiny/p).is_file() for p in r.paths.values())
    r = bench['S', 'test'][-1]
    assert [Image.open(tiny/r.paths[m]).mode for m in ('rgb', 'depth', 'ir')] == ['RGB', 'L', 'L']
    assert Image.open(tiny/r.paths['rgb']).size == (64, 64)
    # list files as released: CRLF lines; PADISI `name.npz<TAB>label`, the others four space-separated columns
    p, c = (tiny/'P-val.txt').read_bytes(), (tiny/'C-val.txt').read_bytes()
    assert p.count(b'\r\n') == len(bench['P', 'val']) and all(l.split(b'\t')[1] in (b'0', b'1') for l in p.split(b'\r\n') if l)
    assert all(len(l.split(b' ')) == 4 for l in c.split(b'\r\n') if l)
    info = json.loads((tiny/S.MARKER).read_text())
    assert (info['preset'], info['seed'], info['size'], info['samples']) == ('tiny', SEED, 64, sum(map(len, bench.values())))


def test_interrupted_run_is_not_complete_and_regenerates_identically(tiny, tmp_path, monkeypatch):
    out, real, calls = tmp_path/'again', S.render_frame, []
    def failing(*a, **k):
        calls.append(1)
        if len(calls) > 40: raise RuntimeError('power cut')
        return real(*a, **k)
    monkeypatch.setattr(S, 'render_frame', failing)
    with pytest.raises(RuntimeError, match='power cut'): S.generate(out, 'tiny', SEED, workers=1)
    assert not (out/S.MARKER).exists() and (out/'.synth-generating').exists()
    assert not S.is_complete(out, 'tiny', SEED)
    monkeypatch.setattr(S, 'render_frame', real)
    assert S.ensure_synth('tiny', SEED, root=out) == out and S.is_complete(out, 'tiny', SEED)
    assert not (out/'.synth-generating').exists()
    # one process here, two in the fixture, a run interrupted before: the same bytes
    files, pr = _files(tiny), V.PRESETS['tiny']
    per_domain = sum(k*(1 + pr.spoofs)*f for k, f in zip(pr.subjects, pr.frames))
    assert files == _files(out) and len(files) == 3*3*per_domain + per_domain + 12 + 1   # PNG triplets, .npz, lists, manifest
    assert all((tiny/f).read_bytes() == (out/f).read_bytes() for f in files)
    assert S.ensure_synth('tiny', SEED, root=out) == out          # complete: nothing to do
    assert not S.is_complete(out, 'tiny', SEED + 1) and not S.is_complete(out, 'small', SEED)
    marker = json.loads((out/S.MARKER).read_text())
    (out/S.MARKER).write_text(json.dumps(dict(marker, version=marker['version'] - 1)))   # made by an older generator
    assert not S.is_complete(out, 'tiny', SEED)


def test_cli_generates_and_reports(tmp_path, capsys):
    from mmdgpp.cli import main            # in-process: the same parser and error handling as the console script
    out = tmp_path/'cli'
    assert main(['synth', '--preset', 'tiny', '--size', '32', '--seed', '3', '--out', str(out)]) == 0
    assert f"synthetic benchmark 'tiny' (seed 3, 32 px) in {out}" in capsys.readouterr().out
    info = json.loads((out/S.MARKER).read_text())
    assert (info['size'], info['seed'], info['counts']['W-test']) == (32, 3, dict(live=8, spoof=16))
    assert Image.open(out/load_benchmark(out, ['W'], ['test'])['W', 'test'][0].paths['ir']).size == (32, 32)
    assert main(['synth', '--preset', 'tiny', '--size', '32', '--seed', '3', '--out', str(out)]) == 0
    assert 'already holds' in capsys.readouterr().out


@pytest.mark.parametrize('args, message', [
    (['--preset', 'tiny', '--seed', '-2'], 'error: seed must be a non-negative integer, got -2'),
    (['--preset', 'tiny', '--size', 'big'], "error: image size must be an integer number of pixels, got 'big'"),
    (['--preset', 'tiny', '--size', '8'], 'error: image size must be between 32 and 1024 pixels, got 8'),
    (['--preset', 'tiny', '--workers', '0'], "error: --workers must be a positive integer, got '0'"),
])
def test_cli_bad_arguments(tmp_path, capsys, args, message):
    from mmdgpp.cli import main
    assert main(['synth', *args, '--out', str(tmp_path/'x')]) == 2
    err = capsys.readouterr().err
    assert err.strip() == message and not (tmp_path/'x').exists()


def test_console_script_bad_input_is_one_line(tmp_path):
    (tmp_path/'mine').mkdir(); (tmp_path/'mine'/'notes.txt').write_text('keep me')
    cases = [(['--preset', 'huge', '--out', tmp_path/'new'], "error: unknown synthetic preset 'huge'; valid: tiny, small, evidence, medium"),
             (['--preset', 'tiny', '--out', tmp_path/'mine'],
              f'error: output folder {tmp_path/"mine"} is not empty and holds no synthetic benchmark; choose a new or empty folder'),
             (['--preset', 'tiny', '--out', '/proc/mmdgpp-synth'], 'error: cannot create output folder /proc/mmdgpp-synth: ')]
    for args, message in cases:
        r = run_cli('synth', *args)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith(message) and r.stdout == '', (args, r.stderr)
    assert os.listdir(tmp_path/'mine') == ['notes.txt'] and (tmp_path/'mine'/'notes.txt').read_text() == 'keep me'
    assert not (tmp_path/'new').exists()


def test_output_folder_errors(tmp_path):
    (tmp_path/'file.txt').write_text('a file')
    with pytest.raises(MMDGError, match='exists and is not a folder'): S.generate(tmp_path/'file.txt', 'tiny')
    with pytest.raises(MMDGError, match='cannot create output folder .*: Not a directory'): S.generate(tmp_path/'file.txt'/'sub', 'tiny')


# --- power and failure modes ------------------------------------------------------------------------------------------
# The failure-mode tests render frames in memory (32 px, frame 0 of each video), pool each modality to 8 x 8 and fit
# their own probes: nothing of the notebook's loader/probe code (`probe_arrays`, `probe_table`) is used.

N, TRAIN, TEST = 32, 24, 20          # image side; people per domain whose videos train / test the probes


def _auc(y, s):
    "Mann-Whitney AUC: P(score of a live sample > score of a spoof sample), ties counted half."
    y, s = np.asarray(y), np.asarray(s, float)
    pos, neg = s[y == 1], s[y == 0]
    return float(((pos[:, None] > neg[None]).sum() + 0.5*(pos[:, None] == neg[None]).sum())/(len(pos)*len(neg)))


def _pool(a):
    "Mean over 4 x 4 blocks: (32, 32[, 3]) -> flat vector of 8 x 8[ x 3]."
    a = np.asarray(a, np.float32)
    return a.reshape(8, 4, 8, 4, *a.shape[2:]).mean((1, 3)).ravel()


def _render(videos, force=None):
    "Pooled modalities of frame 0 of `videos`; `force` = dict(dropout=..., flare=...) overrides the frame's sensor state."
    real = S.frame_conditions
    if force is not None: S.frame_conditions = lambda v, f, s=0: dict(real(v, f, s), **force)
    try: ims = [S.render_frame(v, 0, N, SEED) for v in videos]
    finally: S.frame_conditions = real
    return {m: np.stack([_pool(im[m]) for im in ims]) for m in ('rgb', 'depth', 'ir')}


@pytest.fixture(scope='module')
def frames():
    out = {}
    for d in S.DATASETS:
        for sp, k in (('train', TRAIN), ('test', TEST)):
            vs = V.plan_videos(d, sp, k, 2, SEED)
            out[d, sp] = dict(_render(vs), y=np.array([v.label for v in vs]), videos=vs)
    return out


def _probe(frames, sources, mods):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    X = np.concatenate([np.concatenate([frames[d, 'train'][m] for m in mods], 1) for d in sources])
    y = np.concatenate([frames[d, 'train']['y'] for d in sources])
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=5000, class_weight='balanced')).fit(X, y)
    return lambda f: model.decision_function(np.concatenate([f[m] for m in mods], 1))


def _transfer(frames, target, mods):
    "(AUC on the sources' test videos, AUC on the target's videos) of a probe trained on the three sources."
    src = [d for d in S.DATASETS if d != target]
    score = _probe(frames, src, mods)
    s = np.concatenate([score(frames[d, 'test']) for d in src]); ys = np.concatenate([frames[d, 'test']['y'] for d in src])
    t = np.concatenate([score(frames[target, sp]) for sp in ('train', 'test')])
    yt = np.concatenate([frames[target, sp]['y'] for sp in ('train', 'test')])
    return _auc(ys, s), _auc(yt, t)


def test_presets_sizes_and_power():
    for name, pr in V.PRESETS.items():
        jobs = S.layout(name)
        assert len(jobs) == len(S.DATASETS)*pr.samples() == len(S.DATASETS)*sum(
            k*(1 + pr.spoofs)*f for k, f in zip(pr.subjects, pr.frames)), name
        for d in S.DATASETS:
            vids = {(v.split, v.subject, v.slot): v.label for v, f, p, _ in jobs if v.dataset == d}
            live = sum(1 for (sp, *_), lab in vids.items() if sp == 'test' and lab)
            spoof = sum(1 for (sp, *_), lab in vids.items() if sp == 'test' and not lab)
            assert (live, spoof) == pr.videos('test'), (name, d)
            if name in ('small', 'evidence'):
                # HTER = (APCER + BPCER)/2: one live video moves it by 50/live points, one spoof video by 50/spoof
                assert live >= 100 and spoof >= 200 and 50/live <= 1 and 50/spoof <= 1, (name, d, live, spoof)
    assert len(S.layout('tiny')) <= 500
    with pytest.raises(MMDGError, match="unknown synthetic preset 'large'; valid: tiny, small, evidence, medium"): S.layout('large')


def test_session_looks_render_as_described():
    n = 64
    X, Y = np.meshgrid((np.arange(n) + 0.5)/n*2 - 1, (np.arange(n) + 0.5)/n*2 - 1)
    grey = np.full((3, n, n), 0.5, np.float32)
    test_ = lambda bits: CA.session_bias(grey, n, bits)
    assert np.array_equal(test_(0), grey)
    cool = test_(1)
    assert np.allclose(cool[2]/cool[0], 1.22/0.86, rtol=1e-4)                          # blue cast
    vig = test_(2)
    assert np.allclose(vig[:, n//2, n//2], 0.5) and vig[:, 0, 0].max() < 0.3            # dark corners, centre kept
    rows = test_(4)[1].mean(1)/0.5 - 1                                                   # horizontal bands
    assert np.allclose(rows, 0.14*np.sin(3*np.pi*Y[:, 0] + 0.5), atol=1e-5)
    lo, hi = np.full_like(grey, 0.2), np.full_like(grey, 0.8)
    assert np.allclose(CA.session_bias(hi, n, 8) - CA.session_bias(lo, n, 8), 0.7*0.6)     # haze: contrast x 0.7
    assert np.allclose(test_(1 | 8), CA.session_bias(test_(1), n, 8))                     # looks compose


@pytest.mark.parametrize('seed', [0, 3])
def test_look_rates_and_the_shortcut_of_every_split(seed):
    "Empirical look frequencies over many planned videos (no rendering) match the design, for any seed."
    k, rates = 600, {}
    for d in S.DATASETS:
        vs = V.plan_videos(d, 'train', k, 2, seed)
        for lab in (0, 1):
            b = np.array([v.bias for v in vs if v.label == lab])
            for c in range(len(CA.CUES)):
                p, want = ((b >> c) & 1).mean(), CA.CUE_RATES['failing' if c == CA.DOMAINS[d].cue else 'usual'][1 - lab]
                assert abs(p - want) < 4*np.sqrt(want*(1 - want)/len(b)) + 1e-9, (d, lab, c, p, want)
                rates[d, lab, c] = p
    for t in S.DATASETS:
        src = [d for d in S.DATASETS if d != t]
        # the looks that mark spoofs in every source domain: exactly one, and it marks live faces in the target
        shared = [c for c in range(len(CA.CUES)) if all(rates[d, 0, c] > 0.8 and rates[d, 1, c] < 0.2 for d in src)]
        assert len(shared) == 1 and rates[t, 1, shared[0]] > 0.8 and rates[t, 0, shared[0]] < 0.2, (t, shared)


def test_shortcut_fails_on_every_target(frames):
    drops = {}
    for t in S.DATASETS:
        src, tgt = _transfer(frames, t, ('rgb',))
        assert src > 0.85 and tgt < src - 0.05, (t, src, tgt)          # learnt on the sources, lost on the target
        drops[t] = src - tgt
        di = _transfer(frames, t, ('depth', 'ir'))
        drops[t, 'depth+ir'] = di[0] - di[1]
    assert np.mean([drops[t] for t in S.DATASETS]) > 0.12, drops
    # depth + IR carry what generalises: on average they lose less on the target than RGB does
    assert np.mean([drops[t, 'depth+ir'] for t in S.DATASETS]) < np.mean([drops[t] for t in S.DATASETS]) - 0.1, drops


def test_unreliable_modality_misleads_its_probe_on_every_target(frames):
    "Every domain has one unreliable modality; the same target videos rendered with it failed vs intact."
    drops = []
    for t in S.DATASETS:
        dom = CA.DOMAINS[t]
        m = 'depth' if dom.depth_dropout > dom.ir_flare else 'ir'
        assert max(dom.depth_dropout, dom.ir_flare) >= 0.4
        score = _probe(frames, [d for d in S.DATASETS if d != t], (m,))
        vs, y = frames[t, 'test']['videos'], frames[t, 'test']['y']
        clean = _auc(y, score(_render(vs, dict(dropout=False, flare=False))))
        broken = _auc(y, score(_render(vs, dict(dropout=m == 'depth', flare=m == 'ir'))))
        assert broken < clean, (t, m, clean, broken)
        if m == 'ir': assert broken < clean - 0.1, (t, m, clean, broken)       # hot spots: the stronger failure
        drops.append(clean - broken)
    assert np.mean(drops) > 0.08, drops
    # every leave-one-out split trains on a source with failing depth and a source with failing IR
    for t in S.DATASETS:
        src = [CA.DOMAINS[d] for d in S.DATASETS if d != t]
        assert max(d.depth_dropout for d in src) >= 0.4 and max(d.ir_flare for d in src) >= 0.4, t
