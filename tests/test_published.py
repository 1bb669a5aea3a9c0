"""The published numbers ship as package data, each row with a named source."""
import tomllib
from conftest import ROOT


def test_published_numbers_ship_with_their_sources():
    from mmdgpp.eval.published import load_published, published_table
    pkg = tomllib.loads((ROOT/'pyproject.toml').read_text())['tool']['setuptools']['package-data']['mmdgpp']
    assert 'published.yaml' in pkg
    pub = load_published()
    assert pub.source.isin(list(pub.attrs['sources'])).all()
    row = pub[(pub.protocol == 'p1') & (pub.setting == 'Avg') & (pub.method == 'MMDG')].iloc[0]
    assert (row.hter, row.auc) == (19.25, 87.96)
    assert published_table('p2').loc['MMDG', 'Avg -depth'] == '24.89 / —'
