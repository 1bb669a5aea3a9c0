"benchmark/speed/regrad_step.py runs and prints its figures (a smoke run, not a timing test)."
import re, subprocess, sys
from conftest import ROOT


def test_regrad_step_script_prints_ratio_and_share():
    r = subprocess.run([sys.executable, str(ROOT/'benchmark/speed/regrad_step.py'), '--toy', '--steps', '2', '--warmup', '1',
                        '--threads', '1'], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert re.search(r'^ratio: \d+\.\d\d$', r.stdout, re.M), r.stdout
    assert re.search(r'^modulation share: \d+\.\d%$', r.stdout, re.M), r.stdout
