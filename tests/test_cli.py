"`mmdgpp train`, `mmdgpp eval`, `mmdgpp quickstart`: help texts, one-line errors (exit 2, no traceback), a real run."
import json
import pytest, torch
from conftest import run_cli
from mmdgpp.cli import main
from mmdgpp.data.synth import default_synth_dir, ensure_synth


def _err(capsys, *argv):
    "Run the CLI in-process; return (exit status, stderr)."
    try: rc = main(list(argv))
    except SystemExit as e: rc = e.code
    return rc, capsys.readouterr().err


def _one_line(err):
    return err.strip().count('\n') == 0 and 'Traceback' not in err


@pytest.fixture(scope='module')
def synth():
    return str(ensure_synth('tiny', 0, default_synth_dir('tiny', 0)))


def test_help_explains_the_commands():
    r = run_cli('train', '--help')
    assert r.returncode == 0
    for s in ('--protocol', '--target', '--config', '--set KEY=VALUE', '--out', 'resume', 'torchrun', 'examples'):
        assert s in r.stdout, s
    r = run_cli('eval', '--help')
    assert r.returncode == 0 and all(s in r.stdout for s in ('--run', '--checkpoint', '--missing', 'val-eer', 'test-eer'))
    r = run_cli('quickstart', '--help')
    assert r.returncode == 0 and all(s in r.stdout for s in ('--device', '--backbone', '--pretrained', 'ViT-B-16'))


def test_bad_arguments_give_one_line(capsys, tmp_path):
    (tmp_path/'bad.json').write_text('{"train": {"epochs": 2,,}')
    torch.save({'weight': torch.zeros(2)}, tmp_path/'foreign.pt')
    cases = [
        (['train', '--protocol', 'p9'], "unknown protocol 'p9'"),
        (['train', '--protocol', 'p1', '--target', 'X'], "protocol p1 has no target 'X'"),
        (['train', '--protocol', 'p3', '--target', 'W'], "protocol p3 has no target 'W'"),
        (['train', '--config', str(tmp_path/'none.yaml')], 'config file not found'),
        (['train', '--config', str(tmp_path/'bad.json')], 'cannot read config'),
        (['train', '--set', 'train.nope=1'], 'unknown config key "train.nope"'),
        (['train', '--set', 'train.epochs=many'], 'config key "train.epochs": expected int'),
        (['eval', '--checkpoint', str(tmp_path/'missing.pt')], 'checkpoint not found'),
        (['eval', '--checkpoint', str(tmp_path/'foreign.pt')], 'is not an mmdgpp training checkpoint'),
        (['eval', '--run', str(tmp_path)], 'is not a run folder'),
        (['eval', '--run', str(tmp_path/'nowhere')], 'run folder not found'),
    ]
    for argv, msg in cases:
        rc, err = _err(capsys, *argv)
        assert rc == 2, (argv, rc, err)
        assert err.startswith('error: ') and msg in err and _one_line(err), (argv, err)
    rc, err = _err(capsys, 'eval')                     # neither --run nor --checkpoint: argparse's usage error
    assert rc == 2 and 'one of the arguments --run --checkpoint is required' in err and 'Traceback' not in err


def test_train_eval_and_a_checkpoint_of_another_architecture(synth, tmp_path):
    run = tmp_path/'run'
    r = run_cli('train', '--protocol', 'p1', '--target', 'W', '--epochs', '1', '--device', 'cpu', '--out', run,
                '--set', f'data.root={synth}', '--set', 'data.preset=tiny', '--set', 'data.batch_size=8',
                '--set', 'train.max_steps_per_epoch=2', '--no-progress')
    assert r.returncode == 0, r.stderr
    assert 'run folder:' in r.stdout and 'HTER%' in r.stdout and 'test-eer' in r.stdout
    for f in ('config.json', 'log.csv', 'metrics.json', 'checkpoints/last.pt', 'checkpoints/best.pt',
              'figures/training.png', 'results-p1-CPS-W.json', 'figures/roc-p1-CPS-W.png'):
        assert (run/f).exists(), f
    # the same folder again: the run is complete, nothing is retrained
    r = run_cli('train', '--protocol', 'p1', '--target', 'W', '--epochs', '1', '--device', 'cpu', '--out', run,
                '--set', f'data.root={synth}', '--set', 'data.preset=tiny', '--set', 'data.batch_size=8',
                '--set', 'train.max_steps_per_epoch=2', '--no-progress', '--no-eval')
    assert r.returncode == 0 and 'already complete' in r.stdout, r.stdout + r.stderr
    # another config into the same folder is refused
    r = run_cli('train', '--epochs', '2', '--device', 'cpu', '--out', run, '--set', f'data.root={synth}',
                '--set', 'data.preset=tiny', '--set', 'data.batch_size=8', '--set', 'train.max_steps_per_epoch=2')
    assert r.returncode == 2 and 'holds a run with another config' in r.stderr and _one_line(r.stderr), r.stderr
    # the checkpoint, read as if it were made for the 224 px tiny CLIP
    r = run_cli('eval', '--checkpoint', run/'checkpoints'/'best.pt', '--set', 'backbone.name=mmdg-tiny-224', '--device', 'cpu')
    assert r.returncode == 2 and 'does not fit this model' in r.stderr and _one_line(r.stderr), r.stderr
    # the README's Protocol 2 example: a p1 run tested with depth missing is the p2 task, recorded as such
    r = run_cli('eval', '--run', run, '--missing', 'depth', '--no-figures', '--device', 'cpu', '--no-progress')
    assert r.returncode == 0, r.stderr
    res = json.loads((run/'results-p2-CPS-W-depth.json').read_text())
    assert (res['protocol'], res['task'], res['missing']) == ('p2', 'p2-CPS-W-depth', ['depth'])
    # a task that does not exist fails before any model is built (the builder is never called)
    from mmdgpp.core import MMDGError
    from mmdgpp.eval.evaluate import evaluate
    def must_not_build(cfg, device): raise AssertionError('a model was built before the task was checked')
    for kw, msg in ((dict(protocol='p3'), "protocol p3 has no target 'W'"), (dict(missing='rgb'), 'RGB is always present')):
        with pytest.raises(MMDGError, match=msg): evaluate(run, build=must_not_build, figures=False, **kw)
    # protocol 2 without --missing evaluates the three missing-modality settings
    r = run_cli('eval', '--run', run, '--protocol', 'p2', '--no-figures', '--device', 'cpu', '--no-progress')
    assert r.returncode == 0, r.stderr
    got = sorted(p.name for p in run.glob('results-p2-*.json'))
    assert got == ['results-p2-CPS-W-depth+ir.json', 'results-p2-CPS-W-depth.json', 'results-p2-CPS-W-ir.json'], got
    assert json.loads((run/'results-p2-CPS-W-ir.json').read_text())['missing'] == ['ir']


def test_quickstart_smoke(synth, tmp_path):
    r = run_cli('quickstart', '--device', 'cpu', '--out', tmp_path, '--no-progress', '--set', 'data.preset=tiny',
                '--set', 'train.epochs=1', '--set', 'train.max_steps_per_epoch=2', '--set', 'data.batch_size=8')
    assert r.returncode == 0, r.stderr
    for s in ('HTER% val-EER', 'HTER% test-EER', 'AUC%', 'MMDG++', 'ERM', 'report:', 'figures:'):
        assert s in r.stdout, s
    rep = json.loads((tmp_path/'quickstart.json').read_text())
    assert sorted(rep['models']) == ['erm', 'mmdgpp'] and rep['task'] == 'p1-CPS-W'
    assert rep['config']['data']['root'] == synth


def test_missing_modalities_on_an_all_modality_run_mean_protocol_2():
    "eval_config: --missing on a p1 run selects the protocol that tests the same task with modalities missing."
    from mmdgpp.config import ExperimentConfig, override
    from mmdgpp.eval.evaluate import eval_config
    from mmdgpp.train.trainer import check_task
    p1 = override(ExperimentConfig(), **{'data.protocol': 'p1', 'data.target': 'S'})
    e = eval_config(p1, missing='ir')
    assert (e.data.protocol, e.data.target, e.data.missing) == ('p2', 'S', 'ir')
    assert check_task(e).sources == ('C', 'P', 'W') and check_task(e).missing_test == ('ir',)
    e = eval_config(p1)                                            # no --missing: the run's own task
    assert (e.data.protocol, e.data.missing) == ('p1', '')
    # a protocol with no missing-modality twin (p3) keeps its name, and the task check says why it fails
    p3 = override(ExperimentConfig(), **{'data.protocol': 'p3', 'data.target': 'PS'})
    e = eval_config(p3, missing='depth')
    assert e.data.protocol == 'p3'
    with pytest.raises(Exception, match='protocol p3 tests with all modalities'): check_task(e)
    # a table where the twin has other sources for the target is not a twin
    ps = {'a': {'tasks': {'W': {'sources': ['C', 'P', 'S'], 'targets': ['W']}}},
          'b': {'missing': ['depth'], 'tasks': {'W': {'sources': ['C', 'P'], 'targets': ['W']}}}}
    assert eval_config(override(ExperimentConfig(), **{'data.protocol': 'a', 'data.target': 'W'}), missing='depth',
                       protocols=ps).data.protocol == 'a'


def test_settings_file_named_by_the_environment_must_exist(tmp_path):
    r = run_cli('info', env={'MMDGPP_SETTINGS': str(tmp_path/'nowhere.ini')})
    assert r.returncode == 2 and _one_line(r.stderr), r.stderr
    assert r.stderr.strip() == f'error: MMDGPP_SETTINGS names a settings file that does not exist: {tmp_path/"nowhere.ini"}'


def test_version_and_info_report_the_environment(tmp_path):
    import open_clip, mmdgpp
    r = run_cli('--version')
    assert r.returncode == 0 and r.stdout.strip() == f'mmdgpp {mmdgpp.__version__}'
    (tmp_path/'s.ini').write_text('[mmdgpp]\ndevice = auto   # resolved by info\nruns_dir = out\n')
    r = run_cli('info', cwd=tmp_path, env={'MMDGPP_SETTINGS': str(tmp_path/'s.ini'), 'MMDGPP_BACKBONE': 'mmdg-tiny-64'})
    assert r.returncode == 0, r.stderr
    want = torch.__version__, open_clip.__version__, mmdgpp.__version__
    assert all(v in r.stdout.splitlines()[0] for v in want), r.stdout
    assert f'settings file: {tmp_path/"s.ini"} (from MMDGPP_SETTINGS)' in r.stdout
    assert 'MMDGPP_BACKBONE=mmdg-tiny-64' in r.stdout
    assert f'device:        auto -> {"cuda" if torch.cuda.is_available() else "cpu"}' in r.stdout
    assert f'runs_dir     {tmp_path/"out"}' in r.stdout
    # no settings file anywhere above the working folder: the built-in defaults, said so
    r = run_cli('info', cwd='/', env={'MMDGPP_SETTINGS': ''})
    assert r.returncode == 0 and 'settings file: none found (built-in defaults)' in r.stdout, r.stdout + r.stderr
