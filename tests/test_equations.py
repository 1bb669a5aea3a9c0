"""Equations in the notebooks' prose: the method notebooks typeset their formulas as LaTeX (`$...$`, `$$...$$`)
rather than as Unicode inside code spans, and every link to an equation (`NN_name.ipynb#eq-...`) lands on an
anchor (`<a id="eq-...">`) that the target notebook defines. Reads the notebooks' JSON only: no kernel, no site build."""
import json, re
from pathlib import Path
import pytest
from conftest import ROOT

NBS = ROOT/'nbs'
# the method overview and the notebooks that implement its equations
METHOD = ['05_method', '22_models.adapters', '23_models.prompts', '24_models.mmdgpp', '30_train.regrad',
          '40_eval.metrics', '41_eval.evaluate', '50_interpret.attributions']
# characters that make a code span a formula: operators, super/subscripts written as Unicode, Greek letters
# (arrows stay allowed: `rgb←depth` is the name the code gives a directed pair)
FORMULA = re.compile(r'[ΣΠΔ∑∏∫√∂‖≠≤≥²³₀₁₂⊙∈·−α-ω]')


def markdown_cells(path: Path) -> list[str]:
    return [''.join(c['source']) for c in json.loads(Path(path).read_text())['cells'] if c['cell_type'] == 'markdown']


def formula_spans(md: str) -> list[str]:
    "Code spans of a markdown text (fenced blocks and math left out) that hold a formula character."
    md = re.sub(r'```.*?```', '', md, flags=re.S)
    md = re.sub(r'\$\$.+?\$\$|\$[^$\n]+?\$', '', md, flags=re.S)
    return [s for s in re.findall(r'`([^`\n]+)`', md) if FORMULA.search(s)]


def anchors(path: Path) -> set[str]:
    return {a for md in markdown_cells(path) for a in re.findall(r'<a id="([^"]+)"', md)}


def equation_links(md: str, page: str) -> list[tuple[str, str]]:
    "(notebook stem, anchor) of each link to an `eq-` anchor; a same-page link `(#eq-...)` names `page`."
    return [(nb or page, frag) for nb, frag in re.findall(r'\]\((?:\./)?(?:([\w.-]+)\.ipynb)?#(eq-[\w.-]+)\)', md)]


def test_checkers_on_known_text():
    "The checkers themselves, on text whose answer is written out."
    assert formula_spans('the sum `Σ_{o≠m} A_m` and `proj_{g_i}(g_j) · U`') == ['Σ_{o≠m} A_m', 'proj_{g_i}(g_j) · U']
    assert formula_spans('`cfg.rate`, `rgb←depth`, $\\sum_{o \\neq m}$ and ```\nΣ = 1\n```') == []
    assert formula_spans('a rate `c = exp(−r·u)` with `β`, `torch.exp(-rate * u)`') == ['c = exp(−r·u)', 'β']
    md = 'see [x](22_models.adapters.ipynb#eq-cdc), [y](#eq-rules), [z](40_eval.metrics.ipynb#defects)'
    assert equation_links(md, '30_train.regrad') == [('22_models.adapters', 'eq-cdc'), ('30_train.regrad', 'eq-rules')]


@pytest.mark.parametrize('name', METHOD)
def test_formulas_are_typeset(name):
    "No formula written in Unicode inside a code span: equations are LaTeX, which the docs site renders with MathJax."
    bad = [s for md in markdown_cells(NBS/f'{name}.ipynb') for s in formula_spans(md)]
    assert not bad, f'{name}: formulas in code spans (typeset them as $...$): {bad}'


def test_equation_links_land():
    "Every link to an equation, in any notebook, names an anchor its target notebook defines."
    missing = []
    for p in sorted(NBS.glob('*.ipynb')):
        for md in markdown_cells(p):
            for nb, frag in equation_links(md, p.stem):
                target = NBS/f'{nb}.ipynb'
                if not target.exists() or frag not in anchors(target): missing.append(f'{p.name} -> {nb}.ipynb#{frag}')
    assert not missing, missing


def test_method_overview_links_each_component():
    "Every implementing notebook defines equation anchors, and the overview links to them (50 is analysis: a plain link)."
    linked = {nb for md in markdown_cells(NBS/'05_method.ipynb') for nb, _ in equation_links(md, '05_method')}
    without = [n for n in METHOD[1:] if not any(a.startswith('eq-') for a in anchors(NBS/f'{n}.ipynb'))]
    assert not without, without
    assert set(METHOD[1:]) - {'50_interpret.attributions'} <= linked, set(METHOD[1:]) - linked
