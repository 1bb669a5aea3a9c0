"""A non-editable install works: a wheel built from the package's sources, installed into a fresh virtual
environment that reuses this environment's packages (torch, open_clip, ...), runs `mmdgpp` from a folder
outside the repository. Everything the package reads at run time must ship inside the wheel."""
import os, subprocess, sys, sysconfig, zipfile
from pathlib import Path
import pytest
from conftest import ROOT

SMOKE = ['--epochs', '1', '--device', 'cpu', '--no-progress', '--set', 'data.preset=tiny', '--set', 'data.max_per_split=16',
         '--set', 'data.batch_size=8', '--set', 'train.max_steps_per_epoch=1']


def _run(*cmd, cwd, env=None, timeout=300):
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f'{cmd}:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}'
    return r


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    "(temporary folder, the new environment's bin folder, the wheel) after building and installing the wheel."
    import shutil
    tmp = tmp_path_factory.mktemp('pkg')
    src = tmp/'src'                           # a copy of what a source distribution holds: the build never touches the tree
    shutil.copytree(ROOT/'mmdgpp', src/'mmdgpp', ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
    for f in ('pyproject.toml', 'README.md'): shutil.copy(ROOT/f, src/f)
    _run(sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', '--no-index', '-w', tmp/'dist', src, cwd=tmp)
    wheel = next((tmp/'dist').glob('mmdgpp-*.whl'))
    venv = tmp/'venv'
    _run(sys.executable, '-m', 'venv', '--without-pip', venv, cwd=tmp)
    py = venv/'bin'/'python'
    site = _run(py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])', cwd=tmp).stdout.strip()
    # This environment's packages, appended to the new one's path. A plain folder line in a .pth file does not run
    # the .pth files inside that folder, so the editable install of mmdgpp (a .pth hook) stays invisible.
    Path(site, 'reuse-test-env.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')
    _run(py, '-m', 'pip', 'install', '-q', '--no-deps', '--no-build-isolation', '--no-index', wheel, cwd=tmp)
    return tmp, venv/'bin', wheel


def _env():
    "The environment without MMDGPP_* settings, offline."
    e = {k: v for k, v in os.environ.items() if not k.startswith('MMDGPP_')}
    return dict(e, HF_HUB_OFFLINE='1', MPLBACKEND='Agg', OMP_NUM_THREADS='1')


def test_wheel_holds_the_run_time_files(installed):
    _, _, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ('mmdgpp/protocols.yaml', 'mmdgpp/model_configs/mmdg-tiny-64.json', 'mmdgpp/model_configs/mmdg-tiny-224.json',
              'mmdgpp/cli.py', 'mmdgpp/train/trainer.py'):
        assert f in names, f
    # every non-Python file inside the package folder of the tree is in the wheel (nothing read at run time is left out)
    data = {str(p.relative_to(ROOT)) for p in (ROOT/'mmdgpp').rglob('*')
            if p.is_file() and p.suffix not in ('.py', '.pyc') and '__pycache__' not in p.parts}
    assert data <= names, sorted(data - names)


def test_installed_package_runs_outside_the_repository(installed, tmp_path):
    tmp, bin, _ = installed
    from mmdgpp.data.synth import default_synth_dir, ensure_synth
    synth = ensure_synth('tiny', 0, default_synth_dir('tiny', 0))        # made with this environment, read by the wheel
    work = tmp_path/'work'; work.mkdir()
    env = _env()
    where = _run(bin/'python', '-c', 'import mmdgpp; print(mmdgpp.__file__)', cwd=work, env=env).stdout.strip()
    assert Path(where).is_relative_to(bin.parent) and not Path(where).is_relative_to(ROOT), where
    import mmdgpp
    assert _run(bin/'mmdgpp', '--version', cwd=work, env=env).stdout.strip() == f'mmdgpp {mmdgpp.__version__}'
    r = _run(bin/'mmdgpp', 'info', cwd=work, env=env)
    assert 'settings file: none found (built-in defaults)' in r.stdout and 'mmdg-tiny-64' in r.stdout, r.stdout
    assert 'runs_dir     runs' in r.stdout                       # relative defaults: the working folder, not the package
    r = _run(bin/'mmdgpp', 'train', '--protocol', 'p1', '--target', 'W', '--out', work/'run', '--set', f'data.root={synth}',
             *SMOKE, cwd=work, env=env)
    assert 'HTER%' in r.stdout, r.stdout
    for f in ('config.json', 'metrics.json', 'checkpoints/best.pt', 'results-p1-CPS-W.json'):
        assert (work/'run'/f).is_file(), f
    assert not (ROOT/'runs'/'run').exists()
