"`.ci/run`: pytest's progress shows as it comes, its summary line is last, make's trailer lines are dropped."
import os, select, subprocess, time
from conftest import ROOT


def test_progress_is_not_held_back(tmp_path):
    "A stand-in `make` prints dots without a newline, waits, then a summary and make's error trailer."
    (tmp_path/'make').write_text('#!/bin/sh\n[ "$1" = install ] && exit 0\nprintf ..\nsleep 4\n'
                                 'printf ".\\n1 failed, 2 passed in 4.00s\\n"\n'
                                 'echo "make: *** [Makefile:9: test-pytest] Error 1" >&2\n'
                                 'echo "make: Target \'test\' not remade because of errors." >&2\nexit 2\n')
    (tmp_path/'make').chmod(0o755)
    (tmp_path/'chromium').write_text('#!/bin/sh\n'); (tmp_path/'chromium').chmod(0o755)   # installed: nothing to install
    p = subprocess.Popen([str(ROOT/'.ci'/'run')], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         env=dict(os.environ, PATH=f'{tmp_path}:{os.environ["PATH"]}'))
    t0, first = time.time(), b''
    while not first and time.time() - t0 < 3.5:
        if select.select([p.stdout], [], [], 0.1)[0]: first = os.read(p.stdout.fileno(), 100)
    rest = p.stdout.read(); p.wait()
    assert first.startswith(b'..'), (first, time.time() - t0)          # before the stand-in's 4 s pause ends
    lines = (first + rest).decode().splitlines()
    assert p.returncode == 2 and lines[-1] == '1 failed, 2 passed in 4.00s' and not any('***' in l for l in lines), lines
