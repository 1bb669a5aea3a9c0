"Protocols 2 and 3: bad inputs stop before anything is written; the evidence grids' SMOKE batches feed the summary tables."
import json
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT, run_cli

ABL = ROOT/'ablations'


@pytest.fixture(scope='module')
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('synth')
    from mmdgpp.data.synth import ensure_synth
    ensure_synth('tiny', 0, root)
    return root


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory, synth_root):
    "One MMDG++ run of one step on the tiny synthetic benchmark (Protocol 1, target W)."
    from mmdgpp.config import from_dict
    from mmdgpp.train.trainer import train
    cfg = from_dict({'data.root': str(synth_root), 'data.preset': 'tiny', 'data.batch_size': 8, 'data.max_per_split': 16,
                     'train.epochs': 1, 'train.max_steps_per_epoch': 1, 'train.device': 'cpu', 'backbone.pretrained': '',
                     'adapter.num_samples': 4})
    return train(cfg, tmp_path_factory.mktemp('run')/'run', verbose=False, progress=False)


def _one_line_error(r, msg):
    assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ') and msg in lines[0], r.stderr


def test_eval_with_an_unknown_modality_writes_nothing(tiny_run):
    out = tiny_run.parent/'unknown'
    r = run_cli('eval', '--run', tiny_run, '--missing', 'thermal', '--out', out, '--no-progress')
    _one_line_error(r, "unknown modality 'thermal'")
    assert not out.exists()


def test_eval_without_the_modality_in_training_writes_nothing(tiny_run):
    "A model whose training samples never carried depth: a depth-missing test is refused before any folder is made."
    from mmdgpp.core import MMDGError
    from mmdgpp.eval.evaluate import evaluate, trained_modalities
    from mmdgpp.eval.checkpoints import build_model_and_data
    def no_depth(cfg, device):
        model, data = build_model_and_data(cfg, device)
        data.train.missing = ('depth',)         # as if the source datasets had no depth files
        return model, data
    out = tiny_run.parent/'nodepth'
    with pytest.raises(MMDGError, match='the model was trained without depth'):
        evaluate(tiny_run, missing='depth', out_dir=out, build=no_depth, verbose=False)
    assert not out.exists()
    # the same model tested with IR missing is fine; its training carried rgb and ir
    model, data = no_depth(__import__('mmdgpp.config', fromlist=['from_dict']).from_dict(
        json.loads((tiny_run/'config.json').read_text())), 'cpu')
    assert trained_modalities(data.train) == ('rgb', 'ir')


def _grid(d: Path, name: str, **change) -> Path:
    g = yaml.safe_load((ABL/'grids'/name).read_text())
    g['template'] = str((ABL/'grids'/g['template']).resolve())
    for k, v in change.items(): g[k] = v
    p = d/name; p.write_text(yaml.safe_dump(g, sort_keys=False))
    return p


@pytest.mark.parametrize('name,base,msg', [
    ('evidence_p3.yaml', {'PROTOCOL': 'p3'}, "protocol p3 has no target 'W'; valid: PS, CW"),
    ('evidence_p2.yaml', {'MISSING': ['depth', 'thermal']}, "unknown modality 'thermal'")])
def test_template_path_refuses_a_bad_task_before_writing(tmp_path, name, base, msg):
    g = yaml.safe_load((ABL/'grids'/name).read_text())
    axes = {'TARGET': ['W'] if name == 'evidence_p3.yaml' else ['S'], 'variant': {'erm': {'MODEL': 'erm'}, 'mmdgpp': {}}}
    p = _grid(tmp_path, name, base={**g['base'], **base}, axes=axes)
    out = tmp_path/'batch'
    _one_line_error(run_cli('ablate', p, '--out', out, '--no-progress'), msg)
    assert not out.exists()


def test_evidence_grids_sizes_and_selection_rule():
    from mmdgpp.ablate import load_grid, expand
    for name, n, tmpl in (('evidence_p2.yaml', 72, 'missing.ipynb'), ('evidence_p3.yaml', 36, 'component.ipynb')):
        runs = expand(load_grid(ABL/'grids'/name))
        assert len(runs) == n and Path(load_grid(ABL/'grids'/name).template).name == tmpl
        assert {r.params['train.select'] for r in runs} == {'last'}
        assert {r.labels['variant'] for r in runs} == {'erm', 'flip', 'mmdg', 'mmdgpp', 'no_certainty', 'no_regrad'}
        assert 'EXPECTED SIGNS' in (ABL/'grids'/name).read_text()


def _hter(scores, labels, t):
    "HTER at threshold t, written out: spoofs accepted (>= t) and lives rejected (< t)."
    s, y = np.asarray(scores), np.asarray(labels)
    return ((s[y == 0] >= t).mean() + (s[y == 1] < t).mean()) / 2


def test_smoke_batches_feed_the_protocol_tables(tmp_path, synth_root, monkeypatch):
    "A 2-variant SMOKE cut of each evidence grid runs end to end; the tables hold each setting with drops and differences."
    monkeypatch.setenv('MMDGPP_SYNTH_ROOT', str(synth_root))
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    from mmdgpp.ablate import load_results
    from mmdgpp.ablate.summary import run_scores
    from mmdgpp.ablate.protocols import protocol_tables
    axes = {'SEED': [0], 'TARGET': None, 'variant': {'erm': {'MODEL': 'erm'}, 'mmdgpp': {}}}
    for name, target in (('evidence_p2.yaml', 'W'), ('evidence_p3.yaml', 'PS')):
        g = yaml.safe_load((ABL/'grids'/name).read_text())
        p = _grid(tmp_path, name, base={**g['base'], 'SMOKE': True}, axes={**axes, 'TARGET': [target]})
        out = tmp_path/name.split('.')[0]
        r = run_cli('ablate', p, '--out', out, '--no-progress', '--jobs', '2', timeout=900)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        long = load_results(out/'results.csv')
        tabs = protocol_tables(long, B=200)
        if name == 'evidence_p2.yaml':
            assert sorted(tabs) == ['Avg', 'W -depth', 'W -depth+ir', 'W -ir']   # Avg: the mean over the settings
            t = tabs['W -depth']
            assert {'hter_val_eer drop', 'auc drop', 'hter_val_eer − mmdgpp', 'hter_val_eer: mmdgpp − erm', 'shift_live (mean)'} <= set(t.columns)
            # the recorded drop is missing - full at the full-modality val threshold, computed here from the scores
            row = long[(long.variant == 'mmdgpp') & (long.condition == 'depth')].iloc[0]
            full, thr = run_scores(row['dir'], '')
            miss, thr_m = run_scores(row['dir'], 'depth')
            assert thr == thr_m
            f, m = full.set_index('video').sort_index(), miss.set_index('video').sort_index()
            want = _hter(m.score, m.label, thr) - _hter(f.score, f.label, thr)
            assert abs(row['drop_hter_val_eer'] - want) < 1e-9
            assert abs(row['shift_live'] - (m.score - f.score)[f.label == 1].mean()) < 1e-9
            assert (out/row['run']/f'scores-p2-CPS-W-depth.csv').exists() and (out/row['run']/'scores-p1-CPS-W.csv').exists()
        else:
            assert sorted(tabs) == ['PS'] and 'hter_val_eer: mmdgpp − erm' in tabs['PS'].columns
            assert set(long.protocol) == {'p3'}
