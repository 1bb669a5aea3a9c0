"""Messages go through `logging` (the `mmdgpp` loggers), not bare `print`: `--quiet` / `--verbose` set their level, and
the ablation driver without a progress bar (`--no-progress`, the SLURM recipe) prints its plan, the batch folder and
one line per finished run."""
import ast, logging
from pathlib import Path
import pytest
from conftest import ROOT

GRID = ROOT/'ablations'/'grids'/'quick.yaml'

# The only `print` calls left in the package: a command's own output (what `info` reports, `ablate --list`, which is
# piped into other tools, the interrupt notice), the command line's `error: ...` line, a table a notebook asks for,
# the documentation builder (a developer tool) and the pretraining script.
ALLOWED = {('cli.py', 'run'), ('cli.py', 'main'), ('ablate/cli.py', 'cli_ablate'), ('ablate/cli.py', '_cli_run'),
           ('interpret/probe.py', 'print_probe_table'), ('models/pretrain.py', 'run'),
           ('data/check.py', 'run'), ('data/check.py', 'update'), ('eval/predict.py', 'run'),   # `data check`'s table and progress lines, `predict`'s CSV / JSON
           ('data/convert.py', 'run'),   # `data convert`'s report: frames written, kept, missing
           ('models/pretrain.py', '_say')}   # pretraining progress lines off a terminal
ALLOWED_MODULES = {'docs.py', 'docsite.py'}   # the documentation builder and its mkdocs hooks (developer tools)


def _print_sites():
    "(module path, enclosing function) of every `print(...)` call in the package."
    for f in sorted((ROOT/'mmdgpp').rglob('*.py')):
        tree = ast.parse(f.read_text())
        stack = []
        def visit(node):
            named = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            if named: stack.append(node.name)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == 'print':
                yield str(f.relative_to(ROOT/'mmdgpp')), (stack[-1] if stack else '<module>')
            for ch in ast.iter_child_nodes(node): yield from visit(ch)
            if named: stack.pop()
        yield from visit(tree)


def test_library_reports_through_logging():
    bad = sorted({s for s in _print_sites() if s not in ALLOWED and s[0] not in ALLOWED_MODULES})
    assert not bad, f'bare print in the library (use logging.getLogger(...)): {bad}'


@pytest.fixture
def fake_runs(monkeypatch):
    "execute_run replaced by a stand-in (no papermill): the first run succeeds, the second fails."
    import mmdgpp.ablate.runner as R, mmdgpp.ablate.cli as C
    seen = []
    def execute_run(template, run_dir, params, *a, **k):
        seen.append(Path(run_dir).name)
        return dict(status='ok', seconds=2.0) if len(seen) == 1 else dict(status='failed', seconds=1.0, error='ValueError',
                                                                          message='a deliberate failure')
    monkeypatch.setattr(R, 'execute_run', execute_run)          # what run_batch calls
    monkeypatch.setattr(C, 'run_summary', lambda *a, **k: 'skipped')  # what the command line calls
    return seen


def _main(capsys, *args):
    from mmdgpp.cli import main
    from mmdgpp.core import set_verbosity
    try: code = main([str(a) for a in args])
    finally: set_verbosity()
    out = capsys.readouterr()
    return code, out.out, out.err


def test_ablate_without_progress_prints_plan_and_one_line_per_run(fake_runs, capsys, tmp_path):
    code, out, err = _main(capsys, 'ablate', GRID, '--out', tmp_path/'b', '--shard', '0/8', '--no-progress')
    assert len(fake_runs) == 2, (code, fake_runs, out, err)
    lines = out.splitlines()
    assert lines[0] == f'quick: 2 runs (shard 0/8), 0 already done, 2 to run with 1 job(s); batch folder: {tmp_path/"b"}'
    assert lines[1:3] == [f'  planned: {n}' for n in fake_runs]
    assert lines[3] == f'[1/2] ok {fake_runs[0]} (2 s)'
    assert lines[4] == f'[2/2] failed {fake_runs[1]} (1 s): ValueError: a deliberate failure'
    assert err == ''                                                               # no progress bar on stderr either


def test_quiet_and_verbose(fake_runs, capsys, tmp_path):
    code, out, err = _main(capsys, '--quiet', 'ablate', GRID, '--out', tmp_path/'b', '--shard', '0/8', '--no-progress')
    assert len(fake_runs) == 2 and out == '' and err == '', (out, err)
    # the flags are also accepted after the command; -v turns on debug messages
    from mmdgpp.cli import build_parser
    a = build_parser('ablate').parse_args(['ablate', str(GRID), '-v'])
    assert (a.quiet, a.verbose) == (False, True)
    from mmdgpp.core import set_verbosity
    try: assert set_verbosity(verbose=True) == logging.DEBUG and logging.getLogger('mmdgpp.ablate').isEnabledFor(logging.DEBUG)
    finally: set_verbosity()
    with pytest.raises(SystemExit): build_parser('ablate').parse_args(['ablate', str(GRID), '-q', '-v'])
