"""The README's own examples work: every ```ini block parses into valid settings, every command of every ```bash
block runs (in a cheap form: `make -n`, `ablate --list`, a one-step synthetic run for `eval`, the real data path up
to the missing images for `train --data real`), and every inline `mmdgpp ...` snippet parses. A command the test
does not know how to run fails the test, so the README cannot drift from the code."""
import os, re, shlex, subprocess
from pathlib import Path
import pytest
import torch
from conftest import ROOT, BIN, SPLIT_LISTS, run_cli

README = (ROOT/'README.md').read_text()
BLOCKS = re.findall(r'^```(\w+)\n(.*?)^```', README, flags=re.M | re.S)
INI = [b for lang, b in BLOCKS if lang == 'ini']
COMMANDS = [c for lang, b in BLOCKS if lang == 'bash' for c in
            (shlex.split(l, comments=True) for l in b.splitlines()) if c]
SMOKE = ['--epochs', '1', '--device', 'cpu', '--no-progress', '--set', 'data.preset=tiny', '--set', 'data.max_per_split=16',
         '--set', 'data.batch_size=8', '--set', 'train.max_steps_per_epoch=1']


def test_readme_has_examples():
    assert INI and len(COMMANDS) >= 5, (len(INI), COMMANDS)


@pytest.mark.parametrize('block', INI)
def test_ini_block_parses_into_valid_settings(block, tmp_path, monkeypatch):
    from mmdgpp.core import load_settings, SETTINGS_DEFAULTS, MMDGError
    from mmdgpp.models.backbone import check_weights
    for k in SETTINGS_DEFAULTS: monkeypatch.delenv(f'MMDGPP_{k.upper()}', raising=False)
    (tmp_path/'settings.ini').write_text(block)
    s = load_settings(tmp_path/'settings.ini')
    given = re.findall(r'^(\w+)\s*=', block, flags=re.M)
    assert given and set(given) <= set(SETTINGS_DEFAULTS)
    for k in given:                                   # comments are not part of any value
        assert '#' not in s[k] and ';' not in s[k] and s[k] == s[k].strip(), (k, s[k])
    assert re.fullmatch(r'auto|cpu|cuda(:\d+)?', s['device']), s['device']
    p = s['pretrained']
    if p.startswith(('/', '.', '~')): p = ''          # a checkpoint path on the reader's machine: the architecture only
    try: check_weights(s['backbone'], p)              # architecture known, tag known for it
    except MMDGError as e: assert 'are not on this machine' in str(e), str(e)   # a known tag, offline here


def _mmdgpp_argv(cmd):
    "The argument list after `mmdgpp` for `.venv/bin/mmdgpp ...`, `mmdgpp ...` or `torchrun ... -m mmdgpp.cli ...`."
    if Path(cmd[0]).name == 'mmdgpp': return cmd[1:]
    if cmd[0] == 'torchrun' and '-m' in cmd and cmd[cmd.index('-m') + 1] == 'mmdgpp.cli': return cmd[cmd.index('-m') + 2:]
    return None


def _parse(argv):
    "Parse `argv` with the real command-line parser (exits on an unknown flag or a bad choice)."
    from mmdgpp.cli import build_parser
    return build_parser(argv[0]).parse_args(argv)


def _run_command(cmd, tmp_path):
    "Run one README command in its cheap form; return a description of what was checked."
    env = {'MMDGPP_RUNS_DIR': str(tmp_path/'runs')}
    if cmd[0] == 'make':
        target, assigns = cmd[1], cmd[2:]                 # `make install TORCH="..."`: a target and variables
        assert all(re.fullmatch(r'[A-Z_]+=.+', a) for a in assigns), cmd
        r = subprocess.run(['make', '-n', *(['-B'] if assigns else []), target, *assigns], cwd=ROOT, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        for a in assigns: assert a.split('=', 1)[1] in r.stdout, (a, r.stdout)   # the value reaches the recipe's commands
        return 'make target exists'
    argv = _mmdgpp_argv(cmd)
    assert argv is not None, f'README command the test does not know how to run: {shlex.join(cmd)}'
    a = _parse(argv)
    if a.command == 'info':
        r = run_cli(*argv, env=env)
        assert r.returncode == 0 and 'settings file:' in r.stdout, r.stderr
        return 'ran'
    if a.command == 'ablate':
        r = run_cli(*argv, '--list', env=env)
        assert r.returncode == 0, r.stderr
        return 'listed'
    if a.command == 'eval':
        # a one-step synthetic run where the README's command looks for it, then the command itself
        from mmdgpp.data.synth import default_synth_dir, ensure_synth
        synth = ensure_synth('tiny', 0, default_synth_dir('tiny', 0))
        run = tmp_path/a.run
        r = run_cli('train', '--out', run, '--no-eval', '--set', f'data.root={synth}', *SMOKE, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        r = run_cli(*argv, '--no-progress', '--no-figures', cwd=tmp_path, env=env)
        assert r.returncode == 0, r.stderr
        assert list(run.glob('results-*.json')), list(run.iterdir())
        return 'ran on a one-step synthetic run'
    if a.command == 'train' and a.data == 'real':
        # the real-data path as far as a machine without the images goes: the task, the split lists, then one clear
        # error naming the missing images (with the released lists) or the missing list folder (without them)
        dev = [] if torch.cuda.is_available() else ['--device', 'cpu']
        lists = SPLIT_LISTS if SPLIT_LISTS and (SPLIT_LISTS/'C-train.txt').is_file() else tmp_path/'no-lists'
        r = run_cli(*argv, *dev, '--no-progress', cwd=tmp_path,
                    env=dict(env, MMDGPP_SPLIT_LISTS=str(lists), MMDGPP_DATA_ROOT=str(tmp_path/'no-images')))
        assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr
        want = 'samples have missing files under data root' if lists != tmp_path/'no-lists' else 'split-list folder not found'
        assert want in r.stderr, r.stderr
        return 'ran up to the missing images'
    raise AssertionError(f'README command the test does not know how to run: {shlex.join(cmd)}')


@pytest.mark.parametrize('cmd', COMMANDS, ids=[' '.join(c[:4]) for c in COMMANDS])
def test_bash_block_command_runs(cmd, tmp_path):
    _run_command(cmd, tmp_path)


def test_inline_commands_parse():
    "Every inline `mmdgpp ...` snippet (not a placeholder such as GRID or ...) uses flags the parser knows."
    snippets = [s for s in re.findall(r'`([^`\n]+)`', README) if _mmdgpp_argv(s.split() or ['-'])]
    checked = 0
    for s in snippets:
        if '...' in s or '$' in s: continue
        argv = _mmdgpp_argv(shlex.split(s))
        if not argv: continue
        _parse(argv); checked += 1
    assert checked >= 3, snippets


def test_readme_tells_the_newcomer_what_to_expect():
    "The HTER keys named by threshold, the time of `make test`, what the quickstart shows and where the evidence is."
    py = ''.join(b for lang, b in BLOCKS if lang == 'python')
    assert "['val-eer']['hter']" in py and 'headline' in py            # the example prints the headline HTER, named
    assert re.search(r'make test .*about \d+ min on 2 CPU cores', README)
    assert 'near chance' in README and 'ablations/summary.ipynb' in README and '`hter_val_eer`' in README and '`hter_test_eer`' in README


def test_one_quickstart_time_everywhere():
    "The quickstart's time is one figure, in the README and in `quickstart --help`."
    r = run_cli('quickstart', '--help')
    help_s = re.findall(r'About (\d+) s on two CPU cores', ' '.join(r.stdout.split()))
    readme_s = re.findall(r'takes about (\d+) s on two CPU', ' '.join(README.split()))
    assert help_s and help_s == readme_s, (help_s, readme_s)
    assert 'two minutes' not in ' '.join(r.stdout.split()) + README


def test_cpu_only_install_names_the_default_pair():
    "The CPU-only install is the Makefile's torch/torchvision pair as CPU wheels, with PyPI kept for everything else."
    pair = re.search(r'^TORCH\s*\?=\s*torch==(\S+) torchvision==(\S+)$', (ROOT/'Makefile').read_text(), re.M).groups()
    cpu = re.search(r'make install TORCH="torch==(\S+)\+cpu torchvision==(\S+)\+cpu '
                    r'--extra-index-url https://download\.pytorch\.org/whl/cpu"', README)
    assert cpu and cpu.groups() == pair, (pair, cpu and cpu.groups())
    assert not re.search(r'TORCH="[^"]* --index-url', README)   # would take every package of the install from the torch index
