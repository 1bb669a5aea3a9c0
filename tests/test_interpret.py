"""The interpretation modules outside a notebook kernel: light imports, widgets built and driven from plain Python."""
import json, subprocess, sys
import numpy as np
import pytest
from conftest import ROOT


def test_imports_stay_light():
    "Importing the modules must not pull in captum, ipywidgets, matplotlib, sklearn or scipy (they load inside functions)."
    code = ('import sys, json, mmdgpp.interpret.attributions, mmdgpp.interpret.widgets; '
            'print(json.dumps([m for m in ("captum", "ipywidgets", "matplotlib", "sklearn", "scipy") if m in sys.modules]))')
    out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def _steps(n=5):
    mods = ('rgb', 'depth', 'ir')
    return [dict(step=k + 1, epoch=1 + k // 3, **{f'regrad_fast_{m}': float(m == mods[k % 3]) for m in mods},
                 **{f'regrad_momentum_{m}': 1.0 / (k + 1) + i for i, m in enumerate(mods)},
                 **{f'regrad_certainty_{m}': 0.1 for m in mods}, **{f'regrad_norm_{m}': 1.0 + k for m in mods},
                 regrad_norm_before=3.0 + k, regrad_norm_after=2.0 + k, regrad_norm_fused=0.5,
                 **{'regrad_cos_rgb-depth': 0.1 * k, 'regrad_cos_rgb-ir': -0.1 * k, 'regrad_cos_depth-ir': 0.0})
            for k in range(n)]


def test_regrad_explorer_headless():
    "Outside a kernel: the box is built, the slider moves the state and the picture, the trace follows the steps."
    from mmdgpp.interpret.widgets import regrad_explorer
    steps = _steps()
    box = regrad_explorer(steps)
    first = box.children[-1].value
    assert first[:4] == b'\x89PNG'
    assert (box.controls['step'].min, box.controls['step'].max) == (1, len(steps))   # 1-based, like the steps
    for i, s in enumerate(steps):
        box.controls['step'].value = i + 1
        assert box.state['step'] == s['step'] == box.controls['step'].value
        assert box.state['fast'] == ('rgb', 'depth', 'ir')[i % 3]
        assert box.state['norm_before'] == s['regrad_norm_before']
        assert box.state['cos']['rgb-ir'] == pytest.approx(-0.1 * i)
    assert box.children[-1].value != first
    assert box.controls['play'].max == len(steps)
    assert f"<b>step {len(steps)}</b> ({len(steps)} of {len(steps)}" in box.children[1].value


def test_regrad_explorer_refuses_runs_without_regrad():
    from mmdgpp.core import MMDGError
    from mmdgpp.interpret.widgets import regrad_explorer
    with pytest.raises(MMDGError, match='no ReGrad diagnostics'):
        regrad_explorer([dict(step=1, epoch=1, loss_fused=0.7)])
