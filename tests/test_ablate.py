"Ablation batches end to end: papermill subprocesses, a killed driver, failures, shards, the real templates, the summary."
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pandas as pd
import pytest
from conftest import ROOT, BIN, run_cli
from mmdgpp.ablate import (write_toy_template, load_grid, expand, template_parameters, collect, study_config,
                           load_results, summary_stats)
from mmdgpp.cli import main

ABL = ROOT/'ablations'
TEMPLATES = ['component', 'missing']


def _toy_grid(d: Path, axes: str, base: str = '{}', timeout: int = 120) -> Path:
    write_toy_template(d/'toy.ipynb')
    g = d/'grid.yaml'
    g.write_text(f'template: toy.ipynb\ntimeout: {timeout}\nbase: {base}\naxes:\n{axes}')
    return g


def _score(a, b, seed): return b * (1 + seed) + {'x': 0, 'y': 10, 'z': 20}[a]


def _results(batch: Path) -> pd.DataFrame:
    return pd.read_csv(batch/'results.csv')


def _alive(pid):
    try: os.kill(pid, 0)
    except ProcessLookupError: return False
    try:  # a zombie (exited, not yet reaped) counts as gone
        return Path(f'/proc/{pid}/stat').read_text().split(')')[-1].split()[0] != 'Z'
    except OSError: return False


def _descendants(pid):
    import psutil
    try: return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess: return []


def _main(capsys, *args):
    "Run `mmdgpp ARGS` in this process (no interpreter start-up); return (exit code, stdout)."
    try: code = main([str(a) for a in args])
    except SystemExit as e: code = e.code
    return code, capsys.readouterr().out


@pytest.fixture(scope='module')
def synth_root(tmp_path_factory):
    "One tiny synthetic benchmark for every SMOKE run of this module (the runs find it through the settings)."
    root = tmp_path_factory.mktemp('synth')
    from mmdgpp.data.synth import ensure_synth
    ensure_synth('tiny', 0, root)
    return root


def _smoke_2x2(d: Path) -> Path:
    "The quick grid cut to 2 x 2 in SMOKE mode: its first two variants x its first two targets, one seed."
    import yaml
    g = yaml.safe_load((ABL/'grids'/'quick.yaml').read_text())
    g.update(template=str((ABL/'grids'/g['template']).resolve()), timeout=600)
    g['base']['SMOKE'] = True
    g['axes'] = {'variant': dict(list(g['axes']['variant'].items())[:2]), 'TARGET': g['axes']['TARGET'][:2]}
    (d/'smoke.yaml').write_text(yaml.safe_dump(g, sort_keys=False))
    return d/'smoke.yaml'


def test_smoke_grid_end_to_end_interrupted_and_resumed(tmp_path, capsys, monkeypatch, synth_root):
    monkeypatch.setenv('MMDGPP_SYNTH_ROOT', str(synth_root))
    monkeypatch.setenv('OMP_NUM_THREADS', '1')   # one torch thread per kernel: the CI machine's 2 cores are shared
    g, batch = _smoke_2x2(tmp_path), tmp_path/'batch'
    runs = expand(load_grid(g))
    assert len(runs) == 4
    # two jobs: two worker processes, each running one notebook in its own kernel
    cmd = [str(BIN/'mmdgpp'), 'ablate', str(g), '--out', str(batch), '--no-progress', '--jobs', '2']
    drv = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0, kids = time.time(), set()
    while not list(batch.glob('*/metrics.json')):
        assert drv.poll() is None, drv.communicate()
        assert time.time() - t0 < 300, 'the first run did not finish'
        kids |= set(_descendants(drv.pid)); time.sleep(0.05)
    kids |= set(_descendants(drv.pid))
    drv.kill(); drv.wait()                                       # SIGKILL: no chance to clean up
    assert len(kids) >= 4                                        # at least the two workers and their kernels
    finished = {p: p.stat().st_mtime for p in batch.glob('*/metrics.json')}
    # the workers watch the driver and exit; their kernels follow (ipykernel watches its parent)
    t1 = time.time()
    while any(_alive(k) for k in kids) and time.time() - t1 < 20: time.sleep(0.2)
    assert not [k for k in kids if _alive(k)], 'workers or kernels outlived the killed driver'
    # the driver died before updating results.csv; the run folders say where the batch stands
    df = collect(batch, runs, write=False)
    # with two jobs the other worker's run may finish in the same instant; at least two runs are left undone
    done = int((df.status == 'ok').sum())
    assert 1 <= done <= 2 and done >= len(finished) and set(df.status) <= {'ok', 'incomplete', 'pending'}, df[['run', 'status']]

    code, out = _main(capsys, 'ablate', g, '--out', batch, '--no-progress', '--jobs', '2')
    assert code == 0, out
    df = _results(batch)
    assert sorted(df.run) == sorted(r.name for r in runs) and df.run.is_unique   # every run, exactly once
    assert (df.status == 'ok').all() and '4 runs: ok 4' in out
    assert {p: p.stat().st_mtime for p in finished} == finished   # finished runs were not executed again
    for _, r in df.iterrows():
        d = batch/r.run
        m, cfg = json.loads((d/'metrics.json').read_text()), json.loads((d/'config.json').read_text())
        assert 0 <= m['hter'] <= 1 and 0 <= m['auc'] <= 1 and (r.hter, r.auc) == (m['hter'], m['auc'])
        assert Path(m['run']['python']).parent == BIN             # the kernel ran this environment's interpreter
        assert cfg['data']['target'] == r.TARGET == r.target and cfg['data']['protocol'] == r.protocol == 'p1'
        assert cfg['adapter']['kind'] == {'baseline': 'none'}.get(r.variant, 'u++') and cfg['train']['epochs'] == 1
        assert (d/'component.ipynb').exists() and (d/'train'/'log.csv').exists()
        assert [f.name for f in (d/'figures').glob('roc-*.png')] == [f'roc-p1-{"CPSW".replace(r.TARGET, "")}-{r.TARGET}.png']
    # nothing left to do: another call executes nothing, the table is unchanged, and --summary runs
    # the summary notebook on the batch: its numbers are the per-run numbers, averaged by hand here
    before = {p: p.stat().st_mtime for p in batch.glob('*/status.json')}
    code, out = _main(capsys, 'ablate', g, '--out', batch, '--no-progress', '--summary')
    assert code == 0 and f'summary: {batch/"summary"}' in out, out
    assert {p: p.stat().st_mtime for p in batch.glob('*/status.json')} == before
    assert _results(batch).equals(df)
    out_dir = batch/'summary'
    assert (batch/'summary.ipynb').exists()
    for metric in ('hter', 'auc'):
        st = pd.read_csv(out_dir/f'summary_{metric}.csv').set_index(['variant', 'setting'])
        for (v, t), x in df.groupby(['variant', 'TARGET'])[metric]:
            assert st.loc[(v, t), 'mean'] == pytest.approx(x.mean()) and st.loc[(v, t), 'n'] == 1
        for v, x in df.groupby('variant')[metric]:
            assert st.loc[(v, 'Avg'), 'mean'] == pytest.approx(x.mean())
    md = (out_dir/'summary.md').read_text()
    assert '### HTER (%), p1' in md and '| variant | W | C | Avg |' in md
    assert all(f'| {v} |' in md for v in df.variant.unique())
    for f in ('variants_hter_val_eer.png', 'heatmap_hter_val_eer.png', 'forest_hter_val_eer_p1.png'):
        assert (out_dir/'figures'/f).stat().st_size > 5000
    # intervals and paired differences against the grid's reference variant (mmdgpp, the first variant of quick.yaml)
    bs = pd.read_csv(out_dir/'bootstrap_hter_val_eer.csv').set_index(['variant', 'setting'])
    for (v, t), x in df.groupby(['variant', 'TARGET']).hter_val_eer:
        assert bs.loc[(v, t), 'value'] == pytest.approx(x.mean()) and bs.loc[(v, t), 'lo'] <= x.mean() <= bs.loc[(v, t), 'hi']
    other = [v for v in df.variant.unique() if v != 'mmdgpp']
    for v in other:
        d = df[df.variant == v].set_index('TARGET').hter_val_eer - df[df.variant == 'mmdgpp'].set_index('TARGET').hter_val_eer
        assert bs.loc[(v, 'Avg'), 'diff'] == pytest.approx(d.mean())
    assert 'variant − mmdgpp' in (out_dir/'summary_ci.md').read_text()


def test_failing_run_is_recorded_and_the_batch_goes_on(tmp_path, capsys):
    g = _toy_grid(tmp_path, '  A: [x, y]\n  FAIL: [false, true]\n', base='{B: 1.0}')
    batch = tmp_path/'batch'
    code, out = _main(capsys, 'ablate', g, '--out', batch, '--no-progress')
    assert code == 1, out                                        # some runs failed: exit 1, not a usage error
    assert json.loads((batch/'batch.json').read_text())['template'] == 'toy.ipynb'   # no checkout path recorded
    df = _results(batch)
    assert df.status.tolist() == ['ok', 'failed', 'ok', 'failed']
    bad = df[df.FAIL]
    assert set(bad.error) == {'ValueError'}
    assert bad.message.tolist() == ['deliberate failure for A=x', 'deliberate failure for A=y']
    assert df[~df.FAIL].score.tolist() == [_score('x', 1.0, 0), _score('y', 1.0, 0)]
    for run in bad.run:                                          # the executed notebook is the error log
        nb = json.loads((batch/run/'toy.ipynb').read_text())
        errs = [o for c in nb['cells'] for o in c.get('outputs', []) if o.get('output_type') == 'error']
        assert errs and errs[0]['ename'] == 'ValueError'
        assert not (batch/run/'metrics.json').exists()
    assert '4 runs: ok 2, failed 2' in out and 'deliberate failure for A=x' in out
    # --skip-failed leaves them alone; a plain re-run executes only the failed ones again
    ok_mtimes = {run: (batch/run/'metrics.json').stat().st_mtime for run in df[~df.FAIL].run}
    bad_mtimes = lambda: {run: (batch/run/'status.json').stat().st_mtime for run in bad.run}
    before = bad_mtimes()
    assert _main(capsys, 'ablate', g, '--out', batch, '--no-progress', '--skip-failed')[0] == 1
    assert bad_mtimes() == before
    assert _main(capsys, 'ablate', g, '--out', batch, '--no-progress')[0] == 1
    assert all(bad_mtimes()[r] > before[r] for r in before)
    assert {run: (batch/run/'metrics.json').stat().st_mtime for run in ok_mtimes} == ok_mtimes
    assert len(_results(batch)) == 4


def test_cell_timeout_fails_the_run(tmp_path, capsys):
    g = _toy_grid(tmp_path, '  A: [x]\n', base='{SLEEP: 60.0}', timeout=2)
    t = time.time()
    assert _main(capsys, 'ablate', g, '--out', tmp_path/'batch', '--no-progress')[0] == 1
    assert time.time() - t < 40
    df = _results(tmp_path/'batch')
    assert df.status.tolist() == ['failed'] and 'Timeout' in df.error[0], df.error[0]


def test_shards_partition_the_grid_and_jobs_run_in_parallel(tmp_path, capsys):
    g = _toy_grid(tmp_path, '  A: [x, y]\n  SEED: [0, 1]\n', base='{B: 3.0}')
    batch = tmp_path/'batch'
    everything = [x.name for x in expand(load_grid(g))]
    shards = []
    for k in range(3):
        code, out = _main(capsys, 'ablate', g, '--out', batch, '--list', '--shard', f'{k}/3')
        assert code == 0, out
        shards.append([l.split()[1] for l in out.splitlines()])
    assert sorted(sum(shards, [])) == sorted(everything)         # each run in exactly one shard
    assert [len(s) for s in shards] == [2, 1, 1]
    assert shards == [everything[k::3] for k in range(3)]      # deterministic: every 3rd run of the grid's order
    # two array tasks on one batch folder; the first with two worker processes, each pinned to one "GPU"
    code, out = _main(capsys, 'ablate', g, '--out', batch, '--no-progress', '--shard', '0/2', '--jobs', '2', '--gpus', '5,7')
    assert code == 0, out
    df = _results(batch)
    assert sorted(df.run[df.status == 'ok']) == sorted(everything[0::2])
    assert set(df.status[~df.run.isin(everything[0::2])]) == {'pending'}
    pinned = {json.loads((batch/run/'status.json').read_text())['cuda_visible_devices'] for run in everything[0::2]}
    assert pinned and pinned <= {'5', '7'}
    code, out = _main(capsys, 'ablate', g, '--out', batch, '--no-progress', '--shard', '1/2')
    assert code == 0, out
    df = _results(batch)
    assert (df.status == 'ok').all() and len(df) == 4 and df.run.is_unique
    assert df.score.tolist() == [_score(a, 3.0, s) for a, s in zip(df.A, df.SEED)]


BAD_INPUTS = [
    # (grid text or None for a missing file, extra args, expected message fragment)
    (None, [], 'grid file not found'),
    ('template: toy.ipynb\naxes:\n  A: [x\n', [], 'is not valid YAML'),
    ('template: toy.ipynb\naxes:\n  NOPE: [1, 2]\n', [], 'unknown parameter "NOPE"'),
    ('template: toy.ipynb\nbase: {Q: 1}\naxes:\n  A: [x]\n', [], 'unknown parameter "Q"'),
    ('template: toy.ipynb\naxes:\n  A: [x, w]\n', [], 'A must be one of x | y | z'),
    ('template: toy.ipynb\naxes:\n  train.lrr: [0.1]\n', [], 'unknown config key "train.lrr"'),
    ('template: toy.ipynb\naxis:\n  A: [x]\n', [], 'unknown key "axis"'),
    ('template: nope.ipynb\naxes:\n  A: [x]\n', [], 'template not found'),
    ('template: toy.ipynb\naxes:\n  A: [x]\n', ['--shard', '4/4'], '--shard must be K/N'),
    ('template: toy.ipynb\naxes:\n  A: [x]\n', ['--shard', 'two'], '--shard must be K/N'),
    ('template: toy.ipynb\naxes:\n  A: [x]\n', ['--jobs', '0'], '--jobs must be a positive integer'),
    ('template: toy.ipynb\naxes:\n  A: [x]\n', ['--set', 'A=y'], 'A is an axis of the grid'),
    ('template: toy.ipynb\naxes:\n  A: [x]\n', ['--kernel', 'nokernel'], 'no Jupyter kernel named "nokernel"'),
]


@pytest.mark.parametrize('text,args,msg', BAD_INPUTS)
def test_bad_input_is_one_clear_line(tmp_path, capsys, text, args, msg):
    write_toy_template(tmp_path/'toy.ipynb')
    g = tmp_path/'g.yaml'
    if text is not None: g.write_text(text)
    assert main(['ablate', str(g), '--out', str(tmp_path/'b'), '--no-progress', *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('error: ') and msg in err and '\n' not in err, err
    assert not (tmp_path/'b').exists() or not any((tmp_path/'b').glob('*/status.json'))  # nothing ran


def test_bad_input_from_the_console_script(tmp_path):
    r = run_cli('ablate', tmp_path/'missing.yaml')
    assert r.returncode == 2 and r.stderr.strip() == f'error: grid file not found: {tmp_path/"missing.yaml"}'


def test_templates_and_grids_are_well_formed():
    for t in TEMPLATES:
        nb = json.loads((ABL/f'{t}.ipynb').read_text())
        code = [c for c in nb['cells'] if c['cell_type'] == 'code']
        src = lambda c: ''.join(c['source'])
        ps = template_parameters(ABL/f'{t}.ipynb')                # one parameters cell of commented literals, no widgets
        assert {'SMOKE', 'SEED', 'OUT_DIR', 'TARGET', 'CONFIG'} <= set(ps)
        i = next(k for k, c in enumerate(code) if 'parameters' in c['metadata'].get('tags', []))
        assert 'study_config(' in src(code[i + 1])                # the next cell builds and checks the config
        assert 'save_results(' in src(code[-1])                   # the last cell records the results
        assert not any(c.get('outputs') for c in code)            # committed clean
    counts = dict(quick=16, evidence_p1=108, heldout_p1=84, evidence_p2=72, evidence_p3=36, paper_p1=120, paper_p2=72, paper_p3=36)
    for name, n in counts.items():
        g = load_grid(ABL/'grids'/f'{name}.yaml')
        runs = expand(g)                                          # every name and value checked against the template
        assert len(runs) == n, name
        for r in runs:                                            # every run makes a valid config (presets, tasks)
            p = r.params
            cfg = study_config(p.get('PROTOCOL', 'p1'), p['TARGET'], p['SEED'], p['SMOKE'], p['MODEL'], p['ADAPTER'],
                               p['UNCERTAINTY'], p['PROMPTS'], p['REGRAD'], config={k: v for k, v in p.items() if '.' in k})
            assert cfg.data.protocol == ('p3' if name in ('paper_p3', 'evidence_p3') else 'p1')
            if name.startswith('paper'):
                assert (cfg.backbone.name, cfg.backbone.pretrained, cfg.data.source, cfg.train.device) == \
                       ('ViT-B-16', 'openai', 'real', 'cuda')
            else:
                assert (cfg.backbone.name, cfg.data.source, cfg.train.device) == ('mmdg-tiny-64', 'synthetic', 'cpu')
        if name.startswith('paper'): assert g.axes['SEED'] == [0, 1, 2]
    full = [r for r in expand(load_grid(ABL/'grids'/'paper_p1.yaml')) if r.labels['variant'] == 'mmdgpp']
    assert {(r.params['ADAPTER'], r.params['PROMPTS'], r.params['REGRAD']) for r in full} == {('u++', 'adp', 'v4')}
    assert template_parameters(ABL/'component.ipynb')['PROTOCOL'].choices == ('p1', 'p3')   # one template, two protocols
    assert not (ABL/'limited.ipynb').exists()


NEW_P1_VARIANTS = ('no_certainty', 'sym_prompts')   # added when the log-variance head's start became `reference`

@pytest.mark.parametrize('batch', [b for b in ('evidence_p1', 'heldout_p1', 'evidence_p1_const', 'heldout_p1_const')
                                   if (ABL/'results'/b).exists()])
def test_committed_p1_runs_keep_their_folder_names(batch):
    "Each committed P1 batch's folders are today's grid expansion (the `_const` ones: without the variants added since)."
    import hashlib
    folders = {d.name: json.loads((d/'params.json').read_text()) for d in (ABL/'results'/batch).iterdir() if (d/'params.json').exists()}
    assert len(folders) == {'evidence_p1': 108, 'heldout_p1': 84, 'evidence_p1_const': 84, 'heldout_p1_const': 60}[batch]
    for name, params in folders.items():                          # the hashing rule by hand: template stem + recorded params
        kept = {k: v for k, v in params.items() if (k, v) != ('PROTOCOL', 'p1')}   # runs since PROTOCOL record it; p1 stays out
        raw = json.dumps({'template': 'component', 'params': kept}, sort_keys=True)
        assert name.endswith('_' + hashlib.sha1(raw.encode()).hexdigest()[:8]), name
    runs = expand(load_grid(ABL/'grids'/f'{batch.removesuffix("_const")}.yaml'))
    if batch.endswith('_const'): runs = [r for r in runs if r.labels['variant'] not in NEW_P1_VARIANTS]
    assert {r.name for r in runs} == set(folders)                 # today's expansion names the same folders
    for r in runs:
        assert r.params == {**folders[r.name], 'PROTOCOL': 'p1'}  # the same parameters, plus the new one at its default
    if batch.startswith('evidence_p1'): assert 'seed-0_target-C_variant-erm_40064cc3' in folders   # the name on record
    if batch.endswith('_const'):                                  # run with the constant start, the default then
        cfg = json.loads((ABL/'results'/batch/next(n for n in folders if '_variant-mmdgpp_' in n)/'config.json').read_text())
        assert cfg['adapter']['logvar_init'] == -3.0


def test_committed_batches_name_their_template_without_a_path():
    "A committed batch.json names its template by file name (a path would be the machine it ran on); the template exists."
    metas = [json.loads(p.read_text()) for p in sorted((ABL/'results').glob('*/batch.json'))]
    assert len(metas) >= 10
    for m in metas: assert '/' not in m['template'] and (ABL/m['template']).exists(), m['template']


def test_protocol_2_and_3_templates_in_smoke_mode(tmp_path, capsys, monkeypatch, synth_root):
    monkeypatch.setenv('MMDGPP_SYNTH_ROOT', str(synth_root))
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    tables = []
    for t, template, base, target in (('missing', 'missing', '{SMOKE: true}', 'W'),
                                      ('limited', 'component', '{SMOKE: true, PROTOCOL: p3}', 'PS')):
        g = tmp_path/f'{t}.yaml'
        g.write_text(f'template: {ABL/template}.ipynb\ntimeout: 600\nbase: {base}\naxes:\n  TARGET: [{target}]\n')
        code, out = _main(capsys, 'ablate', g, '--out', tmp_path/t, '--no-progress')
        assert code == 0, out
        df = _results(tmp_path/t)
        assert df.status.tolist() == ['ok'] and df.target[0] == target
        tables.append(tmp_path/t/'results.csv')
    p2, p3 = (pd.read_csv(p).iloc[0] for p in tables)
    assert (p2.protocol, p3.protocol) == ('p2', 'p3')
    # Protocol 2: one training, one evaluation per missing setting; the headline is their mean
    conds = ['depth', 'ir', 'depth+ir']
    for m in ('hter', 'auc'):
        assert p2[m] == pytest.approx(sum(p2[f'evaluations.{c}.{m}'] for c in conds) / 3)
    run = tmp_path/'missing'/p2.run
    assert sorted(f.name for f in run.glob('results-*.json')) == sorted(['results-p1-CPS-W.json',   # every modality, then each setting
                                                                       *(f'results-p2-CPS-W-{c}.json' for c in conds)])
    assert json.loads((run/'config.json').read_text())['data']['protocol'] == 'p1'   # trained as Protocol 1
    # the summary's long table: a column per missing setting, and the two-source task
    st = summary_stats(load_results(tables), 'hter')
    assert list(st[st.protocol == 'p2'].setting) == ['W -depth', 'W -ir', 'W -depth+ir', 'Avg']
    assert list(st[st.protocol == 'p3'].setting) == ['PS', 'Avg']
    assert st.set_index(['protocol', 'setting']).loc[('p2', 'W -ir'), 'mean'] == pytest.approx(p2['evaluations.ir.hter'])


def test_mech_c_grid_arms_and_expected_signs():
    "Experiment C: 20 runs, attacks disjoint in two arms and each domain's own mix in the third, live shared or specific."
    from mmdgpp.data.synth import config_knobs
    g = ABL/'grids'/'mech_c_adp.yaml'
    assert 'EXPECTED SIGNS' in g.read_text()
    runs = expand(load_grid(g))
    assert len(runs) == 20
    arms = {}
    for r in runs:
        p = r.params
        cfg = study_config('p1', p['TARGET'], p['SEED'], p['SMOKE'], p['MODEL'], p['ADAPTER'], p['UNCERTAINTY'], p['PROMPTS'],
                           p['REGRAD'], config={k: v for k, v in p.items() if '.' in k})
        arms.setdefault((cfg.data.attacks_disjoint, cfg.data.live_domain), set()).add(cfg.prompts.kind)
        assert (cfg.data.target, cfg.data.test_subjects, cfg.data.look_strength, cfg.data.preset) == ('W', 334, 0.0, 'evidence')
        assert config_knobs(cfg.data).tag                                          # never today's benchmark folder
    assert arms == {(True, 0.0): {'adp', 'sym', 'dom', 'fixed'}, (True, 1.0): {'adp', 'sym', 'dom', 'fixed'}, (False, 0.0): {'adp', 'sym'}}


def _assert_batch_is(batch, runs):
    "The committed batch folder holds exactly `runs`, every one finished, with its parameters and without checkpoints."
    folders = {d.name: d for d in (ABL/'results'/batch).iterdir() if d.is_dir()}
    assert {r.name for r in runs} == set(folders)
    for r in runs:
        d = folders[r.name]
        assert json.loads((d/'status.json').read_text())['status'] == 'ok'
        assert json.loads((d/'params.json').read_text()) == r.params
        assert (d/'metrics.json').exists() and not list(d.glob('*.pt'))        # results without checkpoints


@pytest.mark.parametrize('batch', ['mech_a_certainty', 'mech_b_regrad', 'mech_c_adp'])
def test_committed_mechanism_batches_are_their_grids(batch):
    "Each committed mechanism batch holds exactly today's expansion of its grid, every run finished, with the grid's parameters."
    _assert_batch_is(batch, expand(load_grid(ABL/'grids'/f'{batch}.yaml')))


def test_the_switch_table_of_01_config_is_what_study_config_does():
    "Each row of 01_config's switch table: building a study config with that parameter sets exactly the keys the row names."
    import re
    from mmdgpp.ablate.study import study_config, SWITCHES, SMOKE_SETTINGS
    nb = json.loads((ROOT/'nbs'/'01_config.ipynb').read_text())
    md = next(''.join(c['source']) for c in nb['cells'] if 'id="switches"' in ''.join(c['source']))
    rows = {m.group(1): m.group(2) for m in re.finditer(r'^\| `([A-Z]+)` \| (.*?) \|', md, flags=re.M)}
    assert set(rows) == {'MODEL', 'ADAPTER', 'UNCERTAINTY', 'PROMPTS', 'REGRAD', 'PROTOCOL', 'TARGET', 'SEED', 'SMOKE'}
    for k in ('model', 'adapter', 'prompts', 'regrad'):                   # the values listed are the ones accepted
        assert re.findall(r'`([\w+]+)`', rows[k.upper()]) == list(SWITCHES[k])
    base = dict(protocol='p1', target='W', seed=0, model='mmdgpp', adapter='u++', uncertainty=True, prompts='adp', regrad='v4')
    c0 = study_config(**base)
    cases = [('adapter', 'u', lambda c: c.adapter.kind == 'u'), ('uncertainty', False, lambda c: c.adapter.uncertainty is False),
             ('prompts', 'sym', lambda c: c.prompts.kind == 'sym'), ('seed', 3, lambda c: c.train.seed == 3),
             ('regrad', 'none', lambda c: c.regrad.enabled is False), ('regrad', 'v2', lambda c: c.regrad.version == 2 and c.regrad.enabled),
             ('target', 'C', lambda c: c.data.target == 'C'), ('protocol', 'p3', None), ('model', 'erm', lambda c: c.model == 'erm')]
    for k, v, ok in cases:
        if k == 'protocol': c = study_config(**{**base, 'protocol': 'p3', 'target': 'PS'}); assert c.data.protocol == 'p3'; continue
        assert ok(study_config(**{**base, k: v})), (k, v)
    s = study_config(**base, smoke=True)                                  # SMOKE sets its keys on top
    assert s.backbone.name == SMOKE_SETTINGS['backbone.name'] and s.train.epochs == SMOKE_SETTINGS['train.epochs'] != c0.train.epochs
    from mmdgpp.core import MMDGError
    with pytest.raises(MMDGError, match='set the parameter instead'): study_config(**base, config={'prompts.kind': 'sym'})


@pytest.mark.parametrize('batch', ['evidence_p1_last', 'heldout_p1_last'])
def test_committed_last_epoch_batches_are_their_grids_with_the_last_epoch(batch):
    "The selection-rule batches are the P1 grids expanded with train.select=last, every run finished; runs that trained to the same epoch as the AUC-selected batch have the same scores."
    grid = batch.removesuffix('_last')
    runs = expand(load_grid(ABL/'grids'/f'{grid}.yaml', {'train.select': 'last'}))
    assert all(r.params['train.select'] == 'last' for r in runs)
    _assert_batch_is(batch, runs)
    last, sel = (pd.read_csv(ABL/'results'/b/'results.csv') for b in (batch, grid))
    m = last.merge(sel, on=['variant', 'SEED', 'target'], suffixes=('', '_sel'))
    assert len(m) == len(runs) and (last.status == 'ok').all()
    assert (m['train.best_epoch'] == m['train.epochs_done']).all()           # `last`: the last epoch, always
    same = m[m['train.best_epoch'] == m['train.best_epoch_sel']]
    assert len(same) >= len(m) * 3 // 4 and (same.auc - same.auc_sel).abs().max() < 1e-4 \
        and (same.hter_val_eer == same.hter_val_eer_sel).all()   # same epoch: the same model (a reused run: AUC within 5e-5)
