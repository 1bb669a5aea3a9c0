"An interrupted training run, resumed from last.pt, ends with exactly the numbers of an uninterrupted run."
import csv, json
import pytest, torch
from mmdgpp.config import from_dict
from mmdgpp.data.synth import default_synth_dir, ensure_synth
from mmdgpp.train.trainer import train, read_checkpoint
from mmdgpp.eval.evaluate import evaluate

# tiny synthetic preset, tiny CLIP, MMDG++ with ReGrad: 2 epochs of 3 steps, last.pt also every 2 steps
CFG = {'model': 'mmdgpp', 'data.preset': 'tiny', 'train.epochs': 2, 'train.max_steps_per_epoch': 3,
       'data.batch_size': 8, 'train.device': 'cpu', 'train.checkpoint_every': 2, 'train.seed': 7}


class Interrupted(Exception): pass


@pytest.fixture(scope='module')
def cfg():
    return from_dict({**CFG, 'data.root': str(ensure_synth('tiny', 0, default_synth_dir('tiny', 0)))})


def _log(run):
    return [{k: v for k, v in r.items() if k != 'seconds'} for r in csv.DictReader(open(run/'log.csv'))]


def _weights(path):
    return read_checkpoint(path)['model']


def test_resume_mid_epoch_gives_identical_results(cfg, tmp_path):
    full = train(cfg, tmp_path/'full', verbose=False, progress=False)

    def stop(info):
        if info['step'] == 5: raise Interrupted   # epoch 2, batch 2; last.pt was written after step 4
    with pytest.raises(Interrupted):
        train(cfg, tmp_path/'cut', verbose=False, progress=False, on_step=stop)
    st = read_checkpoint(tmp_path/'cut'/'checkpoints'/'last.pt')['state']
    assert (st['epoch'], st['batch'], st['step']) == (1, 1, 4)        # in the middle of the second epoch
    assert not (tmp_path/'cut'/'metrics.json').read_text().count('"complete"')

    cut = train(cfg, tmp_path/'cut', verbose=False, progress=False)
    a, b = (json.loads((r/'metrics.json').read_text()) for r in (full, cut))
    assert b['status'] == 'complete' and b['steps'] == a['steps'] == 6
    for k in ('best_epoch', 'best_value', 'best_val', 'last_val', 'regrad'):
        assert a[k] == b[k], k
    assert a['regrad'] is True
    assert _log(full) == _log(cut)                                     # every loss term, ReGrad diagnostic, val metric
    for name in ('last.pt', 'best.pt'):
        wa, wb = _weights(full/'checkpoints'/name), _weights(cut/'checkpoints'/name)
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), name
    ra, rb = (evaluate(r, figures=False, verbose=False, progress=False) for r in (full, cut))
    assert ra['metrics'] == rb['metrics']                              # the final metrics on the target
