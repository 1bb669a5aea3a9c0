"An ablation batch stopped by Ctrl-C or a cluster's SIGTERM: it stops at once, cleans up and says how to resume."
import os, signal, subprocess, time
from pathlib import Path
import pandas as pd
import pytest
from conftest import ROOT, BIN
from mmdgpp.ablate import write_toy_template


def _grid(d: Path, axes: str, sleep: float = 0) -> Path:
    write_toy_template(d/'toy.ipynb')
    (d/'grid.yaml').write_text(f'template: toy.ipynb\ntimeout: 600\nbase: {{SLEEP: {sleep}}}\naxes:\n{axes}')
    return d/'grid.yaml'


def _tree(pid):
    import psutil
    try: return {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess: return set()


def _alive(pid):
    try: return Path(f'/proc/{pid}/stat').read_text().split(')')[-1].split()[0] != 'Z'
    except OSError: return False


def _running(batch: Path) -> list:
    return [p for p in batch.glob('*/status.json') if '"running"' in p.read_text()]


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_a_parallel_batch(tmp_path, sig):
    g, batch = _grid(tmp_path, '  A: [x, y, z]\n  B: [1, 2]\n', sleep=120), tmp_path/'batch'
    drv = subprocess.Popen([str(BIN/'mmdgpp'), 'ablate', str(g), '--out', str(batch), '--no-progress', '--jobs', '2'],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True, env=dict(os.environ, OMP_NUM_THREADS='1'),
                           # as a shell starts a background job (`make test &` in a script, a CI runner): SIGINT ignored,
                           # a disposition the driver inherits; it must stop on the signal all the same
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    t0, kids = time.time(), set()
    while len(_running(batch)) < 2 or len(kids) < 4 or time.time() - t0 < 3:   # two workers, two kernels at work
        assert drv.poll() is None, drv.communicate()
        assert time.time() - t0 < 240, 'the runs did not start'
        kids |= _tree(drv.pid); time.sleep(0.1)
    time.sleep(1); kids |= _tree(drv.pid)
    started = {p.parent.name for p in batch.glob('*/status.json')}
    os.killpg(drv.pid, sig)                                   # as a terminal (Ctrl-C) or a cluster's scheduler does
    t1 = time.time()
    try: out, err = drv.communicate(timeout=30)
    finally:
        if drv.poll() is None: os.killpg(drv.pid, signal.SIGKILL); drv.wait()
    took = time.time() - t1
    assert drv.returncode == 130 and took < 10, (drv.returncode, took, err[-3000:])
    assert 'Traceback' not in err and 'Error' not in err, err[-3000:]
    lines = [l for l in err.splitlines() if l.strip()]
    said = f'interrupted: 0 of 6 runs done, table {batch/"results.csv"}; to resume, run the same command again'
    assert lines[-1] == said and sum('interrupted' in l for l in lines) == 1, err[-3000:]
    time.sleep(1)
    assert not [k for k in kids if _alive(k)], 'workers or kernels outlived the interrupt'
    assert {p.parent.name for p in batch.glob('*/status.json')} == started      # no run was started afterwards
    df = pd.read_csv(batch/'results.csv')
    assert len(df) == 6 and sorted(df.status) == ['incomplete'] * len(started) + ['pending'] * (6 - len(started))


def test_list_into_a_closed_pipe_is_quiet(tmp_path):
    g = _grid(tmp_path, '  A: [x, y, z]\n  B: [' + ', '.join(map(str, range(1500))) + ']\n')
    p = subprocess.Popen([str(BIN/'mmdgpp'), 'ablate', str(g), '--out', str(tmp_path/'b'), '--list'], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = p.stdout.readline(); p.stdout.close()             # `| head -1`
    err = p.stderr.read().decode(); p.wait()
    assert first.decode().startswith('pending ') and p.returncode == 0 and err == '', err[-2000:]
