"""What the shipped `synthclip` tower's zero-shot live-vs-spoof score follows on the synthetic benchmark:
the session looks of the RGB frames (haze, cool lamp, vignette, flicker), not the attacks. Figures only.

The RGB test frames are re-rendered from the benchmark's own seeds (same scenes, same camera noise) with
the looks switched: as recorded (checked equal to the files), removed, or one look on every frame.
Score = softmax over four plain prompts, probability of "a photo of a real face" (as pretrain_report.py).
It prints:
1. per-domain AUC with a 95 % bootstrap interval over videos: looks as recorded (synthclip and the random
   tower of the same architecture) and looks removed (synthclip); then the AUC of several random initialisations,
   which spread widely: one random tower is no fixed baseline for a zero-shot score;
2. the paired shift of mean P(real face) when one look is added to every look-free frame;
3. how often each look sits on the live and on the spoof frames of each domain;
4. the mean probability of each prompt, and how often it wins, on live frames and on each attack.

    python benchmark/zeroshot_looks.py                              # generates the evidence benchmark, seed 0, under --out
    python benchmark/zeroshot_looks.py --synth data/synth/evidence-s0
The re-rendered frames are kept in --out and reused.
"""
import argparse, json
from pathlib import Path
import numpy as np

PROMPTS = ('a photo of a real face', 'a printed photo of a face', 'a face on a screen', 'a person wearing a mask')


def test_frames(root):
    "(preset, seed, size, [(Video, frame, paths)]) of the test splits of the benchmark in `root`, in list order."
    from mmdgpp.data.synth import layout
    info = json.loads((Path(root)/'synth.json').read_text())
    jobs = [j for j in layout(info['preset'], info['seed']) if j[0].split == 'test']
    return info, jobs


def recorded(root, jobs):
    "The RGB test frames as stored: uint8 (N, H, W, 3)."
    from PIL import Image
    def one(p):
        if 'npz' in p:
            with np.load(Path(root)/p['npz'], allow_pickle=False) as z: return z['rgb']
        with Image.open(Path(root)/p['rgb']) as im: return np.asarray(im.convert('RGB'))
    return np.stack([one(p) for _, _, p in jobs])


def render_looks(jobs, seed, size, looks, cache):
    """{name: uint8 (N, size, size, 3)}: each test frame re-rendered with the looks `looks[name](video)` (a bit mask).
    The scene is drawn once per frame and the RGB camera applied once per variant from the same generator state,
    so variants differ only by their looks. This repeats the steps of `render_frame`, using the private `_video`
    (victim and video parameters) and `video_seed` (seed material, of mmdgpp.data.videos); the as-recorded variant is
    compared with the files to show that it reproduces them."""
    if cache.exists():
        with np.load(cache) as z:
            if set(z.files) == set(looks): return {k: z[k] for k in looks}
    from mmdgpp.data import synth as S, scenes as SC, cameras as CA, videos as V
    from mmdgpp.core import atomic_path
    out = {k: [] for k in looks}
    for v, f, _ in jobs:
        victim, vp = S._video(v, seed)
        rng = np.random.default_rng(V.video_seed(seed, v, 2, v.slot, f))
        fp = SC.jitter(vp['pose'], rng); e = SC.pose(rng)
        fp.update(eyes=e['eyes'], mouth=e['mouth'], gaze=e['gaze'])
        sc = SC.SCENES[v.attack](victim, vp, fp, size, rng)
        state = rng.bit_generator.state
        for k, bits in looks.items():
            r = np.random.default_rng(); r.bit_generator.state = state
            out[k].append(CA.rgb_camera(sc['rgb'], CA.DOMAINS[v.dataset], size, r, bits(v), vp['wb']))
    out = {k: np.stack(a) for k, a in out.items()}
    with atomic_path(cache) as tmp:
        with open(tmp, 'wb') as fh: np.savez(fh, **out)
    return out


def probs(bb, x, batch=256):
    "Softmax over `PROMPTS` of the tower's scaled cosine similarities, (N, len(PROMPTS))."
    import torch
    m, s = torch.tensor(bb.mean).view(1, 3, 1, 1), torch.tensor(bb.std).view(1, 3, 1, 1)
    with torch.no_grad():
        ft = bb.encode_text(bb.tokenizer()(list(PROMPTS)), normalize=True)
        out = []
        for i in range(0, len(x), batch):
            t = torch.from_numpy(np.ascontiguousarray(x[i:i + batch])).permute(0, 3, 1, 2).float()/255
            out.append((bb.logit_scale*bb.encode_image((t - m)/s, normalize=True) @ ft.T).softmax(-1))
    return torch.cat(out).numpy()


def auc_ci(y, s, vids, B=1000, seed=0):
    "AUC and its 95 % bootstrap interval over videos."
    from sklearn.metrics import roc_auc_score
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(vids == u) for u in np.unique(vids)]
    vals = []
    for _ in range(B):
        idx = np.concatenate([groups[i] for i in rng.integers(len(groups), size=len(groups))])
        if 0 < y[idx].sum() < len(idx): vals.append(roc_auc_score(y[idx], s[idx]))
    return roc_auc_score(y, s), *np.percentile(vals, [2.5, 97.5])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--synth', default=None, help='synthetic benchmark folder (default: preset evidence, seed 0, generated under --out)')
    ap.add_argument('--out', default='runs/zeroshot-looks', help='where the re-rendered frames are kept (reused)')
    ap.add_argument('--random-draws', type=int, default=5, help='random-initialised towers to score (seeds 0, 1, ...)')
    a = ap.parse_args()
    import torch; torch.set_num_threads(1)
    from mmdgpp.data.synth import ensure_synth
    from mmdgpp.data.cameras import CUES
    from mmdgpp.models.backbone import create_backbone
    out = Path(a.out)
    if a.synth and not (Path(a.synth)/'synth.json').exists():
        ap.error(f'--synth {a.synth}: no synthetic benchmark there (no synth.json)')
    root = Path(a.synth) if a.synth else ensure_synth('evidence', 0, out/'synth-evidence-s0', log=print)
    info, jobs = test_frames(root)
    size = int(info['size'])
    looks = {'recorded': lambda v: v.bias, 'none': lambda v: 0, **{c: (lambda v, b=1 << k: b) for k, c in enumerate(CUES)}}
    V = render_looks(jobs, info['seed'], size, looks,
                     out/f'looks-{info["preset"]}-s{info["seed"]}-{size}px-v{info["version"]}-{info["domains"]}.npz')
    X = recorded(root, jobs)
    dom = np.array([v.dataset for v, _, _ in jobs]); y = np.array([v.label for v, _, _ in jobs])
    att = np.array([v.attack for v, _, _ in jobs]); bias = np.array([v.bias for v, _, _ in jobs])
    vids = np.array([f'{v.dataset}/{v.subject}/{v.slot}' for v, _, _ in jobs])
    D = sorted(set(dom), key='CPSW'.index)
    diff = np.abs(V['recorded'].astype(int) - X.astype(int))
    print(f'benchmark {root}: preset {info["preset"]}, seed {info["seed"]}, format version {info["version"]}, {size} px; '
          f'test split, {len(jobs)} frames of {len(set(vids))} videos')
    print(f're-render with the recorded looks vs the files: max |pixel difference| {diff.max()} '
          f'({int((diff.reshape(len(X), -1).max(1) > 0).sum())} of {len(X)} frames differ)')
    print(f'score = P({PROMPTS[0]!r}) of the softmax over {len(PROMPTS)} prompts; 95 % interval: bootstrap over videos (1000)')

    bb = create_backbone('mmdg-tiny-64', 'synthclip')
    P = {k: probs(bb, x) for k, x in V.items()}
    R = []
    for s in range(a.random_draws):           # random towers: open_clip's initialisation after torch.manual_seed(s)
        torch.manual_seed(s); R.append(probs(create_backbone('mmdg-tiny-64', ''), V['recorded']))
    print('\n== 1. live-vs-spoof AUC per domain')
    for name, p in (('synthclip, looks as recorded', P['recorded']), ('random tower (seed 0), looks as recorded', R[0] if R else None),
                    ('synthclip, looks removed', P['none'])):
        if p is None: continue
        print(f'   {name}')
        for d in D:
            k = dom == d
            r = auc_ci(y[k], p[k, 0], vids[k])
            print(f'      {d}: AUC {r[0]:.3f} [{r[1]:.3f}, {r[2]:.3f}]   n = {int(y[k].sum())} live / {int((1 - y[k]).sum())} spoof frames')
    if len(R) > 1:
        from sklearn.metrics import roc_auc_score
        A = np.array([[roc_auc_score(y[dom == d], r[dom == d, 0]) for d in D] for r in R])
        print(f'   random towers, looks as recorded, {len(R)} initialisations (seeds 0-{len(R) - 1}): AUC per draw')
        for d, col in zip(D, A.T):
            print(f'      {d}: ' + ' '.join(f'{v:.2f}' for v in col) + f'   (min {col.min():.2f}, max {col.max():.2f})')

    print(f'\n== 2. shift of mean P(real face) when one look is added to every look-free frame (paired, n = {len(jobs)}; '
          f'mean [95 % normal interval]; per domain n = {len(jobs)//len(D)})')
    for c in CUES:
        dp = P[c][:, 0] - P['none'][:, 0]
        h = 1.96*dp.std(ddof=1)/np.sqrt(len(dp))
        print(f'   + {c:9s} {dp.mean():+.3f} [{dp.mean() - h:+.3f}, {dp.mean() + h:+.3f}]   '
              + '  '.join(f'{d} {dp[dom == d].mean():+.3f}' for d in D))

    print('\n== 3. share of frames carrying each look, as recorded: live / spoof')
    for d in D:
        k = dom == d
        print(f'   {d} (n = {int(y[k].sum())} / {int((1 - y[k]).sum())}): ' + '   '.join(
            f'{c} {((bias[k & (y == 1)] >> b) & 1).mean():.2f} / {((bias[k & (y == 0)] >> b) & 1).mean():.2f}' for b, c in enumerate(CUES)))

    print('\n== 4. synthclip, looks as recorded: mean probability of each prompt (and share of frames it wins)')
    print('   prompts: ' + ' | '.join(PROMPTS))
    p = P['recorded']
    for d in D:
        for t in ['live'] + sorted(set(att[dom == d]) - {'live'}):
            j = (dom == d) & (att == t)
            win = np.bincount(p[j].argmax(1), minlength=len(PROMPTS))/j.sum()
            print(f'   {d} {t:20s} n = {j.sum():3d}  ' + '  '.join(f'{m:.2f} ({w:.2f})' for m, w in zip(p[j].mean(0), win)))
    win = p.argmax(1)
    for i in (1, 2):
        top = max(((dom == d) & (att == t) for d in D for t in set(att[dom == d]) - {'live'}), key=lambda j: p[j, i].mean())
        print(f'   {PROMPTS[i]!r}: highest mean on live frames {max(p[(dom == d) & (y == 1), i].mean() for d in D):.2f}, '
              f'on one attack of one domain {p[top, i].mean():.2f}; wins {int((win[y == 1] == i).sum())} of {int(y.sum())} live '
              f'and {int((win[y == 0] == i).sum())} of {int((1 - y).sum())} spoof frames')


if __name__ == '__main__':
    main()
