"""The package's structure: the import graph of `mmdgpp` (every module, module-level and function-level imports alike)
has no cycle, no module is longer than 400 lines, and the public names re-exported from `mmdgpp` resolve to the
objects their modules define."""
import ast, os, subprocess, sys
from pathlib import Path
import pytest
from conftest import ROOT

PKG = ROOT/'mmdgpp'


def module_names(pkg: Path = PKG) -> dict:
    "{dotted module name: (file, is a package __init__)} for every .py file under `pkg`."
    out = {}
    for p in sorted(pkg.rglob('*.py')):
        parts = list(p.relative_to(pkg.parent).with_suffix('').parts)
        init = parts[-1] == '__init__'
        out['.'.join(parts[:-1] if init else parts)] = (p, init)
    return out


def imported_modules(path: Path, name: str, is_pkg: bool, known: set) -> set:
    "The modules of `known` that the file imports anywhere in its body (`import`, `from ... import`, relative forms)."
    here = name if is_pkg else name.rpartition('.')[0]
    deps = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import): cands = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split('.')[:len(here.split('.')) - (node.level - 1)]
                target = '.'.join(base + ([node.module] if node.module else []))
            else: target = node.module or ''
            cands = [target] + [f'{target}.{a.name}' for a in node.names]   # `from pkg import submodule`
        else: continue
        deps |= {c for c in cands if c in known and c != name}
    return deps


def import_graph(pkg: Path = PKG) -> dict:
    mods = module_names(pkg)
    return {m: imported_modules(p, m, init, set(mods)) for m, (p, init) in mods.items()}


def find_cycle(graph: dict) -> list|None:
    "One cycle of `graph` as [a, b, ..., a], or None (depth-first search, colours white/grey/black)."
    state, stack = {}, []
    def visit(m):
        state[m] = 'grey'; stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 'grey': return stack[stack.index(d):] + [d]
            if d not in state and (c := visit(d)): return c
        state[m] = 'black'; stack.pop()
        return None
    for m in sorted(graph):
        if m not in state and (c := visit(m)): return c
    return None


def test_find_cycle_finds_cycles():
    "The checker itself, on graphs whose answer is known."
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': set()}) is None
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b'}, 'b': {'a', 'c'}, 'c': set()}) == ['a', 'b', 'a']
    assert find_cycle({'x': {'y'}, 'y': set(), 'p': {'q'}, 'q': {'p'}}) == ['p', 'q', 'p']


def test_import_graph_reads_every_import_form(tmp_path):
    "Module-level and function-level, absolute and relative imports all count; other packages do not."
    pkg = tmp_path/'mmdgpp'; (pkg/'sub').mkdir(parents=True)
    (pkg/'__init__.py').write_text('')
    (pkg/'core.py').write_text('import os\n')
    (pkg/'sub'/'__init__.py').write_text('')
    (pkg/'sub'/'a.py').write_text('from ..core import x\ndef f():\n    from mmdgpp.sub.b import g\n')
    (pkg/'sub'/'b.py').write_text('from . import a\nimport mmdgpp.core\n')
    g = import_graph(pkg)
    assert g['mmdgpp.sub.a'] == {'mmdgpp.core', 'mmdgpp.sub.b'}
    assert g['mmdgpp.sub.b'] == {'mmdgpp.sub', 'mmdgpp.sub.a', 'mmdgpp.core'}
    assert find_cycle(g) == ['mmdgpp.sub.a', 'mmdgpp.sub.b', 'mmdgpp.sub.a']


def test_package_import_graph_has_no_cycle():
    g = import_graph()
    assert len(g) > 20 and 'mmdgpp.train.trainer' in g and 'mmdgpp.data.synth' in g
    cycle = find_cycle(g)
    assert cycle is None, 'import cycle: ' + ' -> '.join(cycle)



MAX_LINES = 400


def test_every_module_is_at_most_400_lines():
    "One concept per module: every module of the package (the generated index `_modidx.py` aside) has at most 400 lines."
    mods = [p for p, _ in module_names().values() if p.name != '_modidx.py']
    assert len(mods) > 20
    big = {str(p.relative_to(ROOT)): n for p in mods if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f'modules over {MAX_LINES} lines (give a concept its own notebook): {big}'


def test_import_mmdgpp_is_light():
    "`import mmdgpp` imports none of the package's modules, and not torch: the public names come on first use."
    code = "import sys, mmdgpp; print(sorted(m for m in sys.modules if m.startswith('mmdgpp.') or m == 'torch'))"
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip() == '[]', (r.stdout, r.stderr)


def test_public_names_are_the_modules_objects():
    import importlib, mmdgpp
    assert set(mmdgpp.__all__) == set(mmdgpp._API) and len(mmdgpp.__all__) >= 10
    for name, where in mmdgpp._API.items():
        mod, _, attr = where.partition(':')
        assert getattr(mmdgpp, name) is getattr(importlib.import_module(mod), attr or name), name
    from mmdgpp import train_model, evaluate, create_model, ExperimentConfig
    assert train_model.__module__ == 'mmdgpp.train.trainer' and evaluate.__module__ == 'mmdgpp.eval.evaluate'
    with pytest.raises(AttributeError, match="no attribute 'nope'"): mmdgpp.nope


def test_readme_python_example_runs(tmp_path):
    "The README's Python example, in a cheap form (tiny benchmark, one step), runs and prints the task and two metrics."
    import re
    from mmdgpp.core import load_settings
    blocks = re.findall(r'^```python\n(.*?)^```', (ROOT/'README.md').read_text(), flags=re.M | re.S)
    assert len(blocks) == 1, len(blocks)
    cheap = blocks[0]
    for old, new in [("ensure_synth('small', 0)", "ensure_synth('tiny', 0)"), ("'data.preset': 'small'", "'data.preset': 'tiny'"),
                     ("'train.epochs': 3", "'train.epochs': 1, 'train.max_steps_per_epoch': 1, 'data.max_per_split': 16, "
                                           "'data.batch_size': 8, 'train.device': 'cpu'")]:
        assert old in cheap, f'the README example changed: no {old}'
        cheap = cheap.replace(old, new)
    env = dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1', MPLBACKEND='Agg',
               MMDGPP_SYNTH_ROOT=str(Path(load_settings()['synth_root']).resolve()))
    r = subprocess.run([sys.executable, '-c', cheap], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    last = r.stdout.strip().splitlines()[-1]                      # the task, then the two HTERs the example names
    task, nums = last.split()[0], [float(x) for x in re.findall(r'(?<![\w-])\d+\.\d+(?:e-?\d+)?', last)]
    assert task == 'p1-CPS-W' and len(nums) == 2 and all(0 <= x <= 1 for x in nums), r.stdout
    assert (tmp_path/'runs'/'from-python'/'checkpoints'/'best.pt').is_file()


# The package's layers, lowest first: a module may import from its own unit and from the units of lower layers only.
# A unit is a folder of `mmdgpp` (`data`, `models`, ...) or a module at the package's top (`core`, `config`, ...);
# `mmdgpp` is the package itself (its lazy table of public names imports nothing), `_modidx` nbdev's generated index. Units that share a layer (a tuple)
# import neither one another. Evaluation sits below training: validation during training scores with
# `eval.metrics`, and the `mmdgpp train` command and the quickstart evaluate the run they trained; evaluation itself
# only reads a run (its checkpoint code is `eval.checkpoints`, which training writes with).
LAYERS = [('mmdgpp', '_modidx'), 'core', 'config', ('registry', 'cliargs', 'testing'), 'data', 'models', 'eval', 'train',
          'interpret', 'ablate', 'cli', ('outputs', 'docsite'), 'apiref', 'docs']


def unit(module: str) -> str:
    "The layering unit of a dotted module name: 'mmdgpp.data.splits' -> 'data', 'mmdgpp.core' -> 'core'."
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else parts[0]


def layer_violations(graph: dict, layers: list = LAYERS) -> list:
    "Sorted (importer, imported) module pairs whose units break `layers` (an arrow to the same or a higher layer)."
    rank = {u: i for i, l in enumerate(layers) for u in ((l,) if isinstance(l, str) else l)}
    bad = []
    for m, deps in graph.items():
        for d in deps:
            a, b = unit(m), unit(d)
            if a != b and rank[b] >= rank[a]: bad.append((m, d))
    return sorted(bad)


def test_layer_check_finds_arrows_back_up():
    "The checker itself, on graphs whose answer is known: down is fine, up and sideways (peers) are not."
    layers = ['core', ('a', 'b'), 'top']
    g = {'mmdgpp.core': set(), 'mmdgpp.a.x': {'mmdgpp.core', 'mmdgpp.a.y'}, 'mmdgpp.a.y': set(),
         'mmdgpp.b': {'mmdgpp.core'}, 'mmdgpp.top.z': {'mmdgpp.a.x', 'mmdgpp.b'}}
    assert layer_violations(g, layers) == []
    g['mmdgpp.core'] = {'mmdgpp.top.z'}; g['mmdgpp.b'] = {'mmdgpp.a.y'}
    assert layer_violations(g, layers) == [('mmdgpp.b', 'mmdgpp.a.y'), ('mmdgpp.core', 'mmdgpp.top.z')]


def test_package_follows_its_layers():
    "Every import in the package (function-level ones too) points to the same unit or a lower layer."
    g = import_graph()
    units = {unit(m) for m in g}
    declared = {u for l in LAYERS for u in ((l,) if isinstance(l, str) else l)}
    assert units == declared, f'units not in LAYERS: {units - declared}; in LAYERS but gone: {declared - units}'
    bad = layer_violations(g)
    assert not bad, 'imports against the layers ' + ' < '.join(map(str, LAYERS)) + ':\n' + \
        '\n'.join(f'{m} -> {d}' for m, d in bad)


# A module's public names are its own: `__all__` lists what the module defines, and a helper that another module
# needs has a public name in the module that owns it. (Package `__init__` files gather their modules' names.)
def defined_names(tree: ast.Module) -> set:
    "Names a module binds at its top level by definition or assignment (imports not counted)."
    out = set()
    for n in tree.body:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): out.add(n.name)
        targets = n.targets if isinstance(n, ast.Assign) else [n.target] if isinstance(n, (ast.AnnAssign, ast.AugAssign)) else []
        for t in targets:
            out |= {e.id for e in ast.walk(t) if isinstance(e, ast.Name)}
    return out


def reexports(tree: ast.Module) -> list:
    "Names in the module's `__all__` that it does not define itself (it only imports them)."
    alls = [n.value for n in tree.body if isinstance(n, ast.Assign) and any(getattr(t, 'id', None) == '__all__' for t in n.targets)]
    names = [e.value for a in alls for e in getattr(a, 'elts', []) if isinstance(e, ast.Constant)]
    return [x for x in names if x not in defined_names(tree)]


def private_imports(tree: ast.Module, internal: str = 'mmdgpp') -> list:
    "`_name`s imported from a module of the package (relative or absolute), anywhere in the module."
    return [(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
            and (n.level or (n.module or '').startswith(internal)) for a in n.names if a.name.startswith('_') and not a.name.startswith('__')]


def test_reexport_and_private_checks_find_them():
    "The two checks on modules whose answer is known."
    t = ast.parse("from .a import x, _y\nfrom numpy import _z\nA, (B, C) = 1, (2, 3)\ndef f(): from ..b import _w\n"
                  "__all__ = ['x', 'A', 'C', 'f']")
    assert reexports(t) == ['x']
    assert private_imports(t) == [('a', '_y'), ('b', '_w')]


def test_no_reexports_and_no_private_imports():
    "No module lists another module's names as its own, and no module imports a sibling's private helper."
    bad_all, bad_priv = {}, {}
    for name, (p, init) in module_names().items():
        t = ast.parse(p.read_text())
        if not init and (r := reexports(t)): bad_all[name] = r
        if (q := private_imports(t)): bad_priv[name] = q
    assert not bad_all, f're-exported names (import them from the module that defines them): {bad_all}'
    assert not bad_priv, f'private helpers imported across modules (give them a public name): {bad_priv}'
