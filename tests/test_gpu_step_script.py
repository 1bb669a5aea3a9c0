"benchmark/speed/gpu_step.py: refuses without a GPU, and its printed figures follow from its own measurements."
import importlib.util, json, re, statistics, subprocess, sys
import pytest, torch
from conftest import ROOT

SCRIPT = ROOT/'benchmark/speed/gpu_step.py'

def run(*args, timeout=600):
    "The script in a fresh process (to see exactly what a user sees)."
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=ROOT)

def main_in_process(capsys, *args):
    "The script's main() in this process (no second torch import): (exit code, stdout, stderr)."
    spec = importlib.util.spec_from_file_location('gpu_step', SCRIPT)
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    rc = mod.main([str(a) for a in args])
    o = capsys.readouterr()
    return rc, o.out, o.err


def test_refuses_the_cpu_without_allow_cpu(capsys):
    rc, out, err = main_in_process(capsys, '--device', 'cpu')
    assert rc == 2 and out == '' and err.startswith('error: ') and '--allow-cpu' in err, err


@pytest.mark.skipif(torch.cuda.is_available(), reason='this machine has a CUDA device')
def test_refuses_cuda_without_a_gpu():
    r = run()                                       # --device cuda is the default
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith('error: --device cuda: no CUDA device is available here'), r.stderr
    assert 'Traceback' not in r.stderr and r.stderr.count('\n') == 1, r.stderr


def test_bad_arguments_are_refused(capsys):
    for args, what in ((['--precisions', 'fp8'], '--precisions'), (['--vjp', 'vmap'], '--vjp'),
                       (['--device', 'tpu', '--allow-cpu'], "'tpu'"), (['--batch', '0'], '--batch')):
        rc, out, err = main_in_process(capsys, *args)
        assert rc == 2 and out == '' and err.startswith('error: ') and what in err, (args, err)


def test_printed_figures_follow_from_the_measurements(tmp_path, capsys):
    B, steps = 2, 3
    out = tmp_path/'res.json'
    rc, stdout, err = main_in_process(capsys, '--arch', 'mmdg-tiny-64', '--device', 'cpu', '--allow-cpu', '--batch', B, '--steps', steps, '--warmup', 1,
            '--precisions', 'fp32', '--vjp', 'sequential,batched', '--threads', 1, '--json', out)
    assert rc == 0, err
    res = json.loads(out.read_text())
    run_ = res['runs']['fp32']
    kinds = ['plain', 'regrad-sequential', 'regrad-batched', 'eval']
    assert sorted(run_['times']) == sorted(kinds)
    for k in kinds:
        ts = run_['times'][k]
        assert len(ts) == steps and all(t > 0 for t in ts)
        med = statistics.median(ts)
        m = re.search(rf'^fp32 {k}: ([\d.]+) ms/step, ([\d.]+) images/s, peak memory n/a \(cpu\)$', stdout, re.M)
        assert m, (k, stdout)
        assert abs(float(m[1]) - med * 1e3) <= 0.05 + 1e-9
        assert abs(float(m[2]) - B / med) <= 0.05 + 1e-9          # images/s = batch / step time
    plain = statistics.median(run_['times']['plain'])
    for v in ('sequential', 'batched'):
        reg = statistics.median(run_['times'][f'regrad-{v}'])
        ratio = float(re.search(rf'^fp32 ratio regrad-{v}/plain: ([\d.]+)$', stdout, re.M)[1])
        assert abs(ratio - reg / plain) <= 0.005 + 1e-9
        mods = run_['modulation'][v]
        assert len(mods) == steps and all(0 < x for x in mods)
        share = float(re.search(rf'^fp32 modulation share regrad-{v}: ([\d.]+)%$', stdout, re.M)[1])
        assert abs(share - 100 * statistics.median(mods) / reg) <= 0.05 + 1e-9
        assert 0 < share < 100
