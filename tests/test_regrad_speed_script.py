"benchmark/speed/regrad_step.py runs and prints its figures (a smoke run, not a timing test)."
import re, subprocess, sys
from conftest import ROOT


def test_regrad_step_script_prints_ratio_and_share():
    r = subprocess.run([sys.executable, str(ROOT/'benchmark/speed/regrad_step.py'), '--toy', '--steps', '2', '--warmup', '1',
                        '--threads', '1'], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert re.search(r'^ratio: \d+\.\d\d$', r.stdout, re.M), r.stdout
    assert re.search(r'^modulation share: \d+\.\d%$', r.stdout, re.M), r.stdout


def test_regrad_step_script_times_both_gradient_modes_side_by_side(capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location('regrad_step', ROOT/'benchmark/speed/regrad_step.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    res = mod.main(['--toy', '--steps', '1', '--warmup', '0', '--threads', '1', '--vjp', 'sequential,batched'])
    out = capsys.readouterr().out
    for v in ('sequential', 'batched'):
        r = float(re.search(rf'^ratio\[{v}\]: (\d+\.\d\d)$', out, re.M)[1])
        assert abs(r - res[v]['regrad'] / res['plain']) <= 0.005 + 1e-9       # ratio = ReGrad time / plain time
        assert re.search(rf'^modulation share\[{v}\]: \d+\.\d%$', out, re.M), out
    assert mod.main(['--vjp', 'vmap']) == 2
    assert capsys.readouterr().err.startswith("error: --vjp takes sequential and/or batched, got 'vmap'")
