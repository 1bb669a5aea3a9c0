"One thread policy: `train`, `evaluate`, the commands and `info` apply the `threads` setting or `--threads`."
import pytest, torch
from mmdgpp.config import from_dict
from mmdgpp.data.synth import default_synth_dir, ensure_synth
from mmdgpp.train.trainer import train
import mmdgpp.eval.evaluate as ev

CFG = {'model': 'erm', 'data.preset': 'tiny', 'train.epochs': 1, 'train.max_steps_per_epoch': 2,
       'data.batch_size': 8, 'train.device': 'cpu'}


@pytest.fixture(scope='module')
def cfg():
    return from_dict({**CFG, 'data.root': str(ensure_synth('tiny', 0, default_synth_dir('tiny', 0)))})


def test_train_and_evaluate_run_under_the_policy_and_restore_torch(cfg, tmp_path, monkeypatch):
    before, seen = torch.get_num_threads(), []
    run = train(cfg, tmp_path/'a', verbose=False, progress=False, threads=3,
                on_step=lambda info: seen.append(torch.get_num_threads()))
    assert seen == [3, 3] and torch.get_num_threads() == before
    monkeypatch.setenv('MMDGPP_THREADS', '2')                  # the setting, where no argument is given
    seen.clear()
    train(cfg, tmp_path/'b', verbose=False, progress=False, on_step=lambda info: seen.append(torch.get_num_threads()))
    assert seen == [2, 2] and torch.get_num_threads() == before
    predict, during = ev.predict, []
    def counting(*a, **k):
        during.append(torch.get_num_threads()); return predict(*a, **k)
    monkeypatch.setattr(ev, 'predict', counting)
    ev.evaluate(run, figures=False, verbose=False, progress=False, threads=3)
    ev.evaluate(run, figures=False, verbose=False, progress=False)
    assert during == [3, 3, 2, 2] and torch.get_num_threads() == before


def test_the_four_commands_share_the_flag():
    from mmdgpp.cli import build_parser
    sub = next(a for a in build_parser()._actions if a.dest == 'command')
    for name in ('train', 'eval', 'quickstart', 'ablate'):
        assert '--threads' in sub.choices[name]._option_string_actions, name


def test_a_bad_value_is_one_line_and_info_reports_the_policy(cli):
    r = cli('train', '--threads', 'two', '--epochs', '1')
    assert r.returncode == 2 and r.stderr.strip() == (
        'error: threads must be auto, torch or a positive integer, got "two" (--threads, or threads in settings.ini / MMDGPP_THREADS)')
    r = cli('info', env={'MMDGPP_THREADS': '3'})
    assert r.returncode == 0, r.stderr
    assert 'threads:       3 -> 3 on ' in r.stdout
