"""The API reference: every public name of every module has exactly one anchor on the API pages, where it is defined;
fastcore `@patch` methods are documented under their class; parameter and field comments are rendered as tables.
Builds the API pages alone (no notebooks), so it takes seconds, not the minutes of the whole site."""
import importlib, inspect, re
import pytest
from pathlib import Path


@pytest.fixture(scope='module')
def api(tmp_path_factory):
    from mmdgpp.apiref import build_api
    tmp = tmp_path_factory.mktemp('api')
    return build_api(tmp/'build', tmp/'site')/'api'


def ids(page: Path) -> set[str]: return set(re.findall(r'\bid="([^"]+)"', page.read_text()))


def test_every_public_name_has_one_page(api):
    from mmdgpp.apiref import api_modules, api_problems
    assert api_problems(api.parent) == []
    # independently of how the pages were chosen: each module's functions and classes, by the live object's own module
    anchors = {i: p.name for p in api.glob('*.html') for i in ids(p)}
    missing = []
    for mod in api_modules():
        m = importlib.import_module(mod)
        for n in m.__all__:
            o = getattr(m, n)
            where = f'{o.__module__}.{o.__qualname__}' if inspect.isfunction(o) or inspect.isclass(o) else None
            if where and anchors.get(where) != f'{o.__module__}.html': missing.append(f'{mod}.{n} -> {where}')
            if not where and not any(a.endswith(f'.{n}') for a in anchors): missing.append(f'{mod}.{n} (data)')
    assert not missing, missing
    for name in ('mmdgpp.config.ExperimentConfig', 'mmdgpp.config.TrainConfig', 'mmdgpp.models.baselines.MODEL_PRESETS',
                 'mmdgpp.registry.MODELS', 'mmdgpp.registry.ADAPTERS', 'mmdgpp.registry.PROMPTS', 'mmdgpp.train.regrad.RULES'):
        assert name in anchors, name


def test_patched_methods_under_their_class(api):
    got = ids(api/'mmdgpp.train.regrad.html')
    for meth in ('backward', 'apply', 'state_dict'):
        assert f'mmdgpp.train.regrad.ReGrad.{meth}' in got and f'mmdgpp.train.regrad.{meth}' not in got
    assert 'mmdgpp.models.mmdgpp.MMDGPP.forward' in ids(api/'mmdgpp.models.mmdgpp.html')


def test_comments_are_tables_and_reexports_links(api):
    from mmdgpp.config import AdapterConfig
    page = (api/'mmdgpp.config.html').read_text()
    assert '<table>' in page and '<td>bottleneck width of the adapter</td>' in page   # AdapterConfig.dim's comment
    assert AdapterConfig.__doc__.split('(')[0] in page
    assert 'version -&gt; ((alpha, gamma) when conflicting' in (api/'mmdgpp.train.regrad.html').read_text()
    top = (api/'mmdgpp.html').read_text()   # mmdgpp's names link to their definitions, which are documented there only
    assert 'href="mmdgpp.config.html#mmdgpp.config.ExperimentConfig"' in top and 'id="mmdgpp.ExperimentConfig"' not in top
